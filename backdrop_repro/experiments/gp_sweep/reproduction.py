"""The reproduction check: fresh GP runs against the committed runs of the same keys.

What ``make reproduce`` ends with, and ``backdrop-repro sweep --profile default --collect-only
--compare replication`` (the same rule and exit status, without training).

Per run (:func:`compare_with_reference`): ``identical`` (the same learning curve, final metrics
and predictions, bit for bit: what the same CPU type, pins and threads give) or ``numerically
different`` (another rounding: reported with its Δ on the 4 classes and on each scale, never a
failure by itself); a failed (diverged) or unreadable record on either side is a row too.

Per configuration and per paired gain over no backdrop (:func:`judge`): the re-run seeds are a
sample judged against the committed runs of the same seeds. Their mean Δ must lie within

    bound = DRIFT_Z x DRIFT_SD / sqrt(n)        (a gain: DRIFT_Z x sqrt(2) x DRIFT_SD / sqrt(n))

where :data:`DRIFT_SD` is the measured size of rounding drift per run (docs/reliability.md,
"Cross-machine drift": two CPUs, and two formulations of the same network on one CPU). A
configuration outside its bound is ``shifted`` and the check fails. The report also states the
smallest true shift the rule detects with 80 % power at the seeds re-run: a real change scatters
the runs like a change of seed, so ``mde = bound + z_0.8 x sqrt(2) x SD_seed / sqrt(n)`` with
``SD_seed`` the committed between-seed spread of that configuration (conservative: it counts the
changed run as an independent draw).

The check is a reader: it never renames, moves or deletes a record on either side (records are
read through :func:`backdrop_repro.records.inspect`, the package's one reader, which touches nothing).

Example: ``result = write_report("default", "replication", path); check(result)``.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

from ... import paths, profiles, records
from ... import stats
from . import plan as gs

__all__ = ["DRIFT_SD", "DRIFT_Z", "POWER_Z", "ReproductionError", "compare_with_reference", "judge", "check",
           "write_report", "reference_runs_dir", "PROBLEMS", "COMPARED", "shifted_name", "unjudged_summary"]

#: rounding drift: the SD of one run's Δ test accuracy (4 classes) between two roundings of the same
#: run. The upper 95 % confidence limit of the measured drift, rounded up to 0.005; the measurement
#: (another CPU: 12 runs; on one CPU ``impl="s2d"`` and the NCHW layout: 12 runs each) is in docs/reliability.md and
#: tests/test_gp_sweep_reproduction.py recomputes it from the records in tests/data/.
DRIFT_SD = 0.02
#: the bound in standard errors of drift: two-sided 0.27 % per test, < 1.4 % over the 5 tests of ``default``
DRIFT_Z = 3.0
#: z of 80 % power (the smallest shift the rule detects)
POWER_Z = 0.8416

#: the per-run statuses whose records both sides can compare
COMPARED = ("identical", "numerically different")
#: the per-run statuses that make the check fail (a record that cannot be judged)
PROBLEMS = ("fresh record unreadable", "committed record unreadable", "fresh run failed", "committed run failed")


class ReproductionError(RuntimeError):
    """The reproduction check could not compare anything, compared a record with itself, found a
    record it cannot judge, or found a configuration shifted beyond its bound (one line naming what
    and where the report is)."""


def reference_runs_dir(reference: str) -> Path:
    """``results/<reference>/gp_runs`` of the checkout (the committed record), else of the output root."""
    for root in (paths.checkout_root(), paths.output_root()):
        if root is not None and (root / "results" / reference / "gp_runs").is_dir():
            return root / "results" / reference / "gp_runs"
    return paths.output_root() / "results" / reference / "gp_runs"


def _read(path: Path, spec: gs.RunSpec) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """``(record, None)`` (a usable or a failed run), ``(None, None)`` when there is no file, or
    ``(None, why)`` when :func:`backdrop_repro.records.inspect` finds it malformed or another run's.
    ``inspect`` never renames, moves or deletes the file."""
    try:
        found = records.inspect(path, spec)
    except Exception as err:            # a reader that fails is a row, never a crash of the check
        return None, f"{type(err).__name__}: {err}"
    if found.status == "missing":
        return None, None
    if found.status in ("ok", "failed"):
        bad = _out_of_range(found.record)
        return (None, bad) if bad else (found.record, None)
    return None, found.reason or found.status


def _out_of_range(rec: dict[str, Any]) -> Optional[str]:
    """Why the accuracies the check compares are not finite numbers in [0, 1], or None."""
    f = rec["final"]
    if f.get("failed"):
        return None
    vals = [("test_accuracy", f.get("test_accuracy"))]
    if f.get("test_scale_accuracy") is not None:
        sc = f["test_scale_accuracy"]
        if not isinstance(sc, list):
            return f"test_scale_accuracy is {type(sc).__name__}, not a list"
        vals += [(f"test_scale_accuracy[{i}]", v) for i, v in enumerate(sc)]
    for name, v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 1:
            return f"{name} is {v!r}, not a finite accuracy in [0, 1]"
    return None


def _failed(rec: dict[str, Any]) -> Optional[str]:
    why = rec["final"].get("failed")
    return str(why) if why else None


def _machine(rec: Optional[dict[str, Any]]) -> Optional[str]:
    if rec is None:
        return None
    v = rec.get("versions") or {}
    cpu = (v.get("cpu") or "CPU model not recorded") + (f" ({v['cpu_id']})" if v.get("cpu_id") else "")
    cap = f", {v['cpu_isa']}" if v.get("cpu_isa") else ""
    return f"{cpu}{cap}; {v.get('machine', 'machine not recorded')}; torch {v.get('torch', '?')}"


def _scales(rec: Optional[dict[str, Any]]) -> Optional[list[float]]:
    s = rec["final"].get("test_scale_accuracy") if rec is not None else None
    return [float(x) for x in s] if isinstance(s, list) else None


def _copy(fresh: Path, committed: Path, rec: dict[str, Any], ref: Optional[dict[str, Any]]) -> bool:
    """Whether the fresh record is the committed one however it got there: a link to it, a record with the
    committed record's own ``run_id`` (every training writes a new one), or, for records older than ``run_id``,
    the whole record equal to the committed one (its wall time to 0.01 s included: a re-run never matches that)."""
    try:
        if committed.exists() and fresh.resolve().samefile(committed):
            return True
    except OSError:
        pass
    if ref is None:
        return False
    rid = rec.get("run_id")
    return rid == ref.get("run_id") if rid else rec == ref


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("history", "final", "predictions"))


def _specs(p: profiles.Profile) -> list[gs.RunSpec]:
    """The fresh profile's full plan (grid, then the studies of its fixed or selected configuration)."""
    grid = gs.plan_grid(p)
    if p.sweep.study_config is None:
        # the selected configuration depends on the records: read them without touching them
        recs = [r for r in (_read(gs.runs_dir(p) / f"{s.key}.json", s)[0] for s in grid) if r]
        return gs.plan_runs(p, records=recs)
    return gs.plan_runs(p, records=[])


