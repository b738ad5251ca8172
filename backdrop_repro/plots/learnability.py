"""Figures of the learnability notebook: the map per scale and the backdrop gains along its edge.

Both take the summary of :func:`backdrop_repro.experiments.learnability.write_summary` and return
a matplotlib Figure; save it with :func:`backdrop_repro.plots.save` (name with the profile).
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

__all__ = ["learnability_map", "edge_gains"]

_PANELS = (("cnn", "CNN, no backdrop"), ("spectral", "spectral-energy net"), ("oracle", "likelihood classifier"))


def _value(row: dict[str, Any], what: str) -> float:
    if what == "oracle":
        return row["oracle"]["test_accuracy"] if row.get("oracle") else np.nan
    return row[what]["mean"] if row.get(what) else np.nan


def learnability_map(summary: dict[str, Any], scale: str) -> plt.Figure:
    """Heat maps of mean test accuracy (chance 0.5 to 1) over length ratio (columns) and training
    images per class (rows) for one ``scale``: the CNN, the spectral-energy net and the likelihood
    classifier. Cells whose CNN mean lies in the edge band are outlined (dashed); the cells chosen
    for the backdrop comparison get a solid outline."""
    rows = [r for r in summary["map"] if r["scale"] == scale]
    if not rows:
        raise ValueError(f"the summary holds no cell of scale {scale!r}")
    ratios = sorted({r["ratio"] for r in rows})
    sizes = sorted({r["per_class"] for r in rows})
    fig, axes = plt.subplots(1, 3, figsize=(12, 1.2 + 0.9 * len(sizes)), sharey=True)
    for ax, (what, title) in zip(axes, _PANELS):
        grid = np.full((len(sizes), len(ratios)), np.nan)
        for r in rows:
            grid[sizes.index(r["per_class"]), ratios.index(r["ratio"])] = _value(r, what)
        im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis", origin="lower", aspect="auto")
        for i in range(len(sizes)):
            for j in range(len(ratios)):
                v = grid[i, j]
                ax.text(j, i, "—" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=9,
                        color="black" if not np.isnan(v) and v > 0.8 else "white")
        if what == "cnn":
            for r in rows:
                if r["band"] or r["edge"]:
                    i, j = sizes.index(r["per_class"]), ratios.index(r["ratio"])
                    ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False,
                                           ec="tab:red" if r["edge"] else "white", lw=2.5 if r["edge"] else 1.2,
                                           ls="-" if r["edge"] else "--"))
        ax.set_xticks(range(len(ratios)), [f"{x:.2f}" for x in ratios])
        ax.set_yticks(range(len(sizes)), [str(n) for n in sizes])
        ax.set_xlabel("length ratio of the two classes")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("training images per class")
    base = rows[0]["lengths"][0][0]
    fig.colorbar(im, ax=axes, shrink=0.9, label="test accuracy (chance 0.5)")
    fig.suptitle(f"Learnability map, {scale} scale (first class {base:g} px; profile {summary['profile']}): "
                 "dashed = CNN in the edge band, red = compared with backdrop", fontsize=10)
    return fig


#: claim status -> point colour in :func:`edge_gains`
_STATUS_COLOR = {"relevant gain": "tab:green", "significant gain": "tab:olive", "contradicted": "tab:red",
                 "unfinished": "black"}


def edge_gains(summary: dict[str, Any]) -> plt.Figure:
    """Gain of each backdrop candidate over no backdrop (mean and 95 % interval over seeds, paired)
    in every edge cell and on the two-scale task, with each comparison's minimum detectable effect
    (80 % power, Holm) as a grey tick; confirmed gains green, significantly worse red. Rows of a
    two-scale task whose no-backdrop accuracy lies outside the (rescaled) edge band are shaded grey,
    hollow and labelled "(not at the edge)": they do not test backdrop at the edge."""
    from ..experiments.learnability.report import at_edge, twoscale_blocks

    band = summary["edge"].get("band") or (0.6, 0.9)
    blocks = [(f"{c['scale']} {c['lengths'][0][0]:g}/{c['lengths'][0][1]:g} px, {c['per_class']}/class", c, True)
              for c in summary["edge"]["cells"]]
    blocks += [(f"two-scale {t['per_class']}/class", t, at_edge(t, band)) for t in twoscale_blocks(summary)]
    labels, means, lows, highs, mdes, status, edge = [], [], [], [], [], [], []
    for name, b, inside in blocks:
        for r in b["comparisons"]:
            if not r.get("n"):
                continue
            edge.append(inside is not False)
            labels.append(f"{name}: {r['name']}" + ("" if edge[-1] else " (not at the edge)"))
            means.append(r["mean"])
            lows.append(r["low"] if r.get("low") is not None else r["mean"])
            highs.append(r["high"] if r.get("high") is not None else r["mean"])
            mdes.append((r.get("claim") or {}).get("mde"))
            status.append((r.get("claim") or {}).get("status"))
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.35 * max(1, len(labels))))
    y = np.arange(len(labels))[::-1]
    if labels:
        m = np.array(means)
        colors = [_STATUS_COLOR.get(st, "tab:blue") for st in status]
        for yi, mi, lo, hi, c, e in zip(y, m, lows, highs, colors, edge):
            if not e:                                   # a row that does not test the edge: shaded, hollow
                ax.axhspan(yi - 0.5, yi + 0.5, color="0.9", lw=0, zorder=0)
            ax.errorbar([mi], [yi], xerr=[[mi - lo], [hi - mi]], fmt="o", color=c, capsize=3,
                        mfc=c if e else "white", alpha=1.0 if e else 0.6)
        for yi, d in zip(y, mdes):
            if d is not None:
                ax.plot([d], [yi], marker="|", color="gray", ms=12)
        ax.set_yticks(y, labels, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no edge comparison recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.axvline(0, color="black", lw=1)
    ax.set_xlabel("test accuracy gain over no backdrop (paired by seed, 95 % CI; grey tick: MDE;\n"
                  "green: relevant gain, olive: significant gain below the margin, red: worse, black: unfinished "
                  "(no claim), blue: neither; after Holm over the study"
                  + (";\ngrey rows, hollow points: the task's no-backdrop accuracy lies outside the edge band, so the "
                     "row does not test the edge)" if not all(edge) else ")"))
    ax.set_title(f"Backdrop along the edge (profile {summary['profile']})", fontsize=10)
    return fig
