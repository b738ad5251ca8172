"""The GP sweep's analysis, numbers only: summaries over seeds, the judged comparisons, the summary JSON.

* :func:`summarize`: per (study, configuration, level, data) group, the mean and 95 % interval over seeds of
  test / validation / train accuracy and the final training loss, per scale too.
* :func:`verdict`: every backdrop configuration against ``none``, paired by seed, Holm over the grid, each judged
  by the claim grammar (:func:`backdrop_repro.report.judge`); what the baseline learned, decided over seeds.
* :func:`write_tables`: ``results/<profile>/gp_sweep.json`` and ``.csv`` from every record present (the likelihood
  classifier's accuracy quoted from its record; a missing one is listed in ``reference_missing``).
* :func:`compare_with_reference`: the reproduction check (:mod:`.reproduction`).

The words are rendered from the claims table (:mod:`backdrop_repro.render`).
"""
from __future__ import annotations

import csv
import io
from typing import Any, Optional, Sequence

from ... import machine, paths, profiles, report
from . import plan as gs
from . import reproduction
from .reproduction import ReproductionError

__all__ = ["summarize", "verdict", "selected_label", "design_of", "learned", "still_learning", "check_reproduction",
           "ReproductionError", "write_tables", "compare_with_reference", "timing"]

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


def verdict(summary: Sequence[dict[str, Any]], best: Optional[str] = None, alpha: float = 0.05, profile: str = "",
            design: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The sweep's judgement, numbers only: ``{"baseline", "learned", "design", "comparisons", "trend", "studies",
    "failed", "scales_tested"}``.

    Every backdrop configuration of the grid against ``none``, paired by seed, Holm over the grid (the family),
    each with its :func:`report.judge` (``claim``, ``status``) and per-scale paired differences (``scale_deltas``).
    Whether the baseline learns is decided over seeds (``learned``); if it does not, every comparison is
    ``inconclusive``. An exploratory grid adds one dose-response ``trend``; each study (data size, robustness)
    is one pre-planned comparison judged alone. ``failed``: ``{label, seed, why}`` of runs left out.
    """
    design = design or {"kind": "exploratory"}
    grid = [r for r in summary if r["study"] == "grid"]
    base, comps = _compare_block(grid, alpha)
    out: dict[str, Any] = {"baseline": None, "comparisons": comps, "studies": [], "trend": None, "learned": None,
                           "design": design, "scales_tested": [],
                           "failed": [{"label": r["label"], "seed": s, "why": why}
                                      for r in summary for s, why in r["failed"].items()]}
    if base is None or base["test_accuracy"] is None:
        return out
    out["baseline"] = base["test_accuracy"]
    lr = out["learned"] = learned(base)
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
    if comps and (lr["all"] is None or not lr["all"]["above"]):      # the baseline does not learn: no claim about backdrop
        for c in comps:
            c["claim"] = {**c["claim"], "status": "inconclusive", "baseline_not_learned": True}
            c["status"] = "inconclusive"
        return out
    if lr["scales"] and len(lr["scales"]) == 2:
        out["scales_tested"] = scales_tested(grid)
    return out


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


#: a network whose accuracy on a 2-way scale stays below chance + this has learned essentially
#: nothing of that scale (whatever a binomial test on thousands of pooled predictions says)
NEGLIGIBLE = 0.05


#: the design kinds whose comparisons were fixed before any run (no choice on validation data is made)
FIXED_IN_ADVANCE = ("confirmatory", "descriptive")


def design_of(profile: str | profiles.Profile) -> dict[str, Any]:
    """``{"kind": "confirmatory" | "exploratory" | "descriptive"}`` of a profile's sweep: its ``sweep.design`` if
    set, else confirmatory when its configurations are fixed in advance and every seed has its own data."""
    p = profiles.get(profile)
    return {"kind": p.sweep.design or ("confirmatory" if (p.sweep.configs is not None and p.data.per_seed_data)
                                       else "exploratory")}


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
    v = verdict(summary, best_label, profile=p.name, design=design_of(p))
    sweep = {"schema": gs.SCHEMA_VERSION, "experiment": "gp_sweep", "profile": p.name,
             "settings": {"data": vars(p.data), "sweep": p.sweep.to_dict()},
             "complete": len(records) == len(planned), "n_runs": len(records), "n_planned": len(planned),
             "best_on_validation": best_label, "reference": refs, "reference_missing": missing, "summary": summary,
             "design": design_of(p),
             "verdict": v,
             "runs": [{k: r[k] for k in ("key", "label", "config", "final", "history", "wall_time_s", "device")}
                      for r in records],
             "run_wall_time_s": round(sum(r["wall_time_s"] for r in records), 1), "this_call_wall_time_s": round(wall, 1),
             "timing": timing(records), "versions": machine.versions()}
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


# --- the reproduction check: backdrop_repro.experiments.gp_sweep.reproduction (re-exported here) ---------

def compare_with_reference(fresh: str | profiles.Profile, reference: str = "replication") -> list[dict[str, Any]]:
    """Every fresh run against the committed run of the same key: :func:`.reproduction.compare_with_reference`."""
    return reproduction.compare_with_reference(fresh, reference)


def check_reproduction(rows: Sequence[dict[str, Any]], reference: str) -> None:
    """Raise :class:`ReproductionError` (one line) unless ``rows`` reproduce the committed runs
    (bit for bit, or in distribution by the rule of :mod:`.reproduction`)."""
    reproduction.check(reproduction.judge(rows, reference))

