"""Figures of the gp-training notebook: learning curves, accuracy vs mask probability, gradients.

Every function takes the sweep dict of :func:`backdrop_repro.experiments.run_sweep` (or the
objects named) and returns a matplotlib Figure; save it with :func:`backdrop_repro.plots.save`.
"""
from __future__ import annotations

from typing import Any, Optional

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import GP_CMAP

__all__ = ["learning_curves", "scale_accuracy", "accuracy_vs_prob", "data_size_curve", "gradient_maps", "COLORS"]

COLORS = {"none": "black", "fine": "tab:blue", "coarse": "tab:orange", "both": "tab:green", "demo": "tab:purple"}
STYLES = ("-", "--", ":")


def _runs(sweep: dict[str, Any], study: str = "grid") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sweep["runs"]:
        if r["config"]["study"] == study:
            out.setdefault(r["label"], []).append(r)
    return out


def _ylim(ax, values: list[float], ref: Optional[float] = None) -> None:
    """Zoom on the data (and chance); a reference above the range is written in the corner instead."""
    lo, hi = min(values + [0.25]), max(values)
    pad = 0.08 * (hi - lo or 1)
    ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))


def _ref(ax, ref: Optional[dict], fontsize: int = 8) -> None:
    """The likelihood classifier's accuracy: a dashed line if it is in range, else a note in the corner."""
    if not ref:
        return
    name = "likelihood classifier" + ("" if ref.get("exact") else " (approx.)")
    top = ax.get_ylim()[1]
    if ref["test_accuracy"] <= top:
        ax.axhline(ref["test_accuracy"], color="tab:red", ls="--", lw=1, label=name)
    else:
        ax.text(0.99, 0.98, f"{name}: {ref['test_accuracy']:.3f} (above this range)", transform=ax.transAxes,
                ha="right", va="top", fontsize=fontsize, color="tab:red")


def _mean_curve(runs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and the mean of ``key`` over the runs that reached each epoch (runs under a
    convergence budget stop at different epochs)."""
    per: dict[int, list[float]] = {}
    for r in runs:
        for h in r["history"]:
            if key in h:
                per.setdefault(h["epoch"], []).append(h[key])
    ep = np.array(sorted(per))
    return ep, np.array([np.mean(per[e]) for e in ep])


def scale_accuracy(sweep: dict[str, Any], study: str = "grid") -> plt.Figure:
    """What the networks learned: test accuracy on the 4 classes, on the small scale and on the
    large scale (the 4-class prediction marginalised onto each scale), mean and 95 % CI over
    seeds per configuration, with chance and the likelihood classifier's accuracy on each.
    Configurations whose records hold no per-scale predictions show the 4-class bar only."""
    rows = [r for r in sweep["summary"] if r["study"] == study]
    ref = sweep.get("reference", {}).get("main") or {}
    panels = [("4 classes", None, 0.25, ref.get("test_accuracy")),
              ("small scale", 0, 0.5, ref.get("small_scale_accuracy")),
              ("large scale", -1, 0.5, ref.get("large_scale_accuracy"))]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8 + 0.12 * len(rows)), sharey=True)
    y = np.arange(len(rows))
    for ax, (title, idx, chance, r_acc) in zip(axes, panels):
        for i, r in enumerate(rows):
            s = r["test_accuracy"] if idx is None else (r["scales"][idx]["summary"] if r.get("scales") else None)
            if s is None:
                ax.text(chance, i, " not recorded", va="center", fontsize=7, color="gray")
                continue
            lo = s["low"] if s["low"] is not None else s["mean"]
            hi = s["high"] if s["high"] is not None else s["mean"]
            ax.errorbar(s["mean"], i, xerr=[[s["mean"] - lo], [hi - s["mean"]]], fmt="o",
                        color=COLORS.get(r["config"], "gray"), capsize=3)
        ax.axvline(chance, color="gray", ls=":", lw=1, label=f"chance {chance:g}")
        if r_acc is not None:
            ax.axvline(r_acc, color="tab:red", ls="--", lw=1, label=f"likelihood classifier {r_acc:.2f}")
        ax.set(title=title, xlabel="test accuracy (mean, 95 % CI over seeds)")
        ax.set_xlim(min(0.2, chance - 0.05), 1.02)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_yticks(y, [r["label"] + (f" ({r['per_class']}/class)" if study == "data_size" else "") for r in rows],
                       fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"GP task, profile '{sweep['profile']}': what the networks learned, per scale")
    fig.tight_layout()
    return fig


def learning_curves(sweep: dict[str, Any]) -> plt.Figure:
    """Every grid configuration's training loss (running, masks on; log scale) and validation
    accuracy against epoch, mean over seeds. Example: ``save(learning_curves(sweep), "...")``."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for label, runs in _runs(sweep).items():
        cfg = runs[0]["config"]
        color, style = COLORS[cfg["config"]], STYLES[cfg["level"] % 3] if cfg["config"] != "demo" else "-."
        ep, loss = _mean_curve(runs, "train_loss")
        axes[0].plot(ep, loss, color=color, ls=style, lw=1.3, label=label)
        ev, val = _mean_curve(runs, "val_accuracy")
        axes[1].plot(ev, val, color=color, ls=style, lw=1.3, marker="o", ms=2.5)
    axes[0].set_yscale("log")
    axes[0].set(xlabel="epoch", ylabel="training loss (running mean, masks on)", title="training loss")
    axes[1].axhline(0.25, color="gray", ls=":", lw=1)
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy (chance dotted)")
    n = len(next(iter(_runs(sweep).values()), []))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title="configuration")
    fig.suptitle(f"GP task, profile '{sweep['profile']}': learning curves, mean over {n} seeds")
    fig.tight_layout()
    return fig


