"""Figures of the backdrop-demo notebook."""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm


def gradient_panels(images: Sequence[np.ndarray], titles: Sequence[str], suptitle: str,
                    log: Sequence[bool] | None = None, cmap: str = "magma") -> plt.Figure:
    """A row of image panels, e.g. |dL/dx| maps and masks in input space.

    ``images``: list of ``(H, W)`` arrays; ``log[i]`` shows panel i on a log colour scale
    (zeros drawn black). Returns the Figure.
    """
    if len(images) != len(titles):
        raise ValueError(f"titles must have one entry per image ({len(images)}), got {len(titles)}")
    log = list(log) if log is not None else [False] * len(images)
    fig, axes = plt.subplots(1, len(images), figsize=(3.4 * len(images), 3.6), squeeze=False)
    for ax, img, title, lg in zip(axes[0], images, titles, log):
        if lg:
            pos = img[img > 0]
            vmin = float(np.percentile(pos, 1)) if pos.size else 1e-12
            im = ax.imshow(np.where(img > 0, img, np.nan), cmap=cmap,
                           norm=LogNorm(vmin=vmin, vmax=max(float(img.max()), vmin * 10)))
            ax.set_facecolor("black")
        else:
            im = ax.imshow(img, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def chain_rule_bars(values: dict[str, np.ndarray], kept: np.ndarray, title: str,
                    ylabel: Optional[str] = "dL/dx_i") -> plt.Figure:
    """Grouped bars of per-sample gradients (e.g. full vs backdrop), blocked samples shaded."""
    n = len(kept)
    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / len(values)
    for j, (label, v) in enumerate(values.items()):
        ax.bar(np.arange(n) + j * width - 0.4 + width / 2, v, width, label=label)
    for i in np.flatnonzero(kept == 0):
        ax.axvspan(i - 0.5, i + 0.5, color="0.85", zorder=0)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(n))
    ax.set_xlabel("sample i (grey = blocked by the mask)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
