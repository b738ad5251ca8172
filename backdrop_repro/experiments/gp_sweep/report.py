"""Tables, verdict and the reproduction check of the GP sweep, all through :mod:`backdrop_repro.report`.

* :func:`summarize` : per (study, configuration, level, data) group, the mean and 95 % interval
  over seeds of test / validation / train accuracy and the final training loss.
* :func:`verdict` : every backdrop configuration against ``none``, paired by seed, Holm-corrected
  across the grid; one sentence per configuration and one overall, worded by the numbers. The
  baseline's accuracy above chance comes with its interval; if that interval reaches chance the
  overall verdict says "inconclusive" and nothing else.
* :func:`write_tables` : ``results/<profile>/gp_sweep.json`` and ``.csv`` from every record present.
* :func:`compare_with_reference` : fresh runs against a committed record of the same runs (same
  keys), with the tolerance stated; what ``make reproduce`` ends with.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Optional, Sequence

from ... import paths, profiles, report
from . import plan as gs

__all__ = ["summarize", "verdict", "write_tables", "results_table", "reference_classifier",
           "compare_with_reference", "reproduction_table", "TOLERANCE"]

#: per-run tolerance of the reproduction check (absolute test accuracy). Same CPU type, torch and
#: thread count: runs are bit-identical (difference 0); other CPUs may round differently.
TOLERANCE = 0.01
CHANCE = 0.25
#: a run's training has levelled off when its final training loss (running mean) is below this
LEVELLED_LOSS = 0.1


def _group_key(rec: dict[str, Any]) -> tuple:
    c = rec["config"]
    return (c["study"], c["config"], c["level"], c["data"]["train"]["per_class"], c["data"]["train"]["method"])


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group of runs that differ only by seed (grid first, then the studies).

    Row: study, config, level, label, fine_prob, coarse_prob, per_class, method, seeds, and
    :func:`report.summary` of test_accuracy, val_accuracy, train_accuracy, train_loss (final epoch).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(_group_key(r), []).append(r)
    rows = []
    for key in sorted(groups, key=lambda k: (gs.STUDIES.index(k[0]), k[3], k[4], gs.CONFIGS.index(k[1]), k[2])):
        rs = sorted(groups[key], key=lambda r: r["config"]["seed"])
        c = rs[0]["config"]
        row = {"study": key[0], "config": key[1], "level": key[2], "label": rs[0].get("label", key[1]),
               "fine_prob": c["fine_prob"], "coarse_prob": c["coarse_prob"], "per_class": key[3], "method": key[4],
               "seeds": [r["config"]["seed"] for r in rs],
               "by_seed": {r["config"]["seed"]: r["final"]["test_accuracy"] for r in rs}}
        for m in ("test_accuracy", "val_accuracy", "train_accuracy", "train_loss"):
            vals = [r["final"][m] for r in rs if m in r["final"]]
            row[m] = report.summary(vals) if vals else None
        rows.append(row)
    return rows


def _compare_block(rows: list[dict], alpha: float) -> tuple[Optional[dict], list[dict]]:
    base = next((r for r in rows if r["config"] == "none"), None)
    cands = [r for r in rows if r["config"] != "none"]
    if base is None or not cands:
        return base, []
    comps = report.compare(base["by_seed"], {r["label"]: r["by_seed"] for r in cands}, alpha)
    for comp, r in zip(comps, cands):
        comp.update(config=r["config"], level=r["level"])
    return base, comps


def verdict(summary: Sequence[dict[str, Any]], reference: Optional[dict] = None, best: Optional[str] = None,
            alpha: float = 0.05, profile: str = "") -> dict[str, Any]:
    """``{"baseline", "comparisons", "sentences", "overall", "studies"}`` of the sweep's summary.

    ``best`` is the label of the configuration chosen on validation (reported first). Studies
    (data size, robustness) each compare ``best`` with ``none`` on their own data, uncorrected
    there because each is one pre-planned comparison.
    """
    grid = [r for r in summary if r["study"] == "grid"]
    base, comps = _compare_block(grid, alpha)
    out: dict[str, Any] = {"baseline": None, "comparisons": comps, "sentences": [], "studies": [], "overall": ""}
    if base is None:
        out["overall"] = "Not enough runs for a verdict: the no-backdrop baseline has no record yet."
        return out
    b = base["test_accuracy"]
    out["baseline"] = b
    above = b.get("low") is not None and b["low"] > CHANCE
    ref = (f"; the likelihood classifier{'' if reference and reference.get('exact') else ' (approximate)'} reaches "
           f"{reference['test_accuracy']:.3f}" if reference else "")
    head = (f"Without backdrop the network reaches {report.fmt_ci(b, signed=False)} test accuracy (mean and 95 % CI "
            f"over {b['n']} seeds; chance {CHANCE}{ref}). ")
    out["sentences"] = [report.sentence(c, baseline="`none`", alpha=alpha) for c in comps]
    for study in ("data_size", "robustness"):
        for key in sorted({(r["per_class"], r["method"]) for r in summary if r["study"] == study}):
            rows = [r for r in summary if r["study"] == study and (r["per_class"], r["method"]) == key]
            sb, sc = _compare_block(rows, alpha)
            if sb is not None and sc:
                out["studies"].append({"study": study, "per_class": key[0], "method": key[1],
                                       "baseline": sb["test_accuracy"], "comparison": sc[0]})
    if not comps:
        out["overall"] = head + "No backdrop configuration has runs yet."
        return out
    if not above:
        out["overall"] = head + ("That interval reaches chance, so the baseline does not learn the task at this "
                                 "profile and the comparison is inconclusive about backdrop.")
        return out
    better = [c for c in comps if c["decision"] == "better"]
    worse = [c for c in comps if c["decision"] == "worse"]
    chosen = next((c for c in comps if c["name"] == best), None)
    parts = [head]
    if chosen is not None:
        parts.append(f"The configuration chosen on the validation split, `{chosen['name']}`, changes test accuracy "
                     f"by {report.fmt_ci(chosen)} (p = {report.fmt_p(chosen['p'])} alone, Holm-adjusted "
                     f"p = {report.fmt_p(chosen['p_holm'])}). ")
    if better:
        names = ", ".join(f"`{c['name']}` ({report.fmt_ci(c)})" for c in better)
        parts.append(f"{len(better)} of {len(comps)} backdrop configurations beat no backdrop after Holm's correction: "
                     f"{names}. Backdrop improves generalisation at this profile, as the paper claims.")
    else:
        pos = sum(c["mean"] > 0 for c in comps)
        top = max((c["high"] for c in comps if c.get("high") is not None), default=None)
        parts.append(f"None of the {len(comps)} backdrop configurations beats no backdrop after Holm's correction "
                     f"({pos} of {len(comps)} mean differences are positive"
                     + (f"; no 95 % interval reaches above {top:+.3f}" if top is not None else "")
                     + "), so the paper's claim is not reproduced at this profile: any gain is small.")
    if worse:
        parts.append(f" {len(worse)} configuration(s) are significantly worse: "
                     + ", ".join(f"`{c['name']}` ({report.fmt_ci(c)})" for c in worse) + ".")
    slow = [r for r in summary if r.get("train_loss") and r["train_loss"]["mean"] > LEVELLED_LOSS]
    if slow:
        out["unconverged"] = [r["label"] + (f" ({r['per_class']}/class)" if r["study"] == "data_size" else "")
                              + (f" ({r['method']} data)" if r["study"] == "robustness" else "") for r in slow]
        parts.append(f" Still learning at the end of the budget (mean final training loss above {LEVELLED_LOSS}): "
                     + ", ".join(f"`{s}`" for s in out["unconverged"]) + "; their accuracy is that of an "
                     "unfinished run.")
    out["overall"] = "".join(parts)
    return out


def reference_classifier(profile: str | profiles.Profile, method: Optional[str] = None) -> dict[str, Any]:
    """Accuracy of the spectral likelihood classifier (:mod:`backdrop_repro.gp.oracle`) on the test set.

    ``exact`` says whether it is the exact likelihood of the data's distribution (see
    ``oracle.is_exact``); otherwise it is an approximation, not a ceiling.
    """
    import numpy as np

    from ...gp import oracle
    from ...data.datasets import build_dataset, split_recipe

    r = split_recipe(profile, "test", None, method)
    ds = build_dataset(r, progress=False)
    o = oracle.oracle_for_recipe(r)
    images, labels = np.asarray(ds.images), np.asarray(ds.labels)
    pred = o.predict(images)
    exact = oracle.is_exact(r)
    return {"test_accuracy": float(np.mean(pred == labels)), "method": r.method, "exact": bool(exact),
            "small_scale_accuracy": float(np.mean(pred % 2 == labels % 2)),
            "large_scale_accuracy": float(np.mean(pred // 2 == labels // 2))}


def _csv_text(records: Sequence[dict[str, Any]]) -> str:
    cols = ["key", "study", "config", "level", "fine_prob", "coarse_prob", "per_class", "method", "seed", "epochs",
            "train_loss", "train_accuracy", "val_accuracy", "test_loss", "test_accuracy", "wall_time_s", "device"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in records:
        c, f = r["config"], r["final"]
        w.writerow([r["key"], c["study"], c["config"], c["level"], c["fine_prob"], c["coarse_prob"],
                    c["data"]["train"]["per_class"], c["data"]["train"]["method"], c["seed"], f.get("epoch"),
                    f"{f['train_loss']:.6g}", f"{f['train_accuracy']:.6g}", f"{f.get('val_accuracy', float('nan')):.6g}",
                    f"{f['test_loss']:.6g}", f"{f['test_accuracy']:.6g}", r["wall_time_s"], r["device"]])
    return buf.getvalue()


def write_tables(profile: str | profiles.Profile, wall: float = 0.0) -> dict[str, Any]:
    """Rebuild ``gp_sweep.json`` / ``.csv`` of ``profile`` from every record present; return the dict."""
    p = profiles.get(profile)
    records = gs.collect(p)
    planned = gs.plan_runs(p, records=records)
    best = gs.select_best(records)
    best_label = next((s.label for s in planned if best and (s.config, s.level) == best and s.study == "grid"), None)
    summary = summarize(records)
    refs = {}
    if records:
        refs["main"] = reference_classifier(p)
        if p.sweep.robustness_method and any(r["config"]["study"] == "robustness" for r in records):
            refs["robustness"] = reference_classifier(p, p.sweep.robustness_method)
    sweep = {"schema": gs.SCHEMA_VERSION, "experiment": "gp_sweep", "profile": p.name,
             "settings": {"data": vars(p.data), "sweep": vars(p.sweep)},
             "complete": len(records) == len(planned), "n_runs": len(records), "n_planned": len(planned),
             "best_on_validation": best_label, "reference": refs, "summary": summary,
             "verdict": verdict(summary, refs.get("main"), best_label, profile=p.name),
             "runs": [{k: r[k] for k in ("key", "label", "config", "final", "history", "wall_time_s", "device")}
                      for r in records],
             "run_wall_time_s": round(sum(r["wall_time_s"] for r in records), 1), "this_call_wall_time_s": round(wall, 1),
             "versions": paths.versions()}
    out = paths.results_dir(p.name)
    paths.write_json(out / "gp_sweep.json", sweep)
    paths.write_text(out / "gp_sweep.csv", _csv_text(records))
    return sweep


def results_table(sweep: dict[str, Any], study: str = "grid") -> str:
    """Markdown table of one study: accuracy (mean [95 % CI]), paired Δ vs none, Holm p, train loss."""
    comps = {c["name"]: c for c in sweep["verdict"]["comparisons"]}
    for s in sweep["verdict"]["studies"]:
        comps.setdefault((s["per_class"], s["method"], s["comparison"]["name"]), s["comparison"])
    rows = []
    for r in (r for r in sweep["summary"] if r["study"] == study):
        c = comps.get(r["label"]) if study == "grid" else comps.get((r["per_class"], r["method"], r["label"]))
        chosen = " (best on validation)" if r["label"] == sweep.get("best_on_validation") and r["config"] != "none" else ""
        rows.append([f"`{r['label']}`{chosen}", r["per_class"], r["method"], len(r["seeds"]),
                     report.fmt_ci(r["test_accuracy"], signed=False),
                     report.fmt_ci(r["val_accuracy"], signed=False) if r["val_accuracy"] else "—",
                     report.fmt_ci(c) if c and c.get("decision") else "—",
                     report.fmt_p(c.get("p_holm") if study == "grid" else c.get("p")) if c else "—",
                     f"{r['train_loss']['mean']:.3f}"])
    head = ["configuration", "train/class", "data", "seeds", "test accuracy [95 % CI]", "val accuracy",
            "Δ test vs none [95 % CI]", "p (Holm)" if study == "grid" else "p", "final train loss"]
    return report.markdown_table(head, rows)


def compare_with_reference(fresh: str | profiles.Profile, reference: str = "scaled",
                           tolerance: float = TOLERANCE) -> list[dict[str, Any]]:
    """Every record of ``fresh`` against the record with the same key in ``results/<reference>``.

    Rows: key, label, seed, study, fresh and committed test accuracy, ``diff`` and ``status``
    (``identical``, ``within tolerance``, ``differs``, or ``no committed record``).
    """
    ref_dir = paths.output_root() / "results" / profiles.check(reference) / "gp_runs"
    rows = []
    for rec in gs.collect(fresh):
        ref = gs.read_record(ref_dir / f"{rec['key']}.json")
        new = rec["final"]["test_accuracy"]
        row = {"key": rec["key"], "label": rec.get("label"), "seed": rec["config"]["seed"],
               "study": rec["config"]["study"], "fresh": new, "committed": None, "diff": None,
               "status": "no committed record"}
        if ref is not None:
            d = new - ref["final"]["test_accuracy"]
            row.update(committed=ref["final"]["test_accuracy"], diff=d,
                       status="identical" if d == 0 and rec["history"] == ref["history"] else
                       "within tolerance" if abs(d) <= tolerance else "differs")
        rows.append(row)
    return rows


def reproduction_table(rows: Sequence[dict[str, Any]], tolerance: float = TOLERANCE) -> str:
    """Markdown: counts per status, the largest difference, and the tolerance used."""
    from collections import Counter

    n = Counter(r["status"] for r in rows)
    diffs = [abs(r["diff"]) for r in rows if r["diff"] is not None]
    lines = [report.markdown_table(["status", "runs"], [[k, v] for k, v in sorted(n.items())]),
             "", f"Largest |Δ test accuracy| against the committed record: "
             f"{max(diffs):.4f}" if diffs else "No run has a committed counterpart.",
             f"(tolerance {tolerance} per run; `identical` means the whole learning curve is bit-identical)."]
    return "\n".join(lines)
