"""Figures of the gp-training notebook: learning curves, accuracy vs mask probability, gradients.

Every function takes the sweep dict of :func:`backdrop_repro.experiments.run_sweep` (or the
objects named) and returns a matplotlib Figure; save it with :func:`backdrop_repro.plots.save`.
"""
from __future__ import annotations

import textwrap
from typing import Any, Optional

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
import numpy as np
import torch

from . import GP_CMAP

__all__ = ["learning_curves", "curves_caption", "still_training", "loss_spikes", "scale_accuracy", "accuracy_vs_prob", "data_size_curve", "gradient_maps", "COLORS"]

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
    """The likelihood classifier's accuracy: a dashed line if it is in range, else a legend entry
    (no marker) saying it lies above the range, so no note is drawn over the data."""
    if not ref:
        return
    name = "likelihood classifier" + ("" if ref.get("exact") else " (approx.)")
    top = ax.get_ylim()[1]
    if ref["test_accuracy"] <= top:
        ax.axhline(ref["test_accuracy"], color="tab:red", ls="--", lw=1, label=name)
    else:
        ax.plot([], [], ls="none", label=f"{name}: {ref['test_accuracy']:.3f}, above this range")


def _still_learning(row: dict[str, Any]) -> Optional[str]:
    """Why a summary row's runs had not finished learning (the report's rule), or None."""
    from ..experiments.gp_sweep.report import still_learning as why

    return why({**row, "stop_reasons": row.get("stop_reasons") or {}})


