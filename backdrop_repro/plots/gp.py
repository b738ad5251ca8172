"""Figures of the gp-generate-demo notebook (GP fields in the authors' ``inferno`` colormap)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from . import GP_CMAP


def _image(ax, img: np.ndarray, title: str, cmap: str = GP_CMAP, **kw) -> None:
    ax.imshow(img, cmap=cmap, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])


def patch_stages(stages: Mapping[str, np.ndarray], cl: float, caption: str = "") -> plt.Figure:
    """The small-scale construction step by step (from :func:`backdrop_repro.gp.patch_demo`).

    Top row: 50×50 GP patch, upscaled patch, envelope, enveloped patch; bottom row: the canvas
    after some patches and the final standardised field. Returns the Figure.
    Example: ``patch_stages(gp.patch_demo(10.0, 256), 10.0)``.
    """
    canvases = sorted((k for k in stages if k.startswith("canvas_")), key=lambda k: int(k.split("_")[1]))
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.8))
    p = stages["upscaled"].shape[0]
    _image(axes[0, 0], stages["patch"], "50×50 GP patch, ℓ = min(8, cl) grid pts")
    _image(axes[0, 1], stages["upscaled"], f"cubic upscale ×{cl / min(8.0, cl):.3g} → {p}×{p} px")
    _image(axes[0, 2], stages["envelope"], "envelope exp(-23 |u-½|²)", cmap="gray")
    _image(axes[0, 3], stages["enveloped"], "patch × envelope")
    bottom = [(f"canvas after {k.split('_')[1]} patches", stages[k]) for k in canvases][:3]
    bottom.append((f"all {int(stages['count'])} patches, standardised", stages["final"]))
    for ax in axes[1]:
        ax.axis("off")
    for ax, (title, img) in zip(axes[1][4 - len(bottom):], bottom):
        ax.axis("on")
        _image(ax, img, title)
    fig.suptitle(f"small-scale construction, cl = {cl:g} px{caption}", fontsize=10)
    fig.tight_layout()
    return fig


def samples_per_length(fields: Mapping[float, np.ndarray], caption: str = "") -> plt.Figure:
    """One sample per correlation length, side by side (``{cl: (H, W) array}``).

    Example: ``samples_per_length({10.0: x10, 80.0: x80})``.
    """
    fig, axes = plt.subplots(1, len(fields), figsize=(3.2 * len(fields), 3.5), squeeze=False)
    for ax, (cl, img) in zip(axes[0], fields.items()):
        _image(ax, img, f"cl = {cl:g} px  ({img.shape[0]}²)", vmin=-3, vmax=3)
    fig.suptitle(f"one standardised sample per correlation length{caption}", fontsize=10)
    fig.tight_layout()
    return fig


def class_grid(images: Sequence[np.ndarray], names: Sequence[str], inset: int = 96,
               caption: str = "") -> plt.Figure:
    """The 2×2 grid of classes (rows: large scale, columns: small scale), each with a zoomed inset.

    ``images``: one ``(H, W)`` image per class in label order (first scale varying fastest);
    ``names``: their class names; ``inset``: side (px) of the top-left corner shown magnified,
    where the small blobs that tell 9.5 from 10 are visible. Example:
    ``class_grid([x0, x1, x2, x3], ["9.5-80", "10-80", "9.5-140", "10-140"])``.
    """
    if len(images) != 4 or len(names) != 4:
        raise ValueError(f"images and names must hold 4 classes, got {len(images)} and {len(names)}")
    fig, axes = plt.subplots(2, 2, figsize=(8, 8.2))
    vmax = float(max(np.abs(im).max() for im in images))
    for ax, img, name in zip(axes.ravel(), images, names):
        _image(ax, img, f"class {name}", vmin=-vmax, vmax=vmax)
        w = min(inset, img.shape[0] // 3)
        ins = ax.inset_axes([0.6, 0.6, 0.38, 0.38])
        ins.imshow(img[:w, :w], cmap=GP_CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest")
        ins.set_xticks([]), ins.set_yticks([])
        for spine in ins.spines.values():
            spine.set_edgecolor("white")
        ax.indicate_inset_zoom(ins, edgecolor="white")
    fig.suptitle(f"one sample per class (small-large lengths in px){caption}", fontsize=10)
    fig.tight_layout()
    return fig


def class_spectra(k: np.ndarray, exact: Mapping[str, np.ndarray],
                  empirical: Optional[Mapping[str, np.ndarray]] = None, caption: str = "") -> plt.Figure:
    """Radially averaged class spectra (left) and their ratio to the class average (right).

    ``exact``/``empirical``: ``{class name: (nbins,) power}`` on bin centres ``k`` (cycles/px).
    The ratio panel (exact spectra, where the mean is above 1e-6 of its peak) shows where classes
    differ: 9.5 vs 10 at k ≈ 0.05-0.1, 80 vs 140 at the lowest k. Generated windows (not periodic)
    also carry an edge-leakage tail at high k, visible in the dots. Example: ``class_spectra(k, {"9.5-80": p0, ...})``.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    mean = np.mean(list(exact.values()), axis=0)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    signal = mean >= 1e-6 * np.nanmax(mean)          # the ratio is exact but meaningless beyond
    for (name, p), c in zip(exact.items(), colors):
        a.loglog(k, p, color=c, label=name)
        b.semilogx(k[signal], (p / mean)[signal], color=c, label=name)
        if empirical and name in empirical:
            a.loglog(k, empirical[name], ".", color=c, ms=3)
    a.set_ylim(max(1e-6, mean.max() * 1e-7), mean.max() * 3)
    a.set_xlabel("|k| (cycles / px)"), a.set_ylabel("power")
    a.set_title("class spectra (lines: exact; dots: generated data)" if empirical else "class spectra", fontsize=9)
    b.set_xlabel("|k| (cycles / px)"), b.set_ylabel("power / mean over classes")
    b.axhline(1, color="k", lw=0.5)
    b.set_title("where the classes differ (exact, down to 1e-6 of the peak)", fontsize=9)
    b.xaxis.set_minor_formatter(NullFormatter())
    a.legend(fontsize=8)
    fig.suptitle(f"power spectra per class{caption}", fontsize=10)
    fig.tight_layout()
    return fig