def _group(spec: gs.RunSpec) -> tuple:
    d = spec.profile.data
    return (spec.study, spec.config, spec.level, spec.per_class or d.per_class, spec.method or d.method)


def compare_with_reference(fresh: str | profiles.Profile, reference: str = "replication") -> list[dict[str, Any]]:
    """Every run of ``fresh`` with a record on disk against the record of the same key in
    ``results/<reference>/gp_runs`` (the checkout's committed record, wherever the output goes).

    Rows (plan order): ``key, label, config, seed, study, group`` (what differs only by seed),
    ``fresh`` / ``committed`` (test accuracy, 4 classes; None when not usable), ``diff`` (fresh -
    committed), ``fresh_scales`` / ``committed_scales`` / ``scale_diff`` (per scale, smallest first),
    ``status`` (``identical``, ``numerically different``, ``not re-run`` for a record copied from
    another profile's folder, ``no committed record``, ``both failed``, or one of :data:`PROBLEMS`),
    ``why`` (the reason of a problem) and ``fresh_machine`` / ``committed_machine``. Nothing on
    either side is modified. Comparing a profile with itself raises :class:`ReproductionError`.
    """
    p = profiles.get(fresh)
    if profiles.check(reference) == p.name:
        raise ReproductionError(f"reference must be another profile than {p.name!r}: a record compared with itself "
                                "proves nothing")
    ref_dir = reference_runs_dir(reference)
    own_dir = gs.runs_dir(p)
    if ref_dir.resolve() == own_dir.resolve():
        raise ReproductionError(f"the fresh records and the reference are the same folder {ref_dir}")
    rows = []
    for spec in _specs(p):
        path = own_dir / f"{spec.key}.json"
        if not path.exists():
            continue
        rec, why_f = _read(path, spec)
        ref, why_c = _read(ref_dir / f"{spec.key}.json", spec)
        row: dict[str, Any] = {"key": spec.key, "label": spec.label, "config": spec.config, "seed": spec.seed,
                               "study": spec.study, "group": _group(spec), "fresh": None, "committed": None,
                               "diff": None, "fresh_scales": _scales(rec), "committed_scales": _scales(ref),
                               "scale_diff": None, "status": "", "why": None,
                               "fresh_machine": _machine(rec), "committed_machine": _machine(ref)}
        if rec is not None and not _failed(rec):
            row["fresh"] = float(rec["final"]["test_accuracy"])
        if ref is not None and not _failed(ref):
            row["committed"] = float(ref["final"]["test_accuracy"])
        def named(file: Path, why: str) -> str:
            return why if str(file) in why else f"{file}: {why}"
        if rec is None:
            row.update(status="fresh record unreadable", why=named(path, why_f))
        elif rec.get("copied_from") or _copy(path, ref_dir / path.name, rec, ref):
            row.update(status="not re-run", why=f"{path}: a copy of the committed record (or a link to it), not a run "
                                                "trained here")
        elif why_c is not None:
            row.update(status="committed record unreadable", why=named(ref_dir / path.name, why_c))
        elif ref is None:
            row["status"] = "no committed record"
        elif _failed(rec) and _failed(ref):
            row.update(status="both failed", why=f"fresh: {_failed(rec)}; committed: {_failed(ref)}")
        elif _failed(rec):
            row.update(status="fresh run failed", why=f"{path}: {_failed(rec)}")
        elif _failed(ref):
            row.update(status="committed run failed", why=f"{ref_dir / path.name}: {_failed(ref)}")
        else:
            row["diff"] = row["fresh"] - row["committed"]
            if row["fresh_scales"] and row["committed_scales"]:
                row["scale_diff"] = [a - b for a, b in zip(row["fresh_scales"], row["committed_scales"])]
            row["status"] = "identical" if _same(rec, ref) else "numerically different"
        rows.append(row)
    return rows