def _curve_band(runs: list[dict], key: str, min_share: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and standard error over the runs that reached each epoch (0 with one run).

    A run counts at every epoch up to its last one (its history's end). With ``min_share`` > 0 the
    band ends at the last epoch where at least that share of ``runs`` is still training, so a mean
    is never carried by a few late survivors."""
    per: dict[int, list[float]] = {}
    for r in runs:
        for h in r["history"]:
            if key in h:
                per.setdefault(h["epoch"], []).append(h[key])
    if min_share > 0 and runs:
        last = _last_epochs(runs)
        per = {e: v for e, v in per.items() if sum(x >= e for x in last) >= min_share * len(runs)}
    ep = np.array(sorted(per))
    m = np.array([np.mean(per[e]) for e in ep])
    se = np.array([np.std(per[e], ddof=1) / np.sqrt(len(per[e])) if len(per[e]) > 1 else 0.0 for e in ep])
    return ep, m, se


def _last_epochs(runs: list[dict]) -> list[int]:
    """The last epoch of each run's history (where it stopped)."""
    return [max((h["epoch"] for h in r["history"]), default=0) for r in runs]


def still_training(runs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """``(epochs 1..max, number of runs whose history reaches each epoch)``.
    Example: ``still_training([{"history": [{"epoch": 1}, {"epoch": 2}]}])[1].tolist() == [1, 1]``."""
    last = np.array(_last_epochs(runs))
    ep = np.arange(1, int(last.max(initial=0)) + 1)
    return ep, np.array([int((last >= e).sum()) for e in ep])


#: a training-loss spike: an epoch whose running loss exceeds the previous epoch's by this factor
SPIKE_FACTOR = 2.0


def loss_spikes(runs: list[dict], factor: float = SPIKE_FACTOR) -> dict[str, Any]:
    """Spikes of the running training loss over ``runs``: epochs whose loss is above ``factor`` × the
    previous epoch's. ``n`` spikes, ``runs`` with at least one, ``recovery`` (epochs until the loss is
    back at or below the pre-spike level, one per recovered spike), ``unrecovered`` (not back by the
    run's end). Example: ``loss_spikes([{"history": [{"epoch": 1, "train_loss": 1.0},
    {"epoch": 2, "train_loss": 3.0}, {"epoch": 3, "train_loss": 0.9}]}])["recovery"] == [1]``."""
    n, hit, rec, unrec = 0, 0, [], 0
    for r in runs:
        loss = [h["train_loss"] for h in sorted(r["history"], key=lambda h: h["epoch"]) if "train_loss" in h]
        found = False
        for i in range(1, len(loss)):
            if loss[i - 1] > 0 and loss[i] > factor * loss[i - 1]:
                n, found = n + 1, True
                back = next((j - i for j in range(i + 1, len(loss)) if loss[j] <= loss[i - 1]), None)
                if back is None:
                    unrec += 1
                else:
                    rec.append(back)
        hit += found
    return {"n": n, "runs": hit, "recovery": rec, "unrecovered": unrec}


def curves_caption(sweep: dict[str, Any]) -> str:
    """What the learning-curve figure shows, worded from the runs (seeds, where runs stopped, spikes).
    Example: ``curves_caption(sweep)``."""
    by_label = _runs(sweep)
    runs = [r for rs in by_label.values() for r in rs]
    if not runs:
        return "no grid run recorded"
    ns = sorted({len(rs) for rs in by_label.values()})
    seeds = f"{ns[0]} seeds" if len(ns) == 1 else f"{ns[0]}–{ns[-1]} seeds"
    last = _last_epochs(runs)
    if min(last) == max(last):
        stop = f"every run trains the full {max(last)} epochs"
    else:
        stop = (f"runs stop on their own between epochs {min(last)} and {max(last)}; each mean ends where fewer than "
                f"half of its configuration's runs remain (bottom row: runs still training)")
    sp = loss_spikes(runs)
    if not sp["n"]:
        spikes = f"no training-loss spike (an epoch above {SPIKE_FACTOR:g}× the one before)"
    else:
        rec = sp["recovery"]
        spikes = (f"{sp['n']} training-loss spike(s) (an epoch above {SPIKE_FACTOR:g}× the one before) in {sp['runs']} "
                  f"of {len(runs)} runs")
        if rec:
            spikes += f"; back to the pre-spike loss after median {int(np.median(rec))}, at most {max(rec)} epochs"
        if sp["unrecovered"]:
            spikes += f"; {sp['unrecovered']} not back by the run's end"
    return f"mean ± 1 s.e. over the runs still training ({seeds} per configuration); {stop}\n{spikes}"


def scale_accuracy(sweep: dict[str, Any], study: str = "grid") -> plt.Figure:
    """What the networks learned: test accuracy on the 4 classes, on the small scale and on the
    large scale (the 4-class prediction marginalised onto each scale), mean and 95 % CI over
    seeds per configuration, with chance and the likelihood classifier's accuracy on each.
    The per-scale panels appear only when some configuration's records hold per-scale
    predictions (a row without them says "not recorded"); legends sit below the panels, off the data."""
    rows = [r for r in sweep["summary"] if r["study"] == study]
    ref = sweep.get("reference", {}).get("main") or {}
    per_scale = any(r.get("scales") for r in rows)
    panels = [("4 classes", None, 0.25, ref.get("test_accuracy"))]
    if per_scale:
        panels += [("small scale", 0, 0.5, ref.get("small_scale_accuracy")),
                   ("large scale", -1, 0.5, ref.get("large_scale_accuracy"))]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels) + 2.5, 4.4 + 0.12 * len(rows)), sharey=True,
                             squeeze=False, layout="constrained")
    axes = axes[0]
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
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    axes[0].set_yticks(y, [r["label"] + (f" ({r['per_class']}/class)" if study == "data_size" else "") for r in rows],
                       fontsize=8)
    axes[0].invert_yaxis()
    what = "what the networks learned, per scale" if per_scale else \
        "test accuracy on the 4 classes (per-scale accuracy not recorded in these runs)"
    fig.suptitle(f"GP task, profile '{sweep['profile']}': {what}")
    return fig


#: panels of the learning curves: each mask family against no backdrop (demo joins "both")
FAMILIES = (("fine", ("fine",)), ("coarse", ("coarse",)), ("both masks", ("both", "demo")))


