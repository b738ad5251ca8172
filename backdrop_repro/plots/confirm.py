"""Figure of the confirmatory study: the four pre-registered paired gains with their intervals and MDE.

Takes the summary of :func:`backdrop_repro.experiments.confirm.report.write_summary` (complete) and
returns a matplotlib Figure; save it with :func:`backdrop_repro.plots.save`.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

__all__ = ["paired_gains"]

#: one colour per status of the claim grammar (shared by every row of the figure)
STATUS_COLOURS = {"relevant gain": "tab:green", "significant gain": "tab:olive", "contradicted": "tab:red",
                  "equivalent": "tab:cyan", "not confirmed": "tab:blue", "inconclusive": "tab:gray",
                  "unfinished": "black"}


def paired_gains(summary: dict[str, Any]) -> plt.Figure:
    """One row per comparison: the mean paired gain in test accuracy (arm - none) with its 95 %
    interval, coloured by its status; the ±margin band shaded; the design's MDE (80 % power, Holm
    over the family) as a tick on each side of zero. Primary endpoint (task accuracy) on the left,
    the small-scale accuracy gain on the right."""
    rows = summary.get("comparisons")
    if not rows:
        raise ValueError("the summary holds no comparison (the study is not complete)")
    margin = summary["design"]["margin"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.7 * len(rows)), sharey=True)
    labels = [f"{r['task']}\n{r['label']}" for r in rows]
    for ax, which in zip(axes, ("task", "small")):
        for i, r in enumerate(rows):
            d = r if which == "task" else r["scales"]["small"]["diff"]
            if not d or d.get("low") is None:
                continue
            colour = STATUS_COLOURS.get(r["status"], "tab:purple") if which == "task" else "tab:gray"
            ax.errorbar(d["mean"], i, xerr=[[d["mean"] - d["low"]], [d["high"] - d["mean"]]], fmt="o",
                        color=colour, capsize=3, label=r["status"] if which == "task" else None)
            if which == "task" and r.get("mde"):
                ax.plot([-r["mde"], r["mde"]], [i, i], "|", color="k", ms=12, mew=1.5)
        ax.axvspan(-margin, margin, color="0.9", zorder=0)
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_xlabel("paired gain in test accuracy (arm − none)" if which == "task"
                      else "paired gain in small-scale test accuracy")
        ax.set_title("primary endpoint (task accuracy)" if which == "task" else "secondary: small scale")
    axes[0].set_yticks(range(len(rows)), labels)
    axes[0].invert_yaxis()
    handles, names = axes[0].get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    uniq["MDE (80 % power, Holm)"] = plt.Line2D([], [], marker="|", color="k", ls="", ms=12, mew=1.5)
    fig.legend(uniq.values(), uniq.keys(), loc="upper center", ncol=len(uniq), bbox_to_anchor=(0.5, 1.02),
               frameon=False, fontsize=8)
    fig.suptitle(f"profile {summary['profile']}: pre-registered comparisons, 95 % intervals; grey band ±{margin:g}",
                 y=1.08, fontsize=10)
    fig.tight_layout()
    return fig
