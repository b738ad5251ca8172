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

__all__ = ["learning_curves", "accuracy_vs_prob", "gradient_maps", "stem_filters", "COLORS"]

COLORS = {"none": "black", "fine": "tab:blue", "coarse": "tab:orange", "both": "tab:green"}


def _label(run_cfg: dict[str, Any]) -> str:
    c = run_cfg["config"]
    if c == "none":
        return "no backdrop"
    parts = []
    if run_cfg["fine_prob"]:
        parts.append(f"fine {run_cfg['fine_prob']:g}")
    if run_cfg["coarse_prob"]:
        parts.append(f"coarse {run_cfg['coarse_prob']:g}")
    return ", ".join(parts)


def _best_levels(sweep: dict[str, Any]) -> dict[str, int]:
    best: dict[str, tuple[float, int]] = {}
    for row in sweep["summary"]:
        m = row["test_accuracy"]["mean"]
        if row["config"] not in best or m > best[row["config"]][0]:
            best[row["config"]] = (m, row["level"])
    return {c: lv for c, (_, lv) in best.items()}


def learning_curves(sweep: dict[str, Any], levels: Optional[dict[str, int]] = None) -> plt.Figure:
    """Train/test loss and accuracy vs epoch: mean over seeds with a min-max band.

    One curve per configuration at the level in ``levels`` (default: each configuration's
    best level by mean test accuracy). Example: ``save(learning_curves(sweep), "gp-training-curves")``.
    """
    levels = levels or _best_levels(sweep)
    panels = [("train_loss", "train loss (masks on, running)"), ("test_loss", "test loss"),
              ("train_accuracy", "train accuracy"), ("test_accuracy", "test accuracy")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for config, level in levels.items():
        runs = [r for r in sweep["runs"] if r["config"]["config"] == config and r["config"]["level"] == level]
        if not runs:
            continue
        for ax, (key, title) in zip(axes.flat, panels):
            epochs = [h["epoch"] for h in runs[0]["history"] if key in h]
            vals = np.array([[h[key] for h in r["history"] if key in h] for r in runs])
            ax.plot(epochs, vals.mean(axis=0), color=COLORS[config], marker="o" if len(epochs) < 15 else None,
                    ms=3, label=f"{_label(runs[0]['config'])} ({len(runs)} seeds)")
            ax.fill_between(epochs, vals.min(axis=0), vals.max(axis=0), color=COLORS[config], alpha=0.15)
            ax.set_title(title)
    oracle = sweep.get("oracle", {})
    for ax, key in ((axes[0, 1], "test_loss"), (axes[1, 1], "test_accuracy")):
        if key in oracle:
            ax.axhline(oracle[key], color="tab:red", ls="--", lw=1, label="Bayes-optimal oracle")
    for ax in axes[1]:
        ax.axhline(0.25, color="gray", ls=":", lw=1, label="chance")
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
    axes[1, 1].legend(fontsize=8, loc="best")
    fig.suptitle(f"GP task, profile '{sweep['profile']}': learning curves (mean, band = min-max over seeds)")
    fig.tight_layout()
    return fig


def accuracy_vs_prob(sweep: dict[str, Any]) -> plt.Figure:
    """Final test accuracy vs mask-probability level, mean ± std over seeds (caps: ± sem).

    Level 0 is the no-backdrop baseline shared by every configuration; the x tick labels give
    the fine/coarse probabilities of each level. Example: ``accuracy_vs_prob(sweep)``.
    """
    s = sweep["settings"]
    rows = sweep["summary"]
    base = next((r for r in rows if r["config"] == "none"), None)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    offsets = {"fine": -0.08, "coarse": 0.0, "both": 0.08}
    for config in ("fine", "coarse", "both"):
        rs = sorted((r for r in rows if r["config"] == config), key=lambda r: r["level"])
        if not rs:
            continue
        pts = ([base] if base else []) + rs
        x = np.array(([-offsets[config]] if base else []) + [r["level"] + 1 for r in rs], dtype=float) + offsets[config]
        m = np.array([r["test_accuracy"]["mean"] for r in pts])
        sd = np.array([r["test_accuracy"]["std"] or 0.0 for r in pts])
        ax.errorbar(x, m, yerr=sd, color=COLORS[config], marker="o", capsize=3, label=config)
    if base:
        ax.errorbar([0], [base["test_accuracy"]["mean"]], yerr=[base["test_accuracy"]["std"] or 0.0],
                    color=COLORS["none"], marker="s", capsize=3, ls="none", label="no backdrop")
    if "test_accuracy" in sweep.get("oracle", {}):
        ax.axhline(sweep["oracle"]["test_accuracy"], color="tab:red", ls="--", lw=1, label="Bayes-optimal oracle")
    ax.axhline(0.25, color="gray", ls=":", lw=1, label="chance")
    ticks = ["none"] + [f"f {f:g} / c {c:g}" for f, c in zip(s["fine_probs"], s["coarse_probs"])]
    ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
    ax.set_xlabel("mask probability level (fine / coarse)")
    ax.set_ylabel("final test accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    n = len(base["seeds"]) if base else 0
    ax.set_title(f"profile '{sweep['profile']}': test accuracy vs mask probability (mean ± std, {n} seeds)")
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


def stem_filters(models: dict[str, torch.nn.Module], n: int = 8, title: str = "") -> plt.Figure:
    """The first ``n`` 5x5 stem filters of each model (one row per model)."""
    fig, axes = plt.subplots(len(models), n, figsize=(1.1 * n, 1.2 * len(models)), squeeze=False)
    for row, (name, net) in zip(axes, models.items()):
        w = net.fine_features[0].weight.detach()[:, 0].numpy()
        for j, ax in enumerate(row):
            if j < len(w):
                lim = np.abs(w[j]).max() or 1.0
                ax.imshow(w[j], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=8)
    fig.suptitle(f"trained stem filters (5x5){title}")
    fig.tight_layout()
    return fig
