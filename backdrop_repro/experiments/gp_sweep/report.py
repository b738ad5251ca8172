"""Tables, verdict and the reproduction check of the GP sweep, all through :mod:`backdrop_repro.report`.

* :func:`summarize` : per (study, configuration, level, data) group, the mean and 95 % interval
  over seeds of test / validation / train accuracy and the final training loss.
* :func:`verdict` : every backdrop configuration against ``none``, paired by seed, Holm-corrected
  across the grid; one sentence per configuration and one overall, worded by the numbers. The
  baseline's accuracy above chance comes with its interval; if that interval reaches chance the
  overall verdict says "inconclusive" and nothing else.
* :func:`write_tables` : ``results/<profile>/gp_sweep.json`` and ``.csv`` from every record present,
  quoting the likelihood classifier's accuracy from its record (written by :func:`.run.write_references`;
  a missing one is named in the verdict, never computed here).
* :func:`compare_with_reference` : fresh runs against a committed record of the same runs (same
  keys), judged in distribution by the rule of :mod:`.reproduction`; what ``make reproduce`` ends with.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Optional, Sequence

from ... import paths, profiles, report
from . import plan as gs
from . import reproduction
from .reproduction import ReproductionError, reference_runs_dir

__all__ = ["summarize", "verdict", "selected_label", "study_lines", "design_of", "learned", "still_learning", "check_reproduction", "ReproductionError", "write_tables", "results_table",
           "compare_with_reference", "reproduction_table"]

CHANCE = 0.25
#: a run's training has levelled off when its final training loss (running mean) is below this
LEVELLED_LOSS = report.LEVELLED_LOSS


def _group_key(rec: dict[str, Any]) -> tuple:
    c = rec["config"]
    return (c["study"], c["config"], c["level"], c["data"]["train"]["per_class"], c["data"]["train"]["method"])


def _n_test(rec: dict[str, Any]) -> int:
    f, c = rec["final"], rec["config"]
    if "test_confusion" in f:
        return int(sum(map(sum, f["test_confusion"])))
    scales = c["data"]["test"]["scales"]
    n_classes = 1
    for s in scales:
        n_classes *= len(s)
    return int(c["data"]["test"]["per_class"]) * n_classes


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group of runs that differ only by seed (grid first, then the studies).

    Row: study, config, level, label, fine_prob, coarse_prob, per_class, method, seeds,
    ``by_seed`` (test accuracy per seed), :func:`report.summary` of test_accuracy, val_accuracy,
    train_accuracy, train_loss (the scored epoch), ``scales`` (per scale, smallest first:
    ``summary`` of the test accuracy on that scale, ``by_seed``, ``chance``; None for records
    written before per-scale predictions were kept), ``pooled`` (correct / total test predictions
    over seeds, 4-class and per scale, for :func:`report.above_chance`), ``epochs`` (summary of the
    scored epoch), ``stop_reasons`` (convergence budget: counts), and ``failed`` (seeds whose run
    failed, e.g. a non-finite loss: they are left out of every statistic).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(_group_key(r), []).append(r)
    rows = []
    for key in sorted(groups, key=lambda k: (gs.STUDIES.index(k[0]), k[3], k[4], gs.CONFIGS.index(k[1]), k[2])):
        allr = sorted(groups[key], key=lambda r: r["config"]["seed"])
        rs = [r for r in allr if not r["final"].get("failed")]
        c = allr[0]["config"]
        scales = c["data"]["test"]["scales"]
        row = {"study": key[0], "config": key[1], "level": key[2], "label": allr[0].get("label", key[1]),
               "fine_prob": c["fine_prob"], "coarse_prob": c["coarse_prob"], "per_class": key[3], "method": key[4],
               "seeds": [r["config"]["seed"] for r in rs],
               "failed": {r["config"]["seed"]: r["final"]["failed"] for r in allr if r["final"].get("failed")},
               "by_seed": {r["config"]["seed"]: r["final"]["test_accuracy"] for r in rs}}
        for m in ("test_accuracy", "val_accuracy", "train_accuracy", "train_loss"):
            vals = [r["final"][m] for r in rs if m in r["final"]]
            row[m] = (report.summary(vals, bounds=None if m == "train_loss" else report.UNIT)
                      if vals else None)
        total = sum(_n_test(r) for r in rs)
        pooled = {"correct": int(round(sum(r["final"]["test_accuracy"] * _n_test(r) for r in rs))), "total": total,
                  "chance": 1.0 / len(_classes(c))}
        if rs and all("test_scale_accuracy" in r["final"] for r in rs):
            row["scales"] = []
            for i, lengths in enumerate(scales):
                by = {r["config"]["seed"]: r["final"]["test_scale_accuracy"][i] for r in rs}
                row["scales"].append({"lengths": list(lengths), "chance": 1.0 / len(lengths), "by_seed": by,
                                      "summary": report.summary(list(by.values()), bounds=report.UNIT),
                                      "correct": int(round(sum(by[r["config"]["seed"]] * _n_test(r) for r in rs))),
                                      "total": total})
        else:
            row["scales"] = None
        row["pooled"] = pooled
        ep = [r["final"].get("selected_epoch", r["final"].get("epoch")) for r in rs]
        row["epochs"] = report.summary(ep) if ep and None not in ep else None
        reasons: dict[str, int] = {}
        for r in rs:
            if "stop_reason" in r["final"]:
                reasons[r["final"]["stop_reason"]] = reasons.get(r["final"]["stop_reason"], 0) + 1
        row["stop_reasons"] = reasons
        rows.append(row)
    return rows


def _classes(config: dict[str, Any]) -> list[tuple]:
    import itertools

    return list(itertools.product(*config["data"]["test"]["scales"]))


def _compare_block(rows: list[dict], alpha: float) -> tuple[Optional[dict], list[dict]]:
    base = next((r for r in rows if r["config"] == "none"), None)
    cands = [r for r in rows if r["config"] != "none"]
    if base is None or not cands:
        return base, []
    comps = report.compare(base["by_seed"], {r["label"]: r["by_seed"] for r in cands}, alpha)
    for comp, r in zip(comps, cands):
        comp.update(config=r["config"], level=r["level"], fine_prob=r["fine_prob"], coarse_prob=r["coarse_prob"])
        if base.get("scales") and r.get("scales"):
            comp["scale_deltas"] = [report.paired(bs["by_seed"], cs["by_seed"])
                                    for bs, cs in zip(base["scales"], r["scales"])]
    return base, comps


def _scale_name(i: int, n: int, lengths: Sequence[float]) -> str:
    kind = ("small" if i == 0 else "large") if n == 2 else f"scale {i + 1}"
    return f"{kind} scale ({' vs '.join(f'{v:g}' for v in lengths)} px)"


def learned(row: dict[str, Any]) -> dict[str, Any]:
    """What the runs of one summary row learned, decided over seeds (:func:`report.learned_over_seeds`:
    the 95 % interval of the per-seed test accuracy above chance), 4-class (``all``) and per scale
    (``scales``; None without per-scale records); each carries the pooled exact binomial test of the
    test predictions as ``pooled``, a description only (the seeds share the test images)."""
    pooled = row["pooled"]
    out = {"all": report.learned_over_seeds(row["by_seed"], pooled["chance"], pooled=(pooled["correct"], pooled["total"]))
           if len(row["by_seed"]) >= 1 and pooled["total"] else None, "scales": None}
    if row.get("scales"):
        out["scales"] = [report.learned_over_seeds(s["by_seed"], s["chance"], pooled=(s["correct"], s["total"]))
                         for s in row["scales"]]
    return out


def _learned_text(row: dict[str, Any], ref: Optional[dict] = None) -> str:
    """``0.414 [..] on the 4 classes (above chance 0.25 over 30 seeds, ...); 0.505 [..] on the small
    scale (...) (not above chance 0.5 over 30 seeds, ...); ...``."""
    lr = learned(row)
    parts = [f"{report.learned_text(lr['all'])} on the 4 classes"] if lr["all"] else []
    if lr["scales"]:
        n = len(row["scales"])
        for i, (s, t) in enumerate(zip(row["scales"], lr["scales"])):
            parts.append(f"{report.learned_text(t)} on the {_scale_name(i, n, s['lengths'])}")
    else:
        parts.append("per-scale accuracy not recorded (runs made before per-image predictions were kept)")
    return "; ".join(parts)


def verdict(summary: Sequence[dict[str, Any]], reference: Optional[dict] = None, best: Optional[str] = None,
            alpha: float = 0.05, profile: str = "", design: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The sweep's verdict, worded by the numbers and by what the design could detect.

    Returns ``{"baseline", "learned", "comparisons", "sentences", "claims", "trend", "studies",
    "failed", "overall"}``. Every backdrop configuration of the grid is compared with ``none``,
    paired by seed and Holm-corrected across the grid (the family); each comparison gets a
    :func:`report.claim` (confirmed / not confirmed / inconclusive / contradicted, with its minimum
    detectable effect under Holm over the family and a TOST against :data:`report.MARGIN`) and
    its paired per-scale differences. Whether the baseline learns is an exact binomial test of
    its pooled test predictions (4-class and per scale). ``design`` (from :func:`design_of`) says
    whether the comparisons were fixed in advance (confirmatory) or explored (a grid; then a
    dose-response trend over the mask levels is one extra, exploratory test). Studies (data
    size, robustness) are one pre-planned comparison each, judged unadjusted (``p``), and say so.
    """
    design = design or {"kind": "exploratory", "data": "training data as recorded", "budget": "budget as recorded"}
    grid = [r for r in summary if r["study"] == "grid"]
    base, comps = _compare_block(grid, alpha)
    out: dict[str, Any] = {"baseline": None, "comparisons": comps, "sentences": [], "studies": [], "overall": "",
                           "claims": [], "trend": None, "learned": None, "design": design,
                           "failed": [f"`{r['label']}` seed {s}: {why}" for r in summary for s, why in r["failed"].items()]}
    if base is None or base["test_accuracy"] is None:
        out["overall"] = "Not enough runs for a verdict: the no-backdrop baseline has no usable record yet."
        if out["failed"]:
            out["overall"] += (f" {len(out['failed'])} run(s) failed and are left out of every statistic: "
                               + "; ".join(out["failed"]) + ".")
        return out
    b = base["test_accuracy"]
    out["baseline"] = b
    lr = learned(base)
    out["learned"] = lr
    ref = ""
    if reference:
        ref = (f" The likelihood classifier{'' if reference.get('exact') else ' (approximate)'} reaches "
               f"{reference['test_accuracy']:.3f}")
        if reference.get("small_scale_accuracy") is not None:
            ref += (f" (small scale {reference['small_scale_accuracy']:.3f}, large scale "
                    f"{reference['large_scale_accuracy']:.3f})")
        ref += "."
    head = (f"Without backdrop the network reaches {_learned_text(base)} (means and 95 % CIs over {b['n']} seeds)."
            f"{ref} ")
    comps = [c for c in comps if c.get("decision")]        # the comparisons with >= 2 paired seeds
    m = len(comps)
    fixed = design["kind"] in FIXED_IN_ADVANCE
    family = (f"the {m} comparisons fixed in advance" if fixed else f"the exploratory grid of {m}") + \
        (f" at profile {profile}" if profile else "")
    for c in comps:
        cand = next(r for r in grid if r["label"] == c["name"])
        c["claim"] = report.judge(c, m=m, p_adjusted=c["p_holm"], alpha=alpha, family=family, fixed_in_advance=fixed,
                                  unfinished=_unfinished(base, cand))
        c["status"] = c["claim"]["status"]
    out["sentences"] = [_comparison_sentence(c, alpha) for c in comps]
    out["claims"] = [{"name": c["name"], "status": c["claim"]["status"], "text": c["claim"]["text"]} for c in comps]
    if design["kind"] == "exploratory" and len(comps) >= 2:
        pts: dict[Any, list] = {}
        for c in comps:
            if c["config"] in ("fine", "coarse", "both"):
                cand = next(r for r in grid if r["label"] == c["name"])
                for seed, v in cand["by_seed"].items():
                    if seed in base["by_seed"]:
                        pts.setdefault(seed, []).append((c["level"], v - base["by_seed"][seed]))
        out["trend"] = report.trend(pts)
    for study in ("data_size", "robustness"):
        for key in sorted({(r["per_class"], r["method"]) for r in summary if r["study"] == study}):
            rows = [r for r in summary if r["study"] == study and (r["per_class"], r["method"]) == key]
            sb, sc = _compare_block(rows, alpha)
            if sb is not None and sc and sc[0].get("decision"):
                cand = next(r for r in rows if r["config"] != "none")
                what = f"{key[0]}/class" if study == "data_size" else f"{key[1]} data"
                sc[0]["claim"] = report.judge(sc[0], m=1, p_adjusted=sc[0]["p"], alpha=alpha,
                                              family=f"{study} row ({what}), one comparison", fixed_in_advance=fixed,
                                              unfinished=_unfinished(sb, cand))
                sc[0]["status"] = sc[0]["claim"]["status"]
                out["studies"].append({"study": study, "per_class": key[0], "method": key[1],
                                       "baseline": sb["test_accuracy"], "learned": learned(sb), "comparison": sc[0],
                                       "stop_reasons": {r["label"]: r["stop_reasons"] for r in rows},
                                       "train_loss": {r["label"]: r["train_loss"]["mean"] for r in rows if r["train_loss"]}})
    if not comps:
        out["overall"] = head + "No backdrop configuration has 2 seeds paired with no backdrop yet."
        return out
    if lr["all"] is None or not lr["all"]["above"]:
        out["overall"] = head + ("The baseline's interval over seeds does not lie above chance, so these runs do not "
                                 "show that it learns the task at this profile, and the comparison is inconclusive "
                                 "about backdrop.")
        for c in comps:
            c["claim"] = {**c["claim"], "status": "inconclusive",
                          "sentence": "inconclusive: the baseline does not learn the task (its interval over seeds "
                                      "reaches chance)"}
            c["claim"]["text"] = c["claim"]["sentence"]
            c["status"] = "inconclusive"
        out["claims"] = [{"name": c["name"], "status": c["status"], "text": c["claim"]["text"]} for c in comps]
        return out
    parts = [head, _design_text(design, m), " "]
    if design["kind"] == "exploratory":
        chosen = next((c for c in comps if c["name"] == best), None)
        if chosen is not None:
            parts.append(f"Chosen on the validation split: {out['sentences'][comps.index(chosen)]} ")
        lo, hi = min(comps, key=lambda c: c["mean"]), max(comps, key=lambda c: c["mean"])
        counts = {k: sum(c["claim"]["status"] == k for c in comps) for k in report.STATUSES}
        parts.append(f"Over the {m} configurations the paired Δ runs from `{lo['name']}` {report.fmt_ci(lo)} to "
                     f"`{hi['name']}` {report.fmt_ci(hi)}; "
                     + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + ".")
    else:
        parts.append(" ".join(out["sentences"]))
    parts.append(" " + overall_text(comps))
    if lr["scales"] and len(lr["scales"]) == 2:
        out["scales_tested"] = scales_tested(grid)
    if out["trend"] is not None:
        t = out["trend"]
        parts.append(f" Dose-response (one exploratory test, specified after the grid was seen): the per-seed slope "
                     f"of the gain on the mask level (0, 1, 2 over the fine, coarse and both families) is "
                     f"{report.fmt_ci(t)} per level (p = {report.fmt_p(t['p'])}).")
    slow = _unconverged(summary)
    if slow:
        out["unconverged"] = slow
        parts.append(" " + slow_text(slow))
    if out["failed"]:
        parts.append(f" {len(out['failed'])} run(s) failed and are left out of every statistic: "
                     + "; ".join(out["failed"]) + ".")
    out["overall"] = "".join(parts)
    return out


