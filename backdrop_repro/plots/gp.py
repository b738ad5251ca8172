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

    Top row: the 50×50 GP patch, the upscaled patch, the envelope and the enveloped patch;
    bottom row: the canvas after some patches and the final standardised field (as many panels
    as there are stages: no empty axes). A footnote defines every symbol. Returns the Figure.
    Example: ``patch_stages(gp.patch_demo(10.0, 256), 10.0)``.
    """
    canvases = sorted((k for k in stages if k.startswith("canvas_")), key=lambda k: int(k.split("_")[1]))
    bottom = [(f"canvas after {k.split('_')[1]} patches", stages[k]) for k in canvases]
    bottom.append((f"all {int(stages['count'])} patches, standardised", stages["final"]))
    fig = plt.figure(figsize=(11, 6.6), layout="constrained")
    top_fig, bottom_fig = fig.subfigures(2, 1, height_ratios=[1, 1.1])
    top = top_fig.subplots(1, 4)
    p = stages["upscaled"].shape[0]
    ell = min(8.0, cl)
    _image(top[0], stages["patch"], f"50×50 GP patch, ℓ = {ell:g} grid pts")
    _image(top[1], stages["upscaled"], f"cubic upscale ×{cl / ell:.3g} → P = {p} px")
    _image(top[2], stages["envelope"], "envelope exp(-23 ((u-½)² + (v-½)²))", cmap="gray")
    _image(top[3], stages["enveloped"], "patch × envelope")
    axes = bottom_fig.subplots(1, len(bottom), squeeze=False)[0]
    for ax, (title, img) in zip(axes, bottom):
        _image(ax, img, title)
    n = stages["final"].shape[0]
    fig.suptitle(f"small-scale construction, cl = {cl:g} px, {n}×{n} canvas{caption}", fontsize=10)
    fig.text(0.5, -0.01, f"cl: correlation length of the field (px); ℓ = min(8, cl): length of the patch GP in grid "
             f"points; P: patch side after upscaling by cl/ℓ (px); u, v ∈ [0, 1]: position across the patch.\n"
             f"Patches are added at uniform random positions on a torus; every panel has its own colour scale "
             f"(inferno; grey: envelope, 0 to 1).", ha="center", va="top", fontsize=8)
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
                  empirical: Optional[Mapping[str, np.ndarray]] = None, caption: str = "",
                  offset: float = 10.0, ratio_offset: float = 0.5,
                  windowed: Optional[Mapping[str, np.ndarray]] = None) -> plt.Figure:
    """Radially averaged class spectra (left) and their ratio to the class average (right).

    ``exact``/``empirical``: ``{class name: (nbins,) power}`` on bin centres ``k`` (cycles/px).
    Classes that share a length have identical spectra where that length dominates, so the
    curves are offset (left: class i multiplied by ``offset**-i``, written as math text; right: shifted by
    ``-i * ratio_offset``, with its own reference line at ``1 - i * ratio_offset``): no curve
    hides another. The ratio panel (exact spectra, where the mean is above 1e-6 of its peak)
    shows where classes differ. ``windowed`` (same keys; e.g. from :func:`gp.window_spectrum`) adds,
    dashed, the expected spectrum of a *window* of each class's fields: non-periodic samples
    (``faithful``, ``matched``) follow it, not the stationary line, where edge leakage dominates.
    Example: ``class_spectra(k, {"9.5-80": p0, ...})``.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    mean = np.mean(list(exact.values()), axis=0)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    signal = mean >= 1e-6 * np.nanmax(mean)          # the ratio is exact but meaningless beyond
    for i, ((name, p), c) in enumerate(zip(exact.items(), colors)):
        f = offset ** -i
        a.loglog(k, p * f, color=c, label=f"{name} (×{f:g})")
        sh = i * ratio_offset
        b.semilogx(k[signal], (p / mean)[signal] - sh, color=c, label=f"{name} (−{sh:g})" if sh else name)
        b.axhline(1 - sh, color=c, lw=0.5, ls=":")
        if windowed and name in windowed:
            a.loglog(k, windowed[name] * f, color=c, ls="--", lw=0.9,
                     label="dashed: expected for a window (non-periodic image)" if i == 0 else None)
        if empirical and name in empirical:
            a.loglog(k, empirical[name] * f, ".", color=c, ms=3)
    a.set_ylim(max(1e-9, mean.max() * 1e-7 * offset ** -(len(exact) - 1)), mean.max() * 3)
    a.set_xlabel("|k| (cycles / px)"), a.set_ylabel(f"power (class $i$ × ${offset:g}^{{-i}}$)")
    a.set_title(("class spectra, offset (solid: stationary; dots: generated data)" if windowed else
                 "class spectra, offset (lines: exact; dots: generated data)") if empirical
                else "class spectra, offset", fontsize=9)
    b.set_xlabel("|k| (cycles / px)"), b.set_ylabel(f"power / mean over classes − $i$ × {ratio_offset:g}")
    b.set_title("where the classes differ (exact; dotted: ratio 1 of each curve)", fontsize=9)
    b.xaxis.set_minor_formatter(NullFormatter())
    for ax in (a, b):                                # below the axes: a legend inside would hide a curve
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.suptitle(f"power spectra per class{caption}", fontsize=10)
    return fig


