"""Figures of the non-decomposable notebook: training curves and final test AUC per setting.

Both functions take the dict returned by
:func:`backdrop_repro.nondecomposable.run_experiment` (or read back from its JSON).

Example
-------
>>> from backdrop_repro.nondecomposable import run_experiment            # doctest: +SKIP
>>> res = run_experiment("smoke", write=False)                          # doctest: +SKIP
>>> save(curves(res), "non-decomposable-curves")                        # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from . import save  # noqa: F401  (re-exported for convenience)

_COLORS = {"full": "black", "minibatch": plt.cm.Blues, "backdrop": plt.cm.Oranges}


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
            out.append((s["label"], _COLORS["minibatch"](0.45 + 0.5 * k / max(1, len(mb) - 1)), "--"))
        else:
            k = sorted(bd, key=lambda t: t["param"]).index(s)
            out.append((s["label"], _COLORS["backdrop"](0.45 + 0.5 * k / max(1, len(bd) - 1)), "-"))
    return out


def _title(result: dict[str, Any]) -> str:
    d = result.get("data", {})
    n = result["summary"][0]["n_seeds"] if result["summary"] else 0
    return (f"{d.get('task', 'one vs rest')}, {d.get('n_train', '?')} training samples "
            f"({d.get('pos_train', '?')} positive); {n} seeds; profile '{result.get('profile', '?')}'")


def curves(result: dict[str, Any]) -> "plt.Figure":
    """Two panels against the optimiser step: test AUC (exact; mean over seeds with a ±1 std/√n
    band) and the surrogate loss on the full training set (log scale).

    Returns a matplotlib Figure (2 axes).
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    summary = result["summary"]
    for s, (label, color, ls) in zip(summary, _style(summary)):
        step = np.asarray(s["curve_step"])
        m, sd = np.asarray(s["curve_test_auc_mean"]), np.asarray(s["curve_test_auc_std"])
        se = sd / np.sqrt(max(1, s["n_seeds"]))
        ax1.plot(step, m, color=color, ls=ls, lw=1.6, label=label)
        ax1.fill_between(step, m - se, m + se, color=color, alpha=0.15, lw=0)
        ax2.plot(step, np.maximum(np.asarray(s["curve_train_loss_mean"]), 1e-6), color=color, ls=ls, lw=1.6, label=label)
    finals = [s["curve_test_auc_mean"][-1] for s in summary]
    lo = min(min(s["curve_test_auc_mean"][len(s["curve_test_auc_mean"]) // 4:]) for s in summary)
    ax1.set_ylim(max(0.5, lo - 0.01), min(1.0, max(finals) + 0.01))
    ax1.set(xlabel="optimiser step", ylabel="test AUC (exact)", title="test AUC (mean ± s.e. over seeds)")
    ax2.set(xlabel="optimiser step", ylabel="surrogate 1 − AUC on the training set", yscale="log",
            title="training loss (full training set)")
    ax1.grid(alpha=0.3)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="upper right")
    fig.suptitle(_title(result), fontsize=10)
    fig.tight_layout()
    return fig


def final_auc(result: dict[str, Any]) -> "plt.Figure":
    """Final test AUC per setting. Left: one dot per seed and mean ± std. Right: the paired
    difference to full batch (same seed = same split and initialisation), one dot per seed and
    mean ± standard error, which removes the seed-to-seed spread of the split.
    Returns a matplotlib Figure (2 axes)."""
    summary = result["summary"]
    fig, (ax, axd) = plt.subplots(1, 2, figsize=(2 * (0.9 * len(summary) + 2.2), 4.4))
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    full = {r["seed"]: r["test_auc"] for r in result["runs"] if r["method"] == "full"}
    for i, (s, (label, color, _)) in enumerate(zip(summary, _style(summary))):
        rs = [r for r in result["runs"] if r["label"] == s["label"]]
        aucs = np.array([r["test_auc"] for r in rs])
        jit = rng.uniform(-0.15, 0.15, len(aucs))
        ax.scatter(i - 0.1 + jit, aucs, s=10, color=color, alpha=0.5)
        ax.errorbar(i + 0.2, s["test_auc_mean"], yerr=s["test_auc_std"], fmt="o", color=color, capsize=3)
        diff = np.array([r["test_auc"] - full[r["seed"]] for r in rs if r["seed"] in full])
        if s["method"] != "full" and diff.size:
            se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else 0.0
            axd.scatter(i - 0.1 + jit[: diff.size], diff, s=10, color=color, alpha=0.5)
            axd.errorbar(i + 0.2, diff.mean(), yerr=se, fmt="o", color=color, capsize=3)
    for a in (ax, axd):
        a.set_xticks(range(len(summary)), [s["label"] for s in summary], rotation=30, ha="right")
        a.grid(alpha=0.3, axis="y")
    axd.axhline(0.0, color="black", lw=0.8, ls=":")
    ax.set(ylabel="final test AUC (exact)", title="per seed, mean ± std")
    axd.set(ylabel="test AUC − full-batch test AUC (same seed)", title="paired difference, mean ± s.e.")
    fig.suptitle(_title(result), fontsize=10)
    fig.tight_layout()
    return fig


def fidelity(result: dict[str, Any]) -> "plt.Figure":
    """Gradient fidelity (``result["fidelity"]``): for each stochastic setting, the mean cosine
    between one stochastic gradient and the exact full-batch gradient, at initialisation and
    after 100 full-batch steps. Returns a matplotlib Figure (1 axis)."""
    fid = result.get("fidelity") or {}
    if not fid:
        raise ValueError("result has no 'fidelity' entry (run with fidelity_draws > 0)")
    rows_init, rows_late = fid["at_init"], fid["after_100_steps"]
    styles = {lab: c for lab, c, _ in _style(result["summary"])}
    fig, ax = plt.subplots(figsize=(1.0 * len(rows_init) + 3, 4.0))
    x = np.arange(len(rows_init))
    colors = [styles.get(r["label"], "grey") for r in rows_init]
    ax.bar(x - 0.2, [r["single_cos"] for r in rows_init], 0.38, color=colors, alpha=0.5, label="at initialisation")
    ax.bar(x + 0.2, [r["single_cos"] for r in rows_late], 0.38, color=colors, hatch="//", edgecolor="k",
           lw=0.5, label="after 100 full-batch steps")
    ax.set_xticks(x, [r["label"] for r in rows_init], rotation=30, ha="right")
    ax.set(ylabel="cos(one stochastic gradient, full gradient)", ylim=(0, 1),
           title=f"gradient fidelity ({fid['n_draws']} draws, seed {fid['seed']}); profile '{result.get('profile', '?')}'")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
