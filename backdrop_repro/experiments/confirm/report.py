"""The confirmatory study's report: reads records only, checks them against the pre-registration.

:func:`summarize` reads every planned run's record (``results/<profile>/runs/<key>.json``) and

* refuses records of another design: a record whose ``preregistration.sha256`` is not the current
  file's hash, or whose config is not its spec's, is listed under ``refused`` and not used;
* checks freshness: no other committed record (any profile, any experiment) has used the study's
  run seeds with the same data, nor any of its data seeds (training, validation, test);
* counts, per task and arm, the runs landed, capped (stopped at the budget's cap) and failed;
* **only when every planned run has a valid record** (a confirmatory study is not read while it
  runs), computes the four paired comparisons (arm - none, per seed, test accuracy), Holm over the
  family, and judges each by the package's claim grammar (:func:`backdrop_repro.report.judge`),
  plus the secondary endpoints: per-scale paired differences, the share of seeds that learn the
  small scale (>= ``learn_threshold``) with an exact McNemar test, and the realised MDE.

:func:`write_summary` writes ``results/<profile>/confirm.json`` and ``confirm.md`` (its words:
:func:`backdrop_repro.render.confirm_md`). Deviations from the pre-registration are data: each comparison
whose grammar status and pre-registered decision disagree.
"""
from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from ... import paths, profiles
from ... import report as R
from ..gp_sweep.plan import read_record
from .plan import PreregistrationError, check_preregistration, design, plan_runs, records_dir, section

__all__ = ["summarize", "write_summary", "load_summary", "mcnemar", "freshness", "machines", "SAME"]


def mcnemar(base: dict[int, bool], cand: dict[int, bool]) -> dict[str, Any]:
    """Exact two-sided McNemar test of paired yes/no outcomes (seeds both have): ``b`` seeds yes only
    without the arm, ``c`` yes only with it, ``p`` the two-sided binomial p of ``min(b, c)`` in ``b + c``.
    Example: ``mcnemar({0: True, 1: False}, {0: True, 1: True})`` -> b 0, c 1, p 1.0."""
    from scipy import stats

    keys = sorted(set(base) & set(cand))
    b = sum(base[k] and not cand[k] for k in keys)
    c = sum(cand[k] and not base[k] for k in keys)
    p = 1.0 if b + c == 0 else float(stats.binomtest(min(b, c), b + c, 0.5).pvalue)
    return {"seeds": len(keys), "base_yes": sum(base[k] for k in keys), "cand_yes": sum(cand[k] for k in keys),
            "b": int(b), "c": int(c), "p": min(1.0, p)}


def _data_seeds(cfg: dict[str, Any]) -> set[int]:
    out = set()
    for split in (cfg.get("data") or {}).values():
        if isinstance(split, dict) and isinstance(split.get("seed"), int):
            out.add(split["seed"])
    return out


def _run_seed(cfg: dict[str, Any]) -> Optional[int]:
    seed = cfg.get("seed", (cfg.get("train") or {}).get("seed"))
    return seed if isinstance(seed, int) else None


def freshness(profile: "str | profiles.Profile", run_seeds: bool = False) -> dict[str, Any]:
    """Every committed record outside this study (``results/*/**/*.json`` with a ``config``) that
    shares a data seed (training, validation or test) with any run of the study, or (``run_seeds``) a
    run seed. Returns ``{"records_scanned", "conflicts": [file, ...], "fresh": bool}``."""
    p = profiles.get(profile)
    ours: set[int] = set()
    seeds = set()
    for s in plan_runs(p):
        ours |= {r.seed for r in s.recipes()}
        seeds.add(s.seed)
    own = records_dir(p).resolve()
    scanned, conflicts = 0, []
    root = paths.output_root() / "results"
    for f in sorted(root.glob("*/**/*.json")):
        if f.resolve().parent == own:
            continue
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        cfg = rec.get("config") if isinstance(rec, dict) else None
        if not isinstance(cfg, dict):
            continue
        scanned += 1
        if _data_seeds(cfg) & ours or (run_seeds and _run_seed(cfg) in seeds):
            conflicts.append(str(f.relative_to(paths.output_root())))
    return {"records_scanned": scanned, "conflicts": conflicts, "fresh": not conflicts}


def _finished(rec: dict[str, Any], cap: int) -> tuple[bool, bool]:
    """``(capped, failed)`` of a record: it stopped at the budget's cap of ``cap`` epochs / it diverged."""
    fin = rec["final"]
    if fin.get("failed"):
        return False, True
    return fin.get("stop_reason") == "cap", False