def sampler_spectra(curves: Mapping[float, Mapping[str, tuple[np.ndarray, np.ndarray]]],
                    exact: Mapping[float, tuple[np.ndarray, np.ndarray]], caption: str = "",
                    offset: float = 10.0) -> plt.Figure:
    """Radial spectra of the samplers against the exact matched spectrum, one panel per length.

    ``curves``: ``{cl: {sampler label: (k, mean power)}}``; ``exact``: ``{cl: (k, power)}``.
    Sampler j is drawn multiplied by ``offset**-j`` with the exact spectrum (dotted black) at the
    same offset, so samplers that coincide (at large lengths "matched" *is* the faithful
    construction) stay visible. Example: ``sampler_spectra({10.0: {"faithful": (k, p)}}, {10.0: (k, s)})``.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.6), squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (cl, by_method) in zip(axes[0], curves.items()):
        ke, pe = exact[cl]
        floor = np.inf
        for j, ((label, (kk, p)), c) in enumerate(zip(by_method.items(), colors)):
            f = offset ** -j
            ax.loglog(kk, p * f, color=c, label=f"{label} (×{f:g})")
            ax.loglog(ke, pe * f, ":k", lw=1, label="exact matched spectrum (same offset)" if j == 0 else None)
            floor = min(floor, np.nanmax(pe) * f)
        ax.set_ylim(floor * 1e-6, np.nanmax(pe) * 3)
        ax.set_xlabel("|k| (cycles / px)"), ax.set_ylabel(f"power (sampler $j$ × ${offset:g}^{{-j}}$)")
        ax.set_title(f"cl = {cl:g} px", fontsize=9)
    # one legend for all panels (same samplers), below them: inside it would hide the curves
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"faithful vs matched samplers{caption}", fontsize=10)
    return fig


def single_field(img: np.ndarray, title: str) -> plt.Figure:
    """One GP image (``(H, W)``) in the ``inferno`` colormap with a colourbar and labelled axes; the
    title spans the figure, over the image and the colourbar.

    Example: ``single_field(dataset[0][0][0].numpy(), "sample 0")``.
    """
    fig, ax = plt.subplots(figsize=(4.4, 4), layout="constrained")
    im = ax.imshow(img, cmap=GP_CMAP, interpolation="nearest")
    ax.set_xlabel("x (px)"), ax.set_ylabel("y (px)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="value (standardised units)")
    fig.suptitle(title, fontsize=9)           # above the image and its colourbar: an axes title ran into the bar
    return fig


def training_sampler(paper: tuple[np.ndarray, str], shrunk: tuple[np.ndarray, str],
                     spectra: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], caption: str = "",
                     reference: str = "exact") -> plt.Figure:
    """The paper's image beside the training data's, and the training sampler's spectra.

    ``paper``/``shrunk``: ``(image (H, W), title)``, drawn at the same physical size so the number
    of blobs per image can be compared by eye; ``spectra``: ``{label: (k, generated power,
    reference power)}`` (e.g. one entry per training length), generated as dots and the
    ``reference`` (its name in the legend) as a line of the same colour, offset ×10 per entry.
    Example: ``training_sampler((img1024, "paper"), (img256, "shrunk"), {"2.375 px": (k, p, s)})``.
    """
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.5), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.35]})
    for ax, (img, title) in zip(axes[:2], (paper, shrunk)):
        _image(ax, img, f"{title}\n{img.shape[0]}² px")
    ax = axes[2]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lo = np.inf
    for j, ((label, (k, p, ref)), c) in enumerate(zip(spectra.items(), colors)):
        f = 10.0 ** -j
        ax.loglog(k, ref * f, color=c, lw=1.2, label=f"{label}: {reference} (×{f:g})")
        ax.loglog(k, p * f, ".", color=c, ms=3, label=f"{label}: generated")
        ok = ref[np.isfinite(ref) & (ref > 0)]
        if ok.size:
            lo = min(lo, float(ok.max()) * f)
    if np.isfinite(lo):
        ax.set_ylim(lo * 1e-7, None)
    ax.set_xlabel("|k| (cycles / px)"), ax.set_ylabel("power (offset per length)")
    ax.set_title("training sampler: spectra of its samples", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.suptitle(f"the paper's task and the training data{caption}", fontsize=10)
    return fig