def _seed_spread(reference: str, groups: Sequence[tuple]) -> dict[tuple, Optional[float]]:
    """The committed between-seed SD of test accuracy of each group, over every seed of the
    reference profile's plan that has a usable record (None below 2 seeds)."""
    ref_dir = reference_runs_dir(reference)
    by: dict[tuple, list[float]] = {g: [] for g in groups}
    try:
        specs = _specs(profiles.get(reference))
    except (ValueError, KeyError):
        specs = []
    for spec in specs:
        g = _group(spec)
        if g not in by:
            continue
        rec, _ = _read(ref_dir / f"{spec.key}.json", spec)
        if rec is not None and not _failed(rec):
            by[g].append(float(rec["final"]["test_accuracy"]))
    out = {}
    for g, v in by.items():
        out[g] = stats.summary(v)["sd"] if len(v) >= 2 else None
    return out


def _verdict(delta: float, bound: float) -> str:
    return "reproduced" if abs(delta) <= bound else "shifted"


def judge(rows: Sequence[dict[str, Any]], reference: str = "replication",
          spread: Optional[dict[tuple, Optional[float]]] = None) -> dict[str, Any]:
    """The decision on the rows of :func:`compare_with_reference`.

    Returns ``{"status", "failure", "configurations", "gains", "counts", "problems", "machines", "compared",
    "identical", "shifted", "unjudged", "missing"}``: ``status`` is ``bit for bit`` (every compared run identical), ``in
    distribution`` (every configuration and paired gain within its bound), ``not reproduced`` (one
    shifted), ``not judged`` (a record on either side failed or cannot be read) or ``nothing
    compared``; ``failure`` is the one line of :class:`ReproductionError` (None when it reproduces).
    A configuration row: ``label, group, seeds, n, committed, fresh, delta, bound, sd_seed, mde,
    verdict`` (``identical`` / ``reproduced`` / ``shifted`` / ``not judged``). ``spread``: the
    committed between-seed SD per group (default: read from ``results/<reference>``).
    """
    order: list[tuple] = []
    for r in rows:
        if r["group"] not in order:
            order.append(r["group"])
    if spread is None:
        try:
            spread = _seed_spread(reference, order)
        except Exception:                                       # the spread only sizes the MDE: never a crash
            spread = {}
    configs = []
    for g in order:
        rs = [r for r in rows if r["group"] == g]
        used = [r for r in rs if r["status"] in COMPARED]
        n = len(used)
        row: dict[str, Any] = {"label": rs[0]["label"], "group": g, "config": rs[0]["config"], "study": rs[0]["study"],
                               "seeds": [r["seed"] for r in used], "n": n, "committed": None, "fresh": None,
                               "delta": None, "bound": None, "sd_seed": spread.get(g), "mde": None,
                               "verdict": "not judged"}
        if n:
            row["committed"] = sum(r["committed"] for r in used) / n
            row["fresh"] = sum(r["fresh"] for r in used) / n
            row["delta"] = row["fresh"] - row["committed"]
            row["bound"] = DRIFT_Z * DRIFT_SD / math.sqrt(n)
            if row["sd_seed"] is not None:
                row["mde"] = row["bound"] + POWER_Z * math.sqrt(2) * row["sd_seed"] / math.sqrt(n)
            row["verdict"] = ("identical" if all(r["status"] == "identical" for r in used)
                              else _verdict(row["delta"], row["bound"]))
        configs.append(row)
    gains = []
    for c in configs:
        if c["config"] == "none":
            continue
        base = next((b for b in configs if b["config"] == "none" and b["group"][0] == c["group"][0]
                     and b["group"][3:] == c["group"][3:]), None)
        if base is None:              # no baseline re-run: the gain cannot be judged, and says so
            gains.append({"label": f"{c['label']} - none", "of": c["label"], "seeds": [], "n": 0, "committed": None,
                          "fresh": None, "delta": None, "bound": None, "mde": None, "verdict": "not judged"})
            continue
        cr = {r["seed"]: r for r in rows if r["group"] == c["group"] and r["status"] in COMPARED}
        br = {r["seed"]: r for r in rows if r["group"] == base["group"] and r["status"] in COMPARED}
        seeds = [s for s in cr if s in br]
        n = len(seeds)
        g: dict[str, Any] = {"label": f"{c['label']} - none", "of": c["label"], "seeds": seeds, "n": n,
                             "committed": None, "fresh": None, "delta": None, "bound": None, "mde": None,
                             "verdict": "not judged"}
        if n:
            g["committed"] = sum(cr[s]["committed"] - br[s]["committed"] for s in seeds) / n
            g["fresh"] = sum(cr[s]["fresh"] - br[s]["fresh"] for s in seeds) / n
            g["delta"] = g["fresh"] - g["committed"]
            g["bound"] = DRIFT_Z * math.sqrt(2) * DRIFT_SD / math.sqrt(n)
            if c["sd_seed"] is not None and base["sd_seed"] is not None:
                g["mde"] = g["bound"] + POWER_Z * math.sqrt(2 * (c["sd_seed"] ** 2 + base["sd_seed"] ** 2) / n)
            g["verdict"] = ("identical" if all(cr[s]["status"] == br[s]["status"] == "identical" for s in seeds)
                            else _verdict(g["delta"], g["bound"]))
        gains.append(g)
    counts = Counter(r["status"] for r in rows)
    compared = [r for r in rows if r["status"] in COMPARED]
    problems = [r for r in rows if r["status"] in PROBLEMS]
    shifted = sorted([x for x in configs + gains if x["verdict"] == "shifted"],
                     key=lambda x: -abs(x["delta"]) / x["bound"])
    machines = {side: Counter(r[f"{side}_machine"] for r in rows if r[f"{side}_machine"])
                for side in ("fresh", "committed")}
    out: dict[str, Any] = {"configurations": configs, "gains": gains, "counts": dict(counts), "problems": problems,
                           "machines": {k: dict(v) for k, v in machines.items()}, "reference": reference,
                           "compared": len(compared), "identical": counts.get("identical", 0), "shifted": shifted,
                           "unjudged": [x["label"] for x in configs + gains if x["verdict"] == "not judged"],
                           "missing": [r for r in rows if r["status"] in ("no committed record", "not re-run")],
                           "failure": None}
    if problems:
        p = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        out.update(status="not judged", failure=f"`{p['label']}` seed {p['seed']}: {p['status']} ({p['why']}){more}")
    elif not compared:
        out.update(status="nothing compared", failure=(
            f"the reproduction check compared no run with results/{reference}: {len(rows)} records, none re-run here "
            "with a committed counterpart; run `make reproduce` without REUSE=1 in a checkout that holds "
            f"results/{reference}"))
    elif out["unjudged"] or out["missing"]:
        out.update(status="not judged", failure=f"the reproduction check could not make every comparison against "
                                                f"results/{reference}: {unjudged_summary(out)}")
    elif shifted:
        x = shifted[0]
        more = (" (also shifted: " + "; ".join(f"{shifted_name(y)} {y['delta']:+.3f}, bound ±{y['bound']:.3f}"
                                              for y in shifted[1:]) + ")") if len(shifted) > 1 else ""
        out.update(status="not reproduced", failure=(
            f"{shifted_name(x)} moved by {x['delta']:+.3f} test accuracy over {x['n']} re-run seeds against "
            f"results/{reference} (bound ±{x['bound']:.3f} for rounding drift){more}"))
    else:
        out["status"] = "bit for bit" if out["identical"] == len(compared) else "in distribution"
    return out