def learning_curves(sweep: dict[str, Any]) -> plt.Figure:
    """Training loss (running mean over the epoch, masks on; log scale; top row), validation
    accuracy (masks off; middle row) and the number of runs still training (bottom row, only when
    runs stop at different epochs) against epoch, one column per mask family (fine, coarse, both
    masks with the authors' demo setting), each against no backdrop: mean over the runs still
    training with a band of ±1 standard error, ended where fewer than half of a configuration's
    runs remain. The caption (:func:`curves_caption`) is worded from the runs.
    Example: ``save(learning_curves(sweep), "gp-training-smoke-learning-curves")``."""
    by_label = _runs(sweep)
    fams = [(t, cs) for t, cs in FAMILIES if any(r[0]["config"]["config"] in cs for r in by_label.values())]
    fams = fams or [("no backdrop", ())]
    last = _last_epochs([r for rs in by_label.values() for r in rs])
    staggered = bool(last) and min(last) != max(last)
    nrows = 3 if staggered else 2
    fig, axes = plt.subplots(nrows, len(fams), figsize=(max(7.5, 4.3 * len(fams) + 0.8), 7.2 + 1.6 * (nrows - 2)), squeeze=False,
                             sharex=True, sharey="row", layout="constrained",
                             gridspec_kw={"height_ratios": [1, 1, 0.45][:nrows]})
    for col, (title, cs) in enumerate(fams):
        ax_l, ax_v = axes[0, col], axes[1, col]
        for label, runs in by_label.items():
            cfg = runs[0]["config"]
            if cfg["config"] != "none" and cfg["config"] not in cs:
                continue
            color = COLORS[cfg["config"]] if cfg["config"] in ("none", "demo") else \
                plt.cm.viridis(0.15 + 0.35 * (cfg["level"] % 3))
            style = "-" if cfg["config"] != "demo" else "-."
            lw = 1.8 if cfg["config"] == "none" else 1.3
            for ax, key in ((ax_l, "train_loss"), (ax_v, "val_accuracy")):
                ep, m, se = _curve_band(runs, key, min_share=0.5)
                if not ep.size:
                    continue
                ax.plot(ep, m, color=color, ls=style, lw=lw, marker="o" if key == "val_accuracy" else None, ms=2.5,
                        label=label if key == "train_loss" else None)
                ax.fill_between(ep, m - se, m + se, color=color, alpha=0.15, lw=0)
            if staggered:
                ep, n = still_training(runs)
                axes[2, col].step(ep, n, where="post", color=color, ls=style, lw=lw)
                axes[2, col].axhline(len(runs) / 2, color=color, lw=0.6, ls=":")
        ax_l.set_yscale("log")
        ax_l.set_title(f"{title} vs no backdrop", fontsize=10)
        ax_v.axhline(0.25, color="gray", ls=":", lw=1, label="chance")
        axes[-1, col].set_xlabel("epoch")
        hs, ls = ax_l.get_legend_handles_labels()
        hv, lv = ax_v.get_legend_handles_labels()
        axes[-1, col].legend(hs + hv, ls + lv, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3 * nrows / 2),
                             ncol=2, title="configuration", title_fontsize=7, frameon=False)   # below: off the data
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("training loss\n(running mean over the epoch, masks on)")
    axes[1, 0].set_ylabel("validation accuracy (masks off)")
    if staggered:
        axes[2, 0].set_ylabel("runs still training\n(dotted: half)")
        axes[2, 0].set_ylim(bottom=0)
    width = int(fig.get_figwidth() * 15)              # characters per line at fontsize 9
    text = f"GP task, profile '{sweep['profile']}': learning curves, {curves_caption(sweep)}"
    fig.suptitle("\n".join(textwrap.fill(part, width) for part in text.split("\n")), fontsize=9)
    return fig


def _ci(s: dict) -> tuple[float, float, float]:
    """(mean, low, high) of a summary; the mean for a missing bound (one seed)."""
    m = s["mean"]
    return m, (s["low"] if s.get("low") is not None else m), (s["high"] if s.get("high") is not None else m)