def accuracy_vs_prob(sweep: dict[str, Any]) -> plt.Figure:
    """Test accuracy against mask probability for the fine, coarse and paired masks: mean and 95 %
    CI over seeds; no backdrop as a band, the authors' demo setting as a point, the likelihood
    classifier as a line. Example: ``accuracy_vs_prob(sweep)``."""
    rows = [r for r in sweep["summary"] if r["study"] == "grid"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    base = next((r for r in rows if r["config"] == "none"), None)
    ref = sweep.get("reference", {}).get("main")
    vals = []
    for ax, config, xkey in zip(axes, ("fine", "coarse", "both"), ("fine_prob", "coarse_prob", "fine_prob")):
        rs = sorted((r for r in rows if r["config"] == config), key=lambda r: r["level"])
        if base:
            b = base["test_accuracy"]
            ax.axhline(b["mean"], color="black", lw=1.2, label="no backdrop (mean, 95 % CI)")
            if b["low"] is not None:
                ax.axhspan(b["low"], b["high"], color="black", alpha=0.1)
                vals += [b["low"], b["high"]]
        if rs:
            m = np.array([r["test_accuracy"]["mean"] for r in rs])
            lo = np.array([r["test_accuracy"]["low"] if r["test_accuracy"]["low"] is not None else r["test_accuracy"]["mean"] for r in rs])
            hi = np.array([r["test_accuracy"]["high"] if r["test_accuracy"]["high"] is not None else r["test_accuracy"]["mean"] for r in rs])
            x = list(range(len(rs))) if config == "both" else [r[xkey] for r in rs]
            ax.errorbar(x, m, yerr=[m - lo, hi - m], color=COLORS[config], marker="o", capsize=3, label=config)
            vals += list(lo) + list(hi)
        demo = next((r for r in rows if r["config"] == "demo"), None)
        if config == "both":
            ticks = [f"{r['fine_prob']:g} / {r['coarse_prob']:g}" for r in rs]
            if demo:
                ticks.append(f"{demo['fine_prob']:g} / {demo['coarse_prob']:g}\n(demo)")
            ax.set_xticks(range(len(ticks)), ticks)
        if demo and config == "both":
            d = demo["test_accuracy"]
            x = len(rs)
            ax.errorbar([x], [d["mean"]], yerr=[[d["mean"] - (d["low"] or d["mean"])], [(d["high"] or d["mean"]) - d["mean"]]],
                        color=COLORS["demo"], marker="*", ms=10, capsize=3, ls="none", label="demo: fine 0.3 + coarse 0.95")
            vals += [d["low"] or d["mean"], d["high"] or d["mean"]]
        ax.axhline(0.25, color="gray", ls=":", lw=1, label="chance")
        ax.set_xlabel({"fine": "fine mask probability", "coarse": "coarse mask probability",
                       "both": "fine / coarse probability"}[config])
        ax.set_title("both masks" if config == "both" else f"{config} mask only", fontsize=10)
    axes[0].set_ylabel("test accuracy")
    _ylim(axes[0], vals)
    for ax in axes:
        _ref(ax, ref)
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    n = len(base["seeds"]) if base else 0
    fig.suptitle(f"profile '{sweep['profile']}': test accuracy vs mask probability (mean, 95 % CI over {n} seeds)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def data_size_curve(sweep: dict[str, Any]) -> plt.Figure:
    """Test accuracy against training images per class for ``none`` and the configuration chosen
    on validation (mean and 95 % CI over seeds; same image visits at every size)."""
    p = sweep["settings"]["data"]
    main = p["method"]
    rows = [r for r in sweep["summary"] if r["method"] == main and r["study"] in ("grid", "data_size")]
    best = sweep.get("best_on_validation")
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    vals = []
    for label, color in (("none", "black"), (best, COLORS["fine"] if best and "fine" in best else "tab:orange")):
        if label is None:
            continue
        rs = sorted((r for r in rows if r["label"] == label), key=lambda r: r["per_class"])
        if not rs:
            continue
        x = [r["per_class"] for r in rs]
        m = np.array([r["test_accuracy"]["mean"] for r in rs])
        lo = np.array([r["test_accuracy"]["low"] or r["test_accuracy"]["mean"] for r in rs])
        hi = np.array([r["test_accuracy"]["high"] or r["test_accuracy"]["mean"] for r in rs])
        ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, color=color,
                    label="no backdrop" if label == "none" else f"{label} (best on validation)")
        vals += list(lo) + list(hi)
    ref = sweep.get("reference", {}).get("main")
    ax.axhline(0.25, color="gray", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    xs = sorted({r["per_class"] for r in rows})
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set(xlabel="training images per class (log scale)", ylabel="test accuracy")
    _ylim(ax, vals or [0.25])
    _ref(ax, ref)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"profile '{sweep['profile']}': does backdrop's effect change with more data?", fontsize=10)
    fig.tight_layout()
    return fig


def gradient_maps(models: dict[str, torch.nn.Module], image: np.ndarray, label: int,
                  seed: int = 0, title: str = "") -> plt.Figure:
    """The input gradient ``|dL/dx|`` of one training step under each model's masks.

    ``models`` : name -> network (e.g. trained ``none``/``fine``/``coarse``/``both``); each is
    put in ``train()`` mode so its masks are drawn (their generators are re-seeded with
    ``seed`` for the picture, then restored). ``image`` : ``(H, W)``; ``label`` : its class.
    Example: ``gradient_maps({"fine": net}, images[0], 0)``.
    """
    x0 = torch.from_numpy(np.array(image, dtype=np.float32))[None, None]
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(3.2 * (len(models) + 1), 3.4))
    axes[0].imshow(image, cmap=GP_CMAP)
    axes[0].set_title(f"input (class {label})")
    for ax, (name, net) in zip(axes[1:], models.items()):
        gens = {id(m.generator): m.generator for m in (net.fine_mask, net.coarse_mask) if m.generator is not None}
        states = {k: g.get_state() for k, g in gens.items()}
        for g in gens.values():
            g.manual_seed(seed)
        net.train()
        x = x0.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(net(x), torch.tensor([int(label)]))
        loss.backward()
        for k, g in gens.items():
            g.set_state(states[k])
        g_img = x.grad[0, 0].abs().numpy()
        ax.imshow(np.sqrt(g_img / (g_img.max() or 1.0)), cmap="gray")
        ax.set_title(f"|dL/dx|: {name}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"gradient reaching the input in one training step (sqrt scale){title}")
    fig.tight_layout()
    return fig