def overall_text(comps: Sequence[dict[str, Any]]) -> str:
    """``Overall at this profile: ...``: the comparisons grouped by status (read from their claims)."""
    by: dict[str, list[str]] = {}
    for c in comps:
        by.setdefault(c["claim"]["status"], []).append(f"`{c['name']}`")
    order = [st for st in report.STATUSES if st in by]
    words = {"relevant gain": "a relevant gain (clears the ±{m:g} margin)",
             "significant gain": "a significant gain not shown to clear the ±{m:g} margin",
             "contradicted": "significantly worse", "equivalent": "equivalent to no change within ±{m:g}",
             "not confirmed": "not confirmed (gains of {m:g} excluded)",
             "inconclusive": "inconclusive", "unfinished": "unfinished runs, no claim"}
    return "Overall at this profile: " + "; ".join(
        f"{', '.join(by[st])}: {words[st].format(m=report.MARGIN)}" for st in order) + "."


def scales_tested(grid: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scale (smallest first): ``name``, ``chance``, ``highest_mean`` (the highest mean test accuracy
    on that scale over every configuration) and ``tested``: some network learns more than
    :data:`NEGLIGIBLE` above chance on it (otherwise no comparison tests backdrop on that scale)."""
    rows = [r for r in grid if r.get("scales")]
    if not rows:
        return []
    n = len(rows[0]["scales"])
    out = []
    for i in range(n):
        hi = max(r["scales"][i]["summary"]["mean"] for r in rows)
        ch = rows[0]["scales"][i]["chance"]
        out.append({"name": ("small" if i == 0 else "large") if n == 2 else f"scale {i + 1}", "chance": ch,
                    "highest_mean": hi, "tested": hi >= ch + NEGLIGIBLE})
    return out


def study_lines(v: dict[str, Any]) -> list[str]:
    """One markdown line per study of a verdict (data size, robustness): each is one pre-planned
    comparison of the studies' configuration with ``none``, judged unadjusted, worded by its claim.
    Used by the notebook's Findings and the README block."""
    out = []
    for st in v["studies"]:
        c, b = st["comparison"], st["baseline"]
        what = (f"{st['per_class']} training images per class" if st["study"] == "data_size"
                else f"the `{st['method']}` sampler (the paper's construction)")
        claim = f"`{c['name']}`: {c['claim']['sentence']}" if c.get("claim") else f"`{c['name']}`: no comparison"
        out.append(f"With {what} (one comparison, judged on its own p-value): no backdrop "
                   f"{report.fmt_ci(b, signed=False)}; {claim}.")
    return out


#: a network whose accuracy on a 2-way scale stays below chance + this has learned essentially
#: nothing of that scale (whatever a binomial test on thousands of pooled predictions says)
NEGLIGIBLE = 0.05


def _comparison_sentence(c: dict[str, Any], alpha: float) -> str:
    s = f"`{c['name']}`: {c['claim']['sentence']}."
    if c.get("scale_deltas") and all(c["scale_deltas"]):
        n = len(c["scale_deltas"])
        names = ["small scale", "large scale"] if n == 2 else [f"scale {i + 1}" for i in range(n)]
        s += " Per scale: " + ", ".join(f"{nm} {report.fmt_ci(d)}" for nm, d in zip(names, c["scale_deltas"])) + "."
    return s


def _design_text(design: dict[str, Any], m: int) -> str:
    if design["kind"] == "descriptive":
        return (f"Descriptive design: {m} comparison{'s' if m != 1 else ''} fixed in advance, too few seeds to be "
                f"sized for power (each comparison states its MDE), so every interval below is a description, not a "
                f"test of the paper's claim; each seed trains on its own training set and selects on its own "
                f"validation set; {design['budget']}.")
    if design["kind"] == "confirmatory":
        return (f"Confirmatory design: {m} comparison{'s' if m != 1 else ''} fixed in advance, Holm over {m}; "
                f"each seed trains on its own training set and selects on its own validation set; "
                f"{design['budget']}; the 95 % intervals cover seeds, training sets and initialisations.")
    return (f"Exploratory grid: {m} configurations, Holm over {m}; {design['data']}; {design['budget']}.")


#: the design kinds whose comparisons were fixed before any run (no choice on validation data is made)
FIXED_IN_ADVANCE = ("confirmatory", "descriptive")


def design_of(profile: str | profiles.Profile) -> dict[str, Any]:
    """``{"kind": "confirmatory" | "exploratory" | "descriptive", "budget": text, "data": text}`` of a profile's
    sweep: the profile's ``sweep.design`` if set, else confirmatory when its configurations are fixed in advance
    (``sweep.configs``) and every seed has its own data."""
    p = profiles.get(profile)
    s = p.sweep
    if s.patience is not None or s.loss_target is not None or s.select != "last":
        rules = [f"training loss below {s.loss_target:g}" if s.loss_target is not None else None,
                 f"no gain in validation accuracy (ties broken by the lower validation loss) for {s.patience} epochs" if s.patience is not None else None]
        budget = (f"every run trains until " + " or ".join(r for r in rules if r) + f" (cap {s.epochs} epochs), "
                  + ("the test set scored at the epoch of best validation accuracy" if s.select == "val" else
                     "the test set scored at the last epoch"))
    else:
        budget = (f"an equal budget of {s.epochs} epochs for every configuration"
                  + (f" at {p.data.per_class} images per class (the data-size rows keep the same image visits, "
                     f"epochs × images: {s.epochs} × {p.data.per_class} per class)" if s.data_sizes else "")
                  + ", the test set scored at the last epoch")
    kind = s.design or ("confirmatory" if (s.configs is not None and p.data.per_seed_data) else "exploratory")
    data = "each seed its own training set" if p.data.per_seed_data else "one training set shared by every seed"
    return {"kind": kind, "budget": budget, "data": data}


def still_learning(r: dict[str, Any]) -> Optional[str]:
    """Why the runs of a row had not finished learning at the end of their budget, or None
    (:func:`report.unfinished_reason`)."""
    return report.unfinished_reason(r["stop_reasons"], len(r["seeds"]),
                                    r["train_loss"]["mean"] if r.get("train_loss") else None)


def _unfinished(base: dict[str, Any], cand: dict[str, Any]) -> Optional[str]:
    """Why a comparison's runs (either arm) had not finished their budget, or None."""
    why = [f"{tag}: {w}" for tag, w in (("no backdrop", still_learning(base)), (f"`{cand['label']}`", still_learning(cand)))
           if w]
    return "; ".join(why) if why else None


def _unconverged(summary: Sequence[dict[str, Any]]) -> list[str]:
    out = []
    for r in summary:
        tag = (f" ({r['per_class']}/class)" if r["study"] == "data_size" else "") + \
              (f" ({r['method']} data)" if r["study"] == "robustness" else "")
        if r["stop_reasons"]:
            capped = r["stop_reasons"].get("cap", 0)
            if capped:
                out.append(f"`{r['label']}`{tag}: {capped} of {len(r['seeds'])} runs reached the cap")
        elif r.get("train_loss") and r["train_loss"]["mean"] > LEVELLED_LOSS:
            out.append(f"`{r['label']}`{tag}: mean final training loss {r['train_loss']['mean']:.2f}")
    return out


def slow_text(slow: Sequence[str]) -> str:
    """The sentence that names runs still learning at the end of their budget."""
    return ("Still learning at the end of the budget (their accuracy is that of an unfinished run): "
            + "; ".join(slow) + ".")


def _csv_text(records: Sequence[dict[str, Any]]) -> str:
    cols = ["key", "study", "config", "level", "fine_prob", "coarse_prob", "per_class", "method", "seed", "epoch",
            "train_loss", "train_accuracy", "val_accuracy", "test_loss", "test_accuracy", "test_small_accuracy",
            "test_large_accuracy", "stop_reason", "failed", "wall_time_s", "device"]

    def g(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else ("" if v is None else str(v))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in records:
        c, f = r["config"], r["final"]
        sc = f.get("test_scale_accuracy") or [None, None]
        w.writerow([r["key"], c["study"], c["config"], c["level"], c["fine_prob"], c["coarse_prob"],
                    c["data"]["train"]["per_class"], c["data"]["train"]["method"], c["seed"],
                    f.get("selected_epoch", f.get("epoch")), g(f.get("train_loss")), g(f.get("train_accuracy")),
                    g(f.get("val_accuracy")), g(f.get("test_loss")), g(f.get("test_accuracy")), g(sc[0]), g(sc[-1]),
                    f.get("stop_reason", ""), f.get("failed", ""), r["wall_time_s"], r["device"]])
    return buf.getvalue()


def timing(records: Sequence[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Wall time per run measured from the records, and the work each did (so a projection can be set beside
    it): ``{"runs", "mean_s", "min_s", "max_s", "devices", "epochs_mean", "train_samples_mean",
    "eval_forwards_mean"}`` (training samples: epochs trained x training images; evaluation forwards: every
    evaluated epoch's training and validation images, plus the test set once per test evaluation). None without
    records."""
    rows = []
    for r in records:
        if r["final"].get("failed"):
            continue
        d = r["config"]["data"]
        n = {k: d[k]["per_class"] * len(d[k]["scales"][0]) ** len(d[k]["scales"]) for k in ("train", "val", "test")}
        hist = r["history"]
        epochs = r["final"].get("stopped_epoch") or (hist[-1]["epoch"] if hist else 0)
        evals = sum("train_eval_loss" in h for h in hist)
        tests = max(1, sum("test_accuracy" in h for h in hist))
        rows.append((r["wall_time_s"], epochs, epochs * n["train"], evals * (n["train"] + n["val"]) + tests * n["test"],
                     r["device"]))
    if not rows:
        return None
    w = [x[0] for x in rows]
    return {"runs": len(rows), "mean_s": float(sum(w) / len(w)), "min_s": float(min(w)), "max_s": float(max(w)),
            "devices": sorted({x[4] for x in rows}), "epochs_mean": sum(x[1] for x in rows) / len(rows),
            "train_samples_mean": sum(x[2] for x in rows) / len(rows),
            "eval_forwards_mean": sum(x[3] for x in rows) / len(rows)}


def write_tables(profile: str | profiles.Profile, wall: float = 0.0) -> dict[str, Any]:
    """Rebuild ``gp_sweep.json`` / ``.csv`` of ``profile`` from every record present; return the dict."""
    p = profiles.get(profile)
    records = gs.collect(p)
    planned = gs.plan_runs(p, records=records)
    best = gs.select_best(records)
    best_label = next((s.label for s in planned if best and (s.config, s.level) == best and s.study == "grid"), None)
    summary = summarize(records)
    refs, missing = {}, []
    for name, spec in gs.reference_specs(p, records).items():
        ref = gs.read_reference(spec)
        if ref is not None:
            refs[name] = ref
        else:
            missing.append(spec.record_path.relative_to(paths.output_root()).as_posix())
    v = verdict(summary, refs.get("main"), best_label, profile=p.name, design=design_of(p))
    if missing:
        v["overall"] += (f" The likelihood classifier's reference is not recorded ({', '.join(missing)}): "
                         f"`backdrop-repro sweep --profile {p.name} --collect-only` scores it.")
    sweep = {"schema": gs.SCHEMA_VERSION, "experiment": "gp_sweep", "profile": p.name,
             "settings": {"data": vars(p.data), "sweep": p.sweep.to_dict()},
             "complete": len(records) == len(planned), "n_runs": len(records), "n_planned": len(planned),
             "best_on_validation": best_label, "reference": refs, "summary": summary,
             "design": design_of(p),
             "verdict": v,
             "runs": [{k: r[k] for k in ("key", "label", "config", "final", "history", "wall_time_s", "device")}
                      for r in records],
             "run_wall_time_s": round(sum(r["wall_time_s"] for r in records), 1), "this_call_wall_time_s": round(wall, 1),
             "timing": timing(records), "versions": paths.versions()}
    out = paths.results_dir(p.name)
    paths.write_json(out / "gp_sweep.json", sweep)
    paths.write_text(out / "gp_sweep.csv", _csv_text(records))
    return sweep


def selected_label(sweep: dict[str, Any]) -> Optional[str]:
    """The grid configuration chosen on validation data, only where a choice was made: an exploratory
    design with more than one backdrop configuration in its grid (a confirmatory design fixes its
    comparisons in advance, and one candidate is no selection). None otherwise.
    Example: ``selected_label({"best_on_validation": "fine 0.5", "design": {"kind": "confirmatory"}}) is None``."""
    best = sweep.get("best_on_validation")
    if best is None or (sweep.get("design") or {}).get("kind") in FIXED_IN_ADVANCE:
        return None
    cands = {r["label"] for r in sweep.get("summary", []) if r["study"] == "grid" and r["config"] != "none"}
    return best if len(cands) > 1 else None


def results_table(sweep: dict[str, Any], study: str = "grid") -> str:
    """Markdown table of one study: test accuracy on the 4 classes and on each scale (mean [95 % CI];
    the per-scale columns only when some row's records hold per-scale predictions),
    validation accuracy, paired Δ vs none with its p-value (Holm in the grid), the minimum
    detectable effect, the claim, the scored epoch and the final training loss."""
    comps = {c["name"]: c for c in sweep["verdict"]["comparisons"]}
    for s in sweep["verdict"]["studies"]:
        comps.setdefault((s["per_class"], s["method"], s["comparison"]["name"]), s["comparison"])
    rows = []
    for r in (r for r in sweep["summary"] if r["study"] == study):
        c = comps.get(r["label"]) if study == "grid" else comps.get((r["per_class"], r["method"], r["label"]))
        chosen = " (best on validation)" if r["label"] == selected_label(sweep) and r["config"] != "none" else ""
        sc = r.get("scales")
        cl = c.get("claim") if c else None
        rows.append([f"`{r['label']}`{chosen}", r["per_class"], len(r["seeds"]),
                     report.fmt_ci(r["test_accuracy"], signed=False) if r["test_accuracy"] else
                     f"failed ({len(r['failed'])} runs)",
                     report.fmt_ci(sc[0]["summary"], signed=False) if sc else "—",
                     report.fmt_ci(sc[-1]["summary"], signed=False) if sc else "—",
                     report.fmt_ci(r["val_accuracy"], signed=False) if r["val_accuracy"] else "—",
                     report.fmt_ci(c) if c and c.get("decision") else "—",
                     report.fmt_p(c.get("p_holm") if study == "grid" else c.get("p")) if c else "—",
                     f"{cl['mde']:.3f}" if cl and cl["mde"] is not None else "—",
                     cl["status"] if cl else "—",
                     f"{r['epochs']['mean']:.0f}" if r.get("epochs") else "—",
                     f"{r['train_loss']['mean']:.3f}" if r.get("train_loss") else "—"])
    head = ["configuration", "train/class", "seeds", "test acc. (4 classes)", "small scale", "large scale",
            "val acc.", "Δ test vs none [95 % CI]", "p (Holm)" if study == "grid" else "p (one comparison)",
            "MDE (80 %)", "claim", "epoch scored", "train loss"]
    if not any(r.get("scales") for r in sweep["summary"] if r["study"] == study):   # no per-scale column without data
        rows = [row[:4] + row[6:] for row in rows]
        head = head[:4] + head[6:]
    return report.markdown_table(head, rows)


# --- the reproduction check: backdrop_repro.experiments.gp_sweep.reproduction (re-exported here) ---------

def compare_with_reference(fresh: str | profiles.Profile, reference: str = "replication") -> list[dict[str, Any]]:
    """Every fresh run against the committed run of the same key: :func:`.reproduction.compare_with_reference`."""
    return reproduction.compare_with_reference(fresh, reference)


def check_reproduction(rows: Sequence[dict[str, Any]], reference: str) -> None:
    """Raise :class:`ReproductionError` (one line) unless ``rows`` reproduce the committed runs
    (bit for bit, or in distribution by the rule of :mod:`.reproduction`)."""
    reproduction.check(reproduction.judge(rows, reference))


def reproduction_table(rows: Sequence[dict[str, Any]], reference: str = "replication") -> str:
    """Markdown: the verdict in words, the rule, and the per-run, per-configuration and per-gain tables."""
    return reproduction.render(rows, reproduction.judge(rows, reference), "Reproduction check")