def accuracy_vs_prob(sweep: dict[str, Any]) -> plt.Figure:
    """Test accuracy against blocking probability for the fine, coarse and paired masks.

    Top row: mean and 95 % CI over seeds per configuration; no backdrop as a band, the authors'
    demo setting as a star, the likelihood classifier as a line (or a legend entry when it lies
    above the range). Bottom row: what the verdict tests, the **paired** difference to no backdrop
    (same seed: same initial weights, data order and data), one dot per seed and the mean with its
    95 % CI, with the Holm-adjusted p of the verdict. Example: ``accuracy_vs_prob(sweep)``."""
    from .. import report

    rows = [r for r in sweep["summary"] if r["study"] == "grid"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.4), sharey="row", sharex="col",
                             gridspec_kw={"height_ratios": [1.1, 1]})
    base = next((r for r in rows if r["config"] == "none"), None)
    ref = sweep.get("reference", {}).get("main")
    holm = {c["name"]: c.get("p_holm") for c in (sweep.get("verdict") or {}).get("comparisons", [])}
    demo = next((r for r in rows if r["config"] == "demo"), None)
    vals, dvals = [], []
    rng = np.random.default_rng(0)                      # horizontal jitter of the per-seed dots only
    for col, (config, xkey) in enumerate(zip(("fine", "coarse", "both"), ("fine_prob", "coarse_prob", "fine_prob"))):
        ax, axd = axes[0, col], axes[1, col]
        rs = sorted((r for r in rows if r["config"] == config), key=lambda r: r["level"])
        if base:
            m, lo, hi = _ci(base["test_accuracy"])
            ax.axhline(m, color="black", lw=1.2, label="no backdrop (mean, 95 % CI)")
            ax.axhspan(lo, hi, color="black", alpha=0.1)
            vals += [lo, hi]
        xs = list(range(len(rs))) if config == "both" else [r[xkey] for r in rs]
        shown = list(zip(xs, rs))
        if config == "both" and demo:
            shown.append((len(rs), demo))
        if rs:
            cis = np.array([_ci(r["test_accuracy"]) for r in rs])
            ax.errorbar(xs, cis[:, 0], yerr=[cis[:, 0] - cis[:, 1], cis[:, 2] - cis[:, 0]], color=COLORS[config],
                        marker="o", capsize=3, label=f"{config} (mean, 95 % CI)")
            vals += list(cis[:, 1]) + list(cis[:, 2])
        if config == "both" and demo:
            m, lo, hi = _ci(demo["test_accuracy"])
            ax.errorbar([len(rs)], [m], yerr=[[m - lo], [hi - m]], color=COLORS["demo"], marker="*", ms=10, capsize=3,
                        ls="none", label="demo: fine 0.3 + coarse 0.95")
            vals += [lo, hi]
        width = 0.15 * (max(xs) - min(xs) if len(xs) > 1 else 1.0)
        for x, r in shown:                              # the paired differences, what the verdict tests
            color = COLORS["demo"] if r["config"] == "demo" else COLORS[config]
            d = report.paired(base["by_seed"], r["by_seed"]) if base else None
            if not d:
                continue
            diffs = [float(r["by_seed"][k]) - float(base["by_seed"][k]) for k in d["seeds"]]
            axd.scatter(x + rng.uniform(-0.5, 0.5, len(diffs)) * width * 0.6, diffs, s=8, color=color, alpha=0.4)
            m, lo, hi = _ci(d)
            axd.errorbar([x + width * 0.45], [m], yerr=[[m - lo], [hi - m]], color=color,
                         marker="*" if r["config"] == "demo" else "o", ms=8 if r["config"] == "demo" else 5, capsize=3)
            if holm.get(r["label"]) is not None:
                axd.annotate(f"Holm p\n{holm[r['label']]:.2g}", (x, 1.0), xycoords=("data", "axes fraction"),
                             xytext=(0, -2), textcoords="offset points", ha="center", va="top", fontsize=7)
            dvals += diffs + [lo, hi]
        axd.axhline(0.0, color="black", lw=1, ls=":")
        ax.axhline(0.25, color="gray", ls=":", lw=1, label="chance")
        if config == "both":
            ticks = [f"{r['fine_prob']:g} / {r['coarse_prob']:g}" for r in rs]
            if demo:
                ticks.append(f"{demo['fine_prob']:g} / {demo['coarse_prob']:g}\n(demo)")
            axd.set_xticks(range(len(ticks)), ticks)
        axd.set_xlabel({"fine": "fine-mask blocking probability", "coarse": "coarse-mask blocking probability",
                        "both": "fine / coarse blocking probability"}[config])
        ax.set_title("both masks" if config == "both" else f"{config} mask only", fontsize=10)
        for a in (ax, axd):
            a.grid(alpha=0.3, axis="y")
    axes[0, 0].set_ylabel("test accuracy")
    axes[1, 0].set_ylabel("Δ test accuracy vs no backdrop\n(same seed; dots: seeds; mean, 95 % CI)")
    _ylim(axes[0, 0], vals)
    if dvals:
        span = max(abs(min(dvals)), abs(max(dvals)))
        axes[1, 0].set_ylim(-1.1 * span, 1.35 * span)   # headroom for the Holm p labels
    for ax in axes[0]:
        _ref(ax, ref)
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(4, len(handles)), fontsize=8,
               bbox_to_anchor=(0.5, -0.01))
    n = len(base["seeds"]) if base else 0
    fig.suptitle(f"profile '{sweep['profile']}': test accuracy vs blocking probability (top: mean, 95 % CI over {n} "
                 f"seeds; bottom: paired difference to no backdrop, as the verdict tests it)", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def data_size_curve(sweep: dict[str, Any]) -> plt.Figure:
    """Test accuracy against training images per class for ``none`` and the configuration of the
    studies (mean and 95 % CI over seeds; same image visits at every size). The profile's own size
    comes from the grid's runs (said on its tick); points whose runs had not finished learning at
    the end of their budget (the report's rule) are drawn hollow and named in the legend."""
    p = sweep["settings"]["data"]
    main = p["method"]
    rows = [r for r in sweep["summary"] if r["method"] == main and r["study"] in ("grid", "data_size")]
    studied = {r["label"] for r in rows if r["study"] == "data_size"}
    from ..experiments.gp_sweep.report import selected_label

    best = selected_label(sweep)
    other = best if best in studied or not studied else sorted(studied - {"none"} or studied)[0]
    fig, ax = plt.subplots(figsize=(7, 5.8), layout="constrained")
    vals, unfinished = [], []
    for label, color in (("none", "black"), (other, COLORS["demo"] if other and "demo" in other else COLORS["fine"])):
        if label is None:
            continue
        rs = sorted((r for r in rows if r["label"] == label), key=lambda r: r["per_class"])
        if not rs:
            continue
        x = [r["per_class"] for r in rs]
        cis = np.array([_ci(r["test_accuracy"]) for r in rs])
        name = "no backdrop" if label == "none" else label + (" (best on validation)" if label == best else "")
        ax.errorbar(x, cis[:, 0], yerr=[cis[:, 0] - cis[:, 1], cis[:, 2] - cis[:, 0]], marker="none", capsize=3,
                    color=color, label=name)
        for xi, r, (m, _, _) in zip(x, rs, cis):
            why = _still_learning(r)
            ax.plot([xi], [m], marker="o", ms=7, color=color, mfc="white" if why else color, ls="none")
            if why:
                unfinished.append(f"{label}, {xi}/class ({why})")
        vals += list(cis[:, 1]) + list(cis[:, 2])
    ref = sweep.get("reference", {}).get("main")
    ax.axhline(0.25, color="gray", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    xs = sorted({r["per_class"] for r in rows})
    grid_size = next((r["per_class"] for r in rows if r["study"] == "grid"), None)
    ax.set_xticks(xs, [f"{x}\n(grid runs)" if x == grid_size else str(x) for x in xs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="training images per class (log scale)", ylabel="test accuracy (mean, 95 % CI over seeds)")
    _ylim(ax, vals or [0.25])
    _ref(ax, ref)
    if unfinished:
        ax.plot([], [], marker="o", mfc="white", color="gray", ls="none",
                label="hollow: still learning at the end of the budget\n" + "\n".join(unfinished))
    # a figure legend below the axes ("outside": constrained layout makes room under the axes); an axes
    # legend anchored below them made the layout shrink the axes to a strip when its lines were long
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncol=1, frameon=False)
    ax.set_title(f"profile '{sweep['profile']}': does backdrop's effect change with more data?\n"
                 f"the {grid_size}/class point is the grid's runs; the others are the data-size study", fontsize=9)
    return fig


def gradient_maps(models: dict[str, torch.nn.Module], image: np.ndarray, label: int,
                  seed: int = 0, title: str = "", class_names: Optional[dict[int, str]] = None) -> plt.Figure:
    """The input gradient ``|dL/dx|`` of one training step under each model's masks.

    ``models`` : name -> network (e.g. trained ``none``/``fine``/``coarse``/``both``); each is
    put in ``train()`` mode so its masks are drawn (their generators are re-seeded with
    ``seed`` for the picture, then restored). ``image`` : ``(H, W)``; ``label`` : its class;
    ``class_names`` (e.g. ``dataset.class_names``) names it in the title. Each map is shown as
    ``sqrt(|dL/dx| / its maximum)`` with one shared colour bar. The fine checkerboard in every map
    is the stride-2 stem (5×5 kernel, stride 2): along each axis, pixels alternate between 3 and 2
    kernel taps, so the gradient alternates too; it is not the masks.
    Example: ``gradient_maps({"fine": net}, images[0], 0, class_names={0: "2.375-20"})``.
    """
    x0 = torch.from_numpy(np.array(image, dtype=np.float32))[None, None]
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(3.2 * (len(models) + 1) + 0.6, 3.9), layout="constrained")
    name_of = (class_names or {}).get(int(label))
    axes[0].imshow(image, cmap=GP_CMAP)
    axes[0].set_title(f"input: class {name_of} (label {int(label)})" if name_of else f"input (label {int(label)})",
                      fontsize=9)
    im = None
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
        im = ax.imshow(np.sqrt(g_img / (g_img.max() or 1.0)), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"|dL/dx|: {name}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        fig.colorbar(im, ax=list(axes[1:]), shrink=0.85, label="sqrt(|dL/dx| / max of its map)")
    fig.suptitle(f"gradient reaching the input in one training step{title}\n"
                 "fine checkerboard: the stride-2 stem (5×5 kernel), whose taps cover pixels alternately 3 and 2 times "
                 "per axis; black: cells the masks blocked", fontsize=9)
    return fig
