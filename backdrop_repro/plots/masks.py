"""Figures of the backdrop-demo notebook (one function per figure, each returns the Figure).

Conventions: gradient maps that are compared share one colour scale (so the ``1/mean(mask)``
rescale of kept cells is visible); 0/1 masks use a two-colour map labelled {blocked, kept}.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.patches import Patch

from . import GP_CMAP

#: the two colours of a 0/1 mask: blocked, kept
MASK_COLORS = ("#3b3b3b", "#f2d16b")
MASK_CMAP = ListedColormap(MASK_COLORS)
MASK_NORM = BoundaryNorm([-0.5, 0.5, 1.5], 2)
GRAD_CMAP = "magma"


def _mask_legend_handles() -> list:
    return [Patch(facecolor=MASK_COLORS[0], edgecolor="k", label="blocked (m = 0)"),
            Patch(facecolor=MASK_COLORS[1], edgecolor="k", label="kept (m = 1)")]


def _pixel_axes(ax, img: np.ndarray) -> None:
    h, w = img.shape
    ax.set_xticks([0, w - 1]), ax.set_yticks([0, h - 1])
    ax.set_xlabel("x (px)", fontsize=8, labelpad=-6), ax.set_ylabel("y (px)", fontsize=8, labelpad=-10)
    ax.tick_params(labelsize=7)


def gradient_panels(images: Sequence[np.ndarray], titles: Sequence[str], suptitle: str,
                    kinds: Sequence[str]) -> plt.Figure:
    """A row of input-space panels: gradient maps (``kind "grad"``) and 0/1 masks (``"mask"``).

    All ``"grad"`` panels (``(H, W)`` arrays of |dL/dx|) share one logarithmic colour scale and
    one colourbar, so a kept cell whose gradient was multiplied by ``1/mean(m)`` is visibly
    brighter than the unmasked map; zeros are drawn black. ``"mask"`` panels use the two-colour
    map with colourbar ticks {blocked, kept}. Returns the Figure.
    Example: ``gradient_panels([g, keep], ["|dL/dx|", "mask"], "demo", ["grad", "mask"])``.
    """
    if not (len(images) == len(titles) == len(kinds)):
        raise ValueError(f"images, titles and kinds must have the same length, got "
                         f"{len(images)}, {len(titles)}, {len(kinds)}")
    bad = [k for k in kinds if k not in ("grad", "mask")]
    if bad:
        raise ValueError(f"kinds must be 'grad' or 'mask', got {bad}")
    grads = [np.asarray(im, dtype=float) for im, k in zip(images, kinds) if k == "grad"]
    norm = None
    if grads:
        pos = np.concatenate([g[g > 0] for g in grads])
        vmin = float(np.percentile(pos, 1)) if pos.size else 1e-12
        vmax = max(float(max(g.max() for g in grads)), vmin * 10)
        norm = LogNorm(vmin=vmin, vmax=vmax)
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.9), squeeze=False, layout="constrained")
    grad_im, grad_axes = None, []
    for ax, img, title, kind in zip(axes[0], images, titles, kinds):
        img = np.asarray(img, dtype=float)
        if kind == "grad":
            grad_im = ax.imshow(np.where(img > 0, img, np.nan), cmap=GRAD_CMAP, norm=norm, interpolation="nearest")
            ax.set_facecolor("black")
            grad_axes.append(ax)
        else:
            im = ax.imshow(img, cmap=MASK_CMAP, norm=MASK_NORM, interpolation="nearest")
            cb = fig.colorbar(im, ax=ax, ticks=[0, 1], fraction=0.046, pad=0.03, shrink=0.6)
            cb.ax.set_yticklabels(["blocked", "kept"], fontsize=8)
        ax.set_title(title, fontsize=9)
        _pixel_axes(ax, img)
    if grad_im is not None:
        cb = fig.colorbar(grad_im, ax=grad_axes, fraction=0.046, pad=0.02, shrink=0.8)
        cb.set_label("|dL/dx| (one shared log scale)", fontsize=8)
    fig.suptitle(suptitle, fontsize=10)
    return fig


#: one colour per meaning across the backdrop-demo figures: the unmasked reference, dropout, backdrop
METHOD_COLORS = {"reference": "0.45", "dropout": "tab:orange", "backdrop": "tab:blue"}


def method_color(label: str) -> str:
    """The colour of a bar series by what it shows: a label naming backdrop or dropout gets that
    method's colour, anything else (``"no mask"``, ``"full gradient"``) the reference grey.
    Example: ``method_color("backdrop gradient") == "tab:blue"``."""
    low = label.lower()
    return next((c for k, c in METHOD_COLORS.items() if k in low), METHOD_COLORS["reference"])


def _bars(ax, values: Mapping[str, np.ndarray], kept: np.ndarray, ylabel: str, title: str) -> None:
    n = len(kept)
    width = 0.8 / len(values)
    for j, (label, v) in enumerate(values.items()):
        ax.bar(np.arange(n) + j * width - 0.4 + width / 2, v, width, label=label, color=method_color(label))
    for i in np.flatnonzero(np.asarray(kept) == 0):
        ax.axvspan(i - 0.5, i + 0.5, color="0.88", zorder=0)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(n))
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("sample i (grey band = blocked by the mask)", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=9)
    # legend above the axes, never over a bar
    ax.legend(fontsize=7, ncol=len(values), loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False)


def chain_rule_bars(values: Mapping[str, np.ndarray], kept: np.ndarray, title: str,
                    ylabel: str = "dL/dx_i") -> plt.Figure:
    """Grouped bars of per-sample gradients (e.g. full vs backdrop), blocked samples shaded.

    The legend sits above the axes so it never covers a bar. Returns the Figure.
    Example: ``chain_rule_bars({"full": g, "backdrop": gb}, keep, "L = var(w·x)")``.
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
    _bars(ax, values, kept, ylabel, "")
    fig.suptitle(title, fontsize=10)
    return fig