def machines(recs: dict[tuple, dict[str, Any]]) -> dict[str, Any]:
    """Which CPUs (or GPUs) the records come from: ``{"runs": {machine: n}, "split_pairs": [task, seed] whose arms
    ran on more than one machine}`` (a paired difference within one machine carries no cross-machine rounding)."""
    def name(rec: dict[str, Any]) -> str:
        return str((rec.get("versions") or {}).get("cpu") or rec.get("device") or "unknown")

    runs: dict[str, int] = {}
    by_pair: dict[tuple, set] = {}
    for (task, _config, seed), rec in recs.items():
        runs[name(rec)] = runs.get(name(rec), 0) + 1
        by_pair.setdefault((task, seed), set()).add(name(rec))
    return {"runs": dict(sorted(runs.items())), "split_pairs": sorted([t, sd] for (t, sd), m in by_pair.items() if len(m) > 1)}


def prereg_decision(comp: dict[str, Any], margin: float, alpha: float, unfinished: bool) -> str:
    """The decision by the pre-registration's own words (its ``decision_rule``), kept beside the package
    grammar's status so any disagreement between the two is visible (and reported as a deviation)."""
    p = comp.get("p_holm")
    if unfinished:
        return "unfinished"
    if p is not None and p < alpha and comp["mean"] > 0:
        return "better beyond the margin" if comp["low"] > margin else "significant, not shown beyond the margin"
    if p is not None and p < alpha and comp["mean"] < 0:
        return "worse"
    if comp.get("high") is not None and comp["high"] < margin:
        return "not confirmed"
    return "inconclusive"


#: the pre-registration's words that mean the same as a status of the package grammar
SAME = {"unfinished": {"unfinished"}, "better beyond the margin": {"relevant gain"},
        "significant, not shown beyond the margin": {"significant gain"}, "worse": {"contradicted"},
        "not confirmed": {"not confirmed", "equivalent"}, "inconclusive": {"inconclusive"}}


def summarize(profile: "str | profiles.Profile") -> dict[str, Any]:
    """The study's summary (see the module docstring); never trains, never writes a record."""
    p = profiles.get(profile)
    c = section(p)
    cap = p.learnability.epochs
    out: dict[str, Any] = {"profile": p.name, "experiment": "confirm", "design": design(p)}
    pre = check_preregistration(p)          # a missing or edited pre-registration: PreregistrationError, nothing written
    out["preregistration"] = {"file": str(pre["path"].relative_to(paths.output_root())), "sha256": pre["sha256"]}
    specs = plan_runs(p, prereg=pre["sha256"])
    recs: dict[tuple, dict[str, Any]] = {}
    refused = []
    for s in specs:
        rec = read_record(s.record_path, s)
        if rec is None:
            if s.record_path.exists():
                refused.append({"file": s.record_path.name, "why": "config differs from its spec"})
            continue
        sha = (rec.get("preregistration") or {}).get("sha256")
        if sha != pre["sha256"]:
            refused.append({"file": s.record_path.name, "why": f"pre-registration hash {sha!r} is not the file's"})
            continue
        recs[(s.task, s.config, s.seed)] = rec
    out["records"] = {"planned": len(specs), "valid": len(recs), "refused": refused}
    out["machines"] = machines(recs)
    out["freshness"] = freshness(p, run_seeds=c.comparisons is not None)
    tasks = []
    for t in c.tasks:
        arms = []
        for config, *_ in c.arms:
            rs = [recs[(t.name, config, s)] for s in t.seeds if (t.name, config, s) in recs]
            flags = [_finished(r, cap) for r in rs]
            walls = [r["wall_time_s"] for r in rs]
            arms.append({"config": config, "label": next((r["label"] for r in rs), config), "planned": len(t.seeds),
                         "landed": len(rs), "capped": sum(f[0] for f in flags), "failed": sum(f[1] for f in flags),
                         "wall_s_mean": float(np.mean(walls)) if walls else None})
        tasks.append({"name": t.name, "lengths": [list(ls) for ls in t.lengths], "per_class": t.per_class,
                      "seeds": len(t.seeds), "arms": arms})
    out["tasks"] = tasks
    complete = len(recs) == len(specs)
    out["complete"] = complete
    if refused:
        out["status"] = "refused"
        out["error"] = (f"{len(refused)} record(s) in {records_dir(p)} do not belong to this pre-registration (first: "
                        f"{refused[0]['file']}: {refused[0]['why']}); restore the committed pre-registration, or move "
                        "those records aside and state the deviation")
        return out
    if not complete:
        out["status"] = "running"
        return out
    out["status"] = "complete"
    out.update(_compare(p, recs))
    if not out["freshness"]["fresh"]:            # stated, never silent: the seeds were not all fresh
        out["deviations"].append({"freshness": out["freshness"]["conflicts"]})
    return out