def shifted_name(y: dict[str, Any]) -> str:
    """A shifted configuration or gain, named for the error line."""
    return f"the gain of `{y['of']}` over `none`" if "of" in y else f"`{y['label']}`"


def unjudged_summary(res: dict[str, Any]) -> str:
    names, missing = [f"`{x}`" for x in res["unjudged"]], res["missing"]
    runs = (f"{len(missing)} run(s) without a fresh and a committed record to compare ({missing[0]['status']}"
            f"{': ' + missing[0]['why'] if missing[0]['why'] else ''})") if missing else ""
    return "; ".join(x for x in (f"not judged, 0 seeds: {', '.join(names)}" if names else "", runs) if x)


def write_report(fresh: str | profiles.Profile, reference: str, path: Path,
                 extra: Sequence[str] = ()) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Compare, judge and write ``path`` (``reproduction.md``, :func:`backdrop_repro.render.reproduction`) atomically,
    whatever the outcome;
    returns ``(rows, result)`` for :func:`check`."""
    p = profiles.get(fresh)
    rows = compare_with_reference(p, reference)
    result = judge(rows, reference)
    result["report"] = str(path)
    from ... import render           # the words: a template over these numbers

    paths.write_text(path, render.reproduction(rows, result, f"Reproduction check: profile `{p.name}` against "
                                                             f"`results/{reference}`", extra))
    return rows, result


def check(result: dict[str, Any]) -> None:
    """Raise :class:`ReproductionError` (one line: what, by how much, the bound, the report) unless
    the committed results reproduced (bit for bit or in distribution)."""
    if result["failure"]:
        where = f"; report: {result['report']}" if result.get("report") else ""
        raise ReproductionError(" ".join(f"reproduction check: {result['failure']}{where}".split()))   # one line
