"""Figures of the non-decomposable notebook: training curves, final test AUC, gradient fidelity.

Every function takes the dict returned by
:func:`backdrop_repro.experiments.nondecomposable.run_experiment` (or read back from its JSON)
and returns a Figure about 9 inches wide (≈ 1350 px at the 150 dpi of ``plots.save``).

Example
-------
>>> from backdrop_repro.experiments.nondecomposable import run_experiment   # doctest: +SKIP
>>> from backdrop_repro.plots import save                                   # doctest: +SKIP
>>> save(curves(run_experiment("smoke", write=False)), "non-decomposable-smoke-curves")  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..experiments.nondecomposable.report import comparisons, select_best

__all__ = ["curves", "final_auc", "fidelity"]

WIDTH = 9.0  # inches


def _style(summary: list[dict[str, Any]]) -> list[tuple[str, Any, str]]:
    """(label, colour, linestyle) per summary entry: full batch black, minibatch blues (dashed),
    backdrop oranges (solid); darker = smaller batch / more masking."""
    out = []
    mb = [s for s in summary if s["method"] == "minibatch"]
    bd = [s for s in summary if s["method"] == "backdrop"]
    for s in summary:
        if s["method"] == "full":
            out.append((s["label"], "black", "-"))
        elif s["method"] == "minibatch":
            k = sorted(mb, key=lambda t: -t["param"]).index(s)
            out.append((s["label"], plt.cm.Blues(0.45 + 0.5 * k / max(1, len(mb) - 1)), "--"))
        else:
            k = sorted(bd, key=lambda t: t["param"]).index(s)
            out.append((s["label"], plt.cm.Oranges(0.45 + 0.5 * k / max(1, len(bd) - 1)), "-"))
    return out


def _title(result: dict[str, Any]) -> str:
    d = result.get("data", {})
    n = result["summary"][0]["n_seeds"] if result["summary"] else 0
    return (f"{d.get('task', 'one vs rest')}: {d.get('n_train', '?')} training samples "
            f"({d.get('pos_train', '?')} positive), {n} seeds; profile '{result.get('profile', '?')}'")


def curves(result: dict[str, Any]) -> "plt.Figure":
    """Two panels against the optimiser step: test AUC (exact; mean over seeds, band ±1 s.e.)
    and the surrogate loss on the training split (log scale); the legend sits below the panels.

    Returns a matplotlib Figure (2 axes).
    """
    summary = result["summary"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(WIDTH, 3.9), layout="constrained")
    for s, (label, color, ls) in zip(summary, _style(summary)):
        step = np.asarray(s["curve_step"])
        m, sd = np.asarray(s["curve_test_auc_mean"]), np.asarray(s["curve_test_auc_std"])
        se = sd / np.sqrt(max(1, s["n_seeds"]))
        ax1.plot(step, m, color=color, ls=ls, lw=1.6, label=label)
        ax1.fill_between(step, m - se, m + se, color=color, alpha=0.15, lw=0)
        ax2.plot(step, np.maximum(np.asarray(s["curve_train_loss_mean"]), 1e-6), color=color, ls=ls, lw=1.6)
    finals = [s["curve_test_auc_mean"][-1] for s in summary]
    lo = min(min(s["curve_test_auc_mean"][len(s["curve_test_auc_mean"]) // 4:]) for s in summary)
    ax1.set_ylim(max(0.5, lo - 0.01), min(1.0, max(finals) + 0.01))
    ax1.set(xlabel="optimiser step", ylabel="test AUC (exact)", title="test AUC (mean ± s.e. over seeds)")
    ax2.set(xlabel="optimiser step", ylabel="surrogate of 1 − AUC, training split", yscale="log",
            title="training loss")
    for a in (ax1, ax2):
        a.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=min(4, len(summary)), frameon=False)
    fig.suptitle(_title(result), fontsize=10)
    return fig


def final_auc(result: dict[str, Any], alpha: float = 0.05) -> "plt.Figure":
    """Final test AUC per setting (one row each). Left: one dot per seed and mean ± sd. Right:
    the paired difference to full batch (same seed = same split and initialisation), one dot per
    seed and the mean with its 95 % interval, annotated with the Holm-adjusted p-value. Settings
    chosen on the validation split are in bold.

    Returns a matplotlib Figure (2 axes sharing the settings axis).
    """
    summary, runs = result["summary"], result["runs"]
    n = len(summary)
    fig, (ax, axd) = plt.subplots(1, 2, figsize=(WIDTH, 1.6 + 0.45 * n), sharey=True, layout="constrained")
    comps = {c["name"]: c for c in comparisons(result, alpha)}
    chosen = {select_best(runs, "backdrop"), select_best(runs, "minibatch")}
    full = {r["seed"]: r["test_auc"] for r in runs if r["method"] == "full"}
    rng = np.random.default_rng(0)  # vertical jitter of the dots only
    for i, (s, (label, color, _)) in enumerate(zip(summary, _style(summary))):
        rs = [r for r in runs if r["label"] == label]
        aucs = np.array([r["test_auc"] for r in rs])
        jit = rng.uniform(-0.15, 0.15, len(aucs))
        ax.scatter(aucs, i + 0.12 + jit, s=9, color=color, alpha=0.5)
        ax.errorbar(aucs.mean(), i - 0.22, xerr=aucs.std(ddof=1) if len(aucs) > 1 else 0, fmt="o", color=color,
                    capsize=3)
        c = comps.get(label)
        if c is None or not c.get("decision"):
            continue
        diff = np.array([r["test_auc"] - full[r["seed"]] for r in rs if r["seed"] in full])
        axd.scatter(diff, i + 0.12 + jit[: diff.size], s=9, color=color, alpha=0.5)
        axd.errorbar(c["mean"], i - 0.22, xerr=[[c["mean"] - c["low"]], [c["high"] - c["mean"]]], fmt="o",
                     color=color, capsize=3)
        axd.annotate(f"Holm p={c['p_holm']:.2g}", (1.0, i), xycoords=("axes fraction", "data"),
                     xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(range(n), [s["label"] for s in summary])
    for tick, s in zip(ax.get_yticklabels(), summary):
        tick.set_fontweight("bold" if s["label"] in chosen else "normal")
    ax.invert_yaxis()
    axd.axvline(0.0, color="black", lw=0.8, ls=":")
    ax.set(xlabel="final test AUC (exact)", ylabel="setting (bold: chosen on validation)",
           title="per seed; mean ± sd")
    axd.set(xlabel="test AUC − full-batch test AUC (same seed)", title="paired difference; mean, 95 % CI")
    for a in (ax, axd):
        a.grid(alpha=0.3, axis="x")
        a.xaxis.set_major_locator(plt.MaxNLocator(5))
    fig.suptitle(_title(result), fontsize=10)
    return fig


def fidelity(result: dict[str, Any]) -> "plt.Figure":
    """Gradient fidelity (``result["fidelity"]``): for each stochastic setting, the mean cosine
    between one stochastic gradient and the exact full-batch gradient, at initialisation and
    after the full-batch pre-training steps. The legend sits above the axes.

    Returns a matplotlib Figure (1 axis).
    """
    fid = result.get("fidelity") or {}
    if not fid:
        raise ValueError("result has no 'fidelity' entry (run with fidelity_draws > 0)")
    rows_init, rows_late = fid["at_init"], fid["after_100_steps"]
    k = fid.get("pretrain_steps", 100)
    styles = {lab: c for lab, c, _ in _style(result["summary"])}
    fig, ax = plt.subplots(figsize=(min(WIDTH, 3.5 + 0.9 * len(rows_init)), 4.0), layout="constrained")
    x = np.arange(len(rows_init))
    colors = [styles.get(r["label"], "grey") for r in rows_init]
    ax.bar(x - 0.2, [r["single_cos"] for r in rows_init], 0.38, color=colors, alpha=0.5, label="at initialisation")
    ax.bar(x + 0.2, [r["single_cos"] for r in rows_late], 0.38, color=colors, hatch="//", edgecolor="k",
           lw=0.5, label=f"after {k} full-batch steps")
    ax.set_xticks(x, [r["label"] for r in rows_init], rotation=20, ha="right")
    ax.set(xlabel="setting", ylabel="cos(one stochastic gradient, full gradient)", ylim=(0, 1))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"gradient fidelity ({fid['n_draws']} draws, seed {fid['seed']}); "
                 f"profile '{result.get('profile', '?')}'", fontsize=10)
    return fig