def _acc(recs: dict[tuple, dict[str, Any]], task: str, config: str, seeds, what: str) -> dict[int, float]:
    out = {}
    for s in seeds:
        r = recs.get((task, config, s))
        if r is None or r["final"].get("failed"):
            continue
        fin = r["final"]
        if what == "task":
            out[s] = float(fin["test_accuracy"])
        else:
            out[s] = float(fin["test_scale_accuracy"][{"small": 0, "large": 1}[what]])
    return out


def _compare(p: profiles.Profile, recs: dict[tuple, dict[str, Any]]) -> dict[str, Any]:
    c = section(p)
    cap = p.learnability.epochs
    named = c.comparisons is not None          # a family of named comparisons: its decision rule is the grammar's
    rows = []
    for t in c.tasks:
        for config, base in c.family():
            b = _acc(recs, t.name, base, t.seeds, "task")
            a = _acc(recs, t.name, config, t.seeds, "task")
            d = R.paired(b, a) or {"n": 0}
            flags = {k: [_finished(recs[(t.name, k, s)], cap) for s in t.seeds] for k in (base, config)}
            share = max(sum(f[0] or f[1] for f in fl) for fl in flags.values()) / len(t.seeds)
            scales = {}
            for sc in (["small"] if len(t.lengths) == 1 else ["small", "large"]):
                sb, sa = _acc(recs, t.name, base, t.seeds, sc), _acc(recs, t.name, config, t.seeds, sc)
                scales[sc] = {"none": R.summary(list(sb.values())), "arm": R.summary(list(sa.values())),
                              "diff": R.paired(sb, sa)}
            learn = {k: {s: v >= c.learn_threshold for s, v in _acc(recs, t.name, k, t.seeds, "small").items()}
                     for k in (base, config)}
            label = {k: next(r["label"] for (tk, kk, _), r in recs.items() if tk == t.name and kk == k)
                     for k in (base, config)}
            epochs = {k: float(np.median([recs[(t.name, k, s)]["final"].get("stopped_epoch") or 0 for s in t.seeds]))
                      for k in (base, config)}
            rows.append({"task": t.name, "config": config, "label": label[config], "baseline": base,
                         "baseline_label": label[base], **d, "unfinished": share > c.max_capped,
                         "unfinished_share": share, "fixed_in_advance": True, "none": R.summary(list(b.values())),
                         "scales": scales, "learns_small": mcnemar(*learn.values()),
                         "epochs": {"arm": epochs[config], "baseline": epochs[base]}})
    adj = R.holm([r.get("p") for r in rows])
    m = len(rows)
    deviations = []
    for r, q in zip(rows, adj):
        r["p_holm"] = q
        r["m_tests"] = m
        why = (f"{r['unfinished_share']:.0%} of an arm's runs reached the cap or failed (pre-registered limit "
               f"{c.max_capped:.0%})" if r["unfinished"] else None)
        r["claim"] = R.judge(r, m=m, p_adjusted=q, margin=c.margin, alpha=c.alpha, unfinished=why,
                             family=f"{p.name}: {m} pre-registered comparisons, Holm", fixed_in_advance=True,
                             name=r["label"])
        r.update(status=r["claim"]["status"], mde=r["claim"]["mde"])
        r["prereg_decision"] = r["status"] if named else prereg_decision(r, c.margin, c.alpha, r["unfinished"])
        if r["status"] not in SAME.get(r["prereg_decision"], {r["prereg_decision"]}):
            deviations.append({k: r[k] for k in ("task", "label", "status", "prereg_decision")})
    return {"comparisons": rows, "deviations": deviations}


def write_summary(profile: "str | profiles.Profile") -> dict[str, Any]:
    """:func:`summarize`, written to ``results/<profile>/confirm.json`` and ``confirm.md``; returned."""
    p = profiles.get(profile)
    s = summarize(p)
    if s["status"] == "refused":            # loud, and the last good summary stays as it was
        raise PreregistrationError(s["error"])
    folder = paths.results_dir(p.name)
    paths.write_json(folder / "confirm.json", s)
    from ... import render                  # the words: a template over these numbers

    paths.write_text(folder / "confirm.md", render.confirm_md(s))
    return s


def load_summary(profile: "str | profiles.Profile") -> Optional[dict[str, Any]]:
    """The written summary, or None."""
    f = paths.results_dir(profiles.get(profile).name) / "confirm.json"
    return json.loads(f.read_text()) if f.exists() else None
