"""The forest plot of a claims table: each comparison's paired gain with its 95 % interval, its status, its MDE.

Draw only: it takes rows of :mod:`backdrop_repro.claims` (primary rows of one metric) and returns a
matplotlib Figure (save it with :func:`backdrop_repro.plots.save`). The README's headline figure and
the pre-registered studies' figures are this one function.
"""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt

__all__ = ["forest", "STATUS_COLOURS", "label"]

#: one colour per status of the claim grammar
STATUS_COLOURS = {"relevant gain": "#1a9850", "significant gain": "#66a61e", "contradicted": "#d73027",
                  "equivalent": "#4575b4", "not confirmed": "#74add1", "inconclusive": "#878787",
                  "unfinished": "#000000"}


#: short names of the authors' settings, so labels stay legible at README width
SHORT = {"demo: fine 0.3 + coarse 0.95": "demo", "fine 0.9 + coarse 0.95": "fine 0.9+coarse 0.95"}


def label(r: dict[str, Any]) -> str:
    """``study · task`` over ``arm vs baseline`` (the row's identity; ``demo`` is fine 0.3 + coarse 0.95)."""
    task = f" · {r['task']}" if r.get("task") else ""
    arm, base = (SHORT.get(x, x) for x in (r["arm"], r["baseline"]))
    return f"{r['study']}{task}\n{arm} vs {base}"


def forest(rows: Sequence[dict[str, Any]], title: str = "", epochs: bool = False, fontsize: float = 11) -> plt.Figure:
    """One line per row (top to bottom in order): the mean paired gain and its 95 % interval, coloured by status;
    the ±margin band shaded; the design's MDE as ticks either side of zero; the status (and with ``epochs`` the
    median epochs each arm trained) printed on the right. Sized to stay legible at README width (8 in wide)."""
    rows = [r for r in rows if r.get("ci_low") is not None]
    if not rows:
        raise ValueError("rows must hold at least one comparison with an interval")
    metrics = {r["metric"] for r in rows}
    if len(metrics) != 1:
        raise ValueError(f"rows must share one metric, got {sorted(metrics)}")
    margin = max((r["margin"] or 0) for r in rows)
    fig, ax = plt.subplots(figsize=(3.6, 0.9 + 0.55 * len(rows)))
    for i, r in enumerate(rows):
        c = STATUS_COLOURS[r["status"]]
        ax.errorbar(r["delta"], i, xerr=[[r["delta"] - r["ci_low"]], [r["ci_high"] - r["delta"]]], fmt="o", color=c,
                    capsize=3, ms=5, lw=1.6)
        if r.get("mde"):
            ax.plot([-r["mde"], r["mde"]], [i, i], "|", color="0.35", ms=9, mew=1.2)
        note = r["status"] + (f"\nMDE {r['mde']:.3f}" if r.get("mde") else "")
        if epochs and r.get("epochs_arm") is not None and r.get("epochs_baseline") is not None:
            note += f" · epochs {r['epochs_arm']:.0f} vs {r['epochs_baseline']:.0f}"
        ax.annotate(note, (1.01, i), xycoords=("axes fraction", "data"), va="center", fontsize=fontsize - 1, color=c)
    if margin:
        ax.axvspan(-margin, margin, color="0.92", zorder=0)
    ax.axvline(0, color="0.4", lw=0.8)
    ax.set_yticks(range(len(rows)), [label(r) for r in rows], fontsize=fontsize - 1)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=fontsize - 1)
    ax.set_xlabel(f"paired gain in {metrics.pop()}\n(arm − baseline, 95 % interval)", fontsize=fontsize)
    ax.set_title(title or ("demo = the authors' fine 0.3 + coarse 0.95" + (f"; grey band ±{margin:g}" if margin else "")
                           + "; ticks ±MDE"), fontsize=fontsize - 1, loc="right")

    return fig
