"""Figures of the two demo notebooks (``plots/gp.py``, ``plots/masks.py``): shared colour scales, discrete masks, no empty panels."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from backdrop_repro import gp  # noqa: E402
from backdrop_repro.plots import gp as gplots  # noqa: E402
from backdrop_repro.plots import masks as mplots  # noqa: E402


def _labelled(ax) -> bool:
    return bool(ax.get_xlabel()) and bool(ax.get_ylabel())


def test_gradient_panels_share_one_scale_and_draw_masks_with_two_colours():
    rng = np.random.default_rng(0)
    g = rng.random((32, 32))
    keep = (rng.random((32, 32)) > 0.5).astype(float)
    fig = mplots.gradient_panels([g, keep, 16 * g * keep], ["a", "b", "c"], "t", ["grad", "mask", "grad"])
    panels = fig.axes[:3]
    ims = [ax.get_images()[0] for ax in panels]
    assert ims[0].norm is ims[2].norm                            # the ×16 stays visible
    assert ims[0].norm.vmax == pytest.approx(float((16 * g * keep).max()))
    assert ims[1].cmap.N == 2                                    # binary mask: two colours
    labels = [t.get_text() for ax in fig.axes[3:] for t in ax.get_yticklabels()]
    assert "blocked" in labels and "kept" in labels
    assert all(_labelled(ax) for ax in panels)
    with pytest.raises(ValueError, match="kinds"):
        mplots.gradient_panels([g], ["a"], "t", ["bogus"])
    plt.close("all")


def test_bar_figures_keep_the_legend_off_the_bars():
    kept = np.array([1, 0, 1, 0])
    v = np.array([1.0, -2.0, 3.0, 0.5])
    for fig in (mplots.chain_rule_bars({"full": v, "backdrop": 2 * v * kept}, kept, "t"),
                mplots.dropout_vs_backdrop({"a": v, "b": v}, {"a": v, "b": v}, kept, "t")):
        fig.canvas.draw()
        for ax in fig.axes:
            leg = ax.get_legend()
            assert leg is not None and _labelled(ax)
            # the legend box lies above the axes box
            assert leg.get_window_extent().y0 >= ax.get_window_extent().y1 - 1
    plt.close("all")


def test_monte_carlo_and_two_scale_figures():
    err = {"fine": {"realized": np.linspace(1, 0.01, 50), "naive": np.linspace(5, 4, 50)}}
    fig = mplots.monte_carlo_convergence(err, "t", biases={"fine": {"realized": 0.0, "naive": 4.0}})
    assert all(ax.get_xlabel() for ax in fig.axes) and fig.axes[0].get_ylabel()
    img = np.random.default_rng(1).standard_normal((16, 16))
    masks = [np.kron(np.eye(2), np.ones((8, 8)))] * 2
    fig = mplots.two_scale_steps(img, masks, masks, "t")
    assert len(fig.axes) == 4 and all(_labelled(ax) for ax in fig.axes)
    plt.close("all")


def test_patch_stages_has_no_empty_panel_and_defines_its_symbols():
    st = gp.patch_demo(5.0, 64, partial=(3,))
    fig = gplots.patch_stages(st, 5.0)
    axes = [ax for sf in fig.subfigs for ax in sf.axes]
    assert len(axes) == 4 + 2                                    # 4 stages + (1 canvas + final)
    assert all(ax.get_images() and ax.axison for ax in axes)
    text = " ".join(t.get_text() for t in fig.texts)
    for symbol in ("cl:", "ℓ", "P:", "u, v"):
        assert symbol in text
    plt.close("all")


def test_spectra_figures_offset_their_curves_and_label_every_axis():
    k, s1 = gp.radial_average(gp.se_spectrum(64, 4.0), nbins=16)
    fig = gplots.class_spectra(k, {"a": s1, "b": s1, "c": s1})    # identical spectra ...
    left = fig.axes[0]
    ys = [line.get_ydata() for line in left.get_lines()]
    assert not np.allclose(ys[0], ys[1])                         # ... still three distinct curves
    assert all(_labelled(ax) for ax in fig.axes)
    fig = gplots.sampler_spectra({4.0: {"x": (k, s1), "y": (k, s1)}}, {4.0: (k, s1)})
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "-"]
    assert len(lines) == 2 and not np.allclose(lines[0].get_ydata(), lines[1].get_ydata())
    assert all(_labelled(ax) for ax in fig.axes)
    fig = gplots.single_field(np.zeros((8, 8)), "t")
    assert _labelled(fig.axes[0])
    plt.close("all")