def dropout_vs_backdrop(forward: Mapping[str, np.ndarray], backward: Mapping[str, np.ndarray],
                        kept: np.ndarray, title: str) -> plt.Figure:
    """Side by side: what dropout and backdrop (same mask) do to the forward values and gradients.

    ``forward``/``backward``: ``{label: (n,) values}`` per method; ``kept``: the 0/1 mask.
    Example: ``dropout_vs_backdrop({"no mask": y, "dropout": yd}, {"no mask": g, ...}, m, "demo")``.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    _bars(a, forward, kept, "forward output y_i", "forward pass")
    _bars(b, backward, kept, "gradient dL/dx_i", "backward pass")
    fig.suptitle(title, fontsize=10)
    return fig


def monte_carlo_convergence(errors: Mapping[str, Mapping[str, np.ndarray]], title: str,
                            biases: Optional[Mapping[str, Mapping[str, float]]] = None) -> plt.Figure:
    """Relative error of the running average of N backdrop gradients vs N, one panel per setting.

    ``errors``: ``{panel title: {normalisation: (draws,) relative error}}``; a dotted line shows
    the 1/√N decay of an unbiased estimator; ``biases`` (same keys), if given, are drawn as
    dashed horizontal lines (the level a biased average stalls at) and named in the legend. All
    panels share a y-axis that holds every curve from N = 1 to the last draw (only an exact hit,
    an error at rounding level, falls below it); the normalisations
    differ in line style and width, so curves that coincide stay distinguishable.
    Example: ``monte_carlo_convergence({"coarse p=0.95": {"realized": e1, "expected": e2}}, "MC")``.
    """
    n = len(errors)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.9), squeeze=False, sharey=True, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # coinciding curves (e.g. every normalisation of a fine mask whose fallback never triggers) stay
    # visible: each normalisation has its own line style and width, the first drawn widest
    styles = [("-", 2.6), ("--", 1.6), (":", 1.6), ("-.", 1.2)]
    lo, hi = np.inf, 0.0
    for ax, (panel, curves) in zip(axes[0], errors.items()):
        for i, ((label, err), c) in enumerate(zip(curves.items(), colors)):
            err = np.asarray(err, dtype=float)
            nn = np.arange(1, len(err) + 1)
            ls, lw = styles[i % len(styles)]
            ax.loglog(nn, err, color=c, ls=ls, lw=lw, label=f"{label}")
            ok = err[np.isfinite(err)]
            ok = ok[ok > 1e-9 * ok.max()] if ok.size and ok.max() > 0 else ok[:0]   # an exact hit is rounding
            if ok.size:
                lo, hi = min(lo, float(ok.min())), max(hi, float(ok.max()))
            if biases and abs(biases[panel][label]) > 0:
                b = abs(biases[panel][label])
                ax.axhline(b, color=c, ls=(0, (6, 3)), lw=0.9, label=f"{label}: exact |bias| {b:.2f} (where it stalls)")
                lo, hi = min(lo, b), max(hi, b)
        first = np.asarray(next(iter(curves.values())), dtype=float)
        nn = np.arange(1, len(first) + 1)
        ax.loglog(nn, first[0] / np.sqrt(nn), ":", color="0.4", lw=1, label="1/√N (unbiased)")
        ax.set_xlabel("N masked gradients averaged", fontsize=9)
        ax.set_title(panel, fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    if np.isfinite(lo) and hi > 0:                   # every curve whole, from N = 1 to the last draw
        axes[0, 0].set_ylim(0.6 * lo, 1.6 * hi)
    axes[0, 0].set_ylabel("|mean of N − full| / |full|", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def two_scale_steps(image: np.ndarray, fine: Sequence[np.ndarray], coarse: Sequence[np.ndarray],
                    title: str) -> plt.Figure:
    """Where the gradient of successive training steps reaches one GP image through each mask.

    The forward pass sees the whole image in every step; a mask only decides where the gradient flows
    back. ``image`` ``(H, W)``; ``fine``/``coarse``: one 0/1 mask per step, already in input space
    ``(H, W)``. Top row: fine mask (most cells kept: the gradient reaches small scales almost
    everywhere); bottom row: coarse mask (about one cell kept: each step a different large-scale
    patch). Cells whose gradient is blocked are shaded with the mask's "blocked" colour.
    """
    steps = len(fine)
    if len(coarse) != steps or steps < 1:
        raise ValueError(f"fine and coarse must hold the same number (>= 1) of masks, got {len(fine)}, {len(coarse)}")
    fig, axes = plt.subplots(2, steps, figsize=(2.9 * steps, 6.2), squeeze=False, layout="constrained")
    v = float(np.abs(image).max())
    for row, (name, masks) in enumerate((("fine", fine), ("coarse", coarse))):
        for j, m in enumerate(masks):
            ax = axes[row, j]
            ax.imshow(image, cmap=GP_CMAP, vmin=-v, vmax=v, interpolation="nearest")
            shade = np.where(np.asarray(m) == 0, 0.0, np.nan)
            ax.imshow(shade, cmap=ListedColormap([MASK_COLORS[0]]), alpha=0.85, interpolation="nearest")
            ax.set_title(f"step {j + 1}: {name} mask, {np.asarray(m).mean():.0%} kept", fontsize=8)
            _pixel_axes(ax, image)
    fig.legend(handles=[Patch(facecolor=MASK_COLORS[0], edgecolor="k", label="blocked (m = 0): no gradient flows back here"),
                        Patch(facecolor="none", edgecolor="k", label="kept (m = 1): the gradient flows back here")],
               loc="outside lower center", ncol=2, fontsize=8,
               title="the forward pass sees the whole image in every step", title_fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
