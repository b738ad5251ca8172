"""Each study's claims table, from its summary's numbers: ``results/<profile>/claims.csv``.

One function per kind of study turns the numbers its analysis computed (the summary JSON next to the
records) into rows of the claims table (:mod:`backdrop_repro.claims`); :func:`build` writes the table
of every committed profile. The design belongs to each comparison (:data:`DESIGN`), the status comes
from the grammar, and nothing here makes a sentence.

>>> rows = gp_sweep_rows(load("replication", "gp_sweep"))           # doctest: +SKIP
>>> sorted({r["design"] for r in rows if r["role"] == "primary"})   # doctest: +SKIP
['confirmatory', 'exploratory']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional


from . import claims, paths, stats

__all__ = ["DESIGN", "load", "gp_sweep_rows", "learnability_rows", "confirm_rows", "nondecomposable_rows", "rows_for",
           "build", "table", "ND_MARGIN"]

#: the design of each comparison where the profile's kind does not say it all: (profile, arm label) -> (design, why)
DESIGN = {
    ("replication", "demo: fine 0.3 + coarse 0.95"): ("confirmatory", "the authors' setting, fixed in advance"),
    ("replication", "fine 0.9 + coarse 0.95"): (
        "exploratory", "chosen from the scaled grid's test-set gains and scored on that same test set"),
}
#: per-profile kind when a comparison is not in :data:`DESIGN`
KIND_WHY = {
    "confirmatory": "fixed in advance, fresh seeds",
    "exploratory": "a grid; the setting shown chosen on validation",
    "descriptive": "fixed in advance, too few seeds to be sized for power",
}
#: relevance of the AUC study, stated where the metric can reach it: the share of mis-ranked pairs removed,
#: 1 - (1 - AUC_arm) / (1 - AUC_baseline), per seed (chosen after the AUC results were seen: disclosed)
ND_MARGIN = 0.10


def load(profile: str, name: str) -> Optional[dict[str, Any]]:
    """``results/<profile>/<name>.json``, or None."""
    f = paths.output_root() / "results" / profile / f"{name}.json"
    return json.loads(f.read_text()) if f.exists() else None


def _from_claim(c: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    """The numbers of a :func:`backdrop_repro.report.judge` result as row fields."""
    iv, mt, tt = c["interval"], c.get("margin_test") or {}, c.get("tost") or {}
    unfinished = c.get("unfinished_reason") or ("runs hit their cap" if c.get("unfinished") else None)
    return dict(seeds=iv["n"], delta=iv["mean"], ci_low=iv["low"], ci_high=iv["high"], p=c["p"], p_adj=c["p_adjusted"],
                family=c.get("family"), family_size=c.get("m"), margin=c.get("margin"), margin_p=mt.get("p_adjusted"),
                tost_p=tt.get("p"), mde=c.get("mde"), unfinished=unfinished, metric=c.get("metric") or "test accuracy",
                **ctx)


def _secondary(d: Optional[dict[str, Any]], **ctx: Any) -> Optional[dict[str, Any]]:
    if not d or d.get("n", 0) < 1:
        return None
    return claims.row(role="secondary", seeds=d["n"], delta=d["mean"], ci_low=d.get("low"), ci_high=d.get("high"),
                      p=d.get("p"), **ctx)


def _level(d: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    ch = d["chance"]
    return claims.row(role="level", baseline="chance", baseline_mean=ch, seeds=d["n"], delta=d["mean"] - ch,
                      ci_low=None if d.get("low") is None else d["low"] - ch,
                      ci_high=None if d.get("high") is None else d["high"] - ch, p=d.get("p"), **ctx)


def gp_sweep_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The GP sweep's rows: each comparison with no backdrop (primary; per scale: secondary), the studies beyond
    the grid (data size, sampler), and what the no-backdrop network learned (levels, per scale)."""
    prof, v = s["profile"], s["verdict"]
    kind = (s.get("design") or {}).get("kind", "exploratory")
    n, planned = int(s["n_runs"]), int(s["n_planned"])
    if bool(s["complete"]) != (n >= planned):
        raise claims.ClaimsError(f"results/{prof}/gp_sweep.json: complete is {s['complete']} with {n} of {planned} runs")
    provisional = None if n >= planned else f"provisional: {n} of {planned} runs in"
    base = {"study": prof, "experiment": "gp_sweep"}
    grid = {r["label"]: r for r in s["summary"] if r["study"] == "grid"}
    none = grid.get("none", {})
    ep = lambda r: (r.get("epochs") or {}).get("mean") if r else None          # noqa: E731
    scale_names = ["small", "large"]
    out = []
    for c in (c for c in v["comparisons"] if c.get("claim")):        # < 2 paired seeds: nothing judged
        design, why = DESIGN.get((prof, c["name"]), (kind, KIND_WHY[kind]))
        ctx = dict(base, design=design, design_why=why, task="25/class" if kind else None, arm=c["name"],
                   baseline="none", baseline_mean=v["baseline"]["mean"], ceiling=1.0, epochs_arm=ep(grid.get(c["name"])),
                   epochs_baseline=ep(none))
        row = _from_claim(c["claim"], **ctx)
        row["unfinished"] = row["unfinished"] or provisional             # an unfinished study carries no claim
        out.append(claims.row(scale="all", **row))
        for name, d in zip(scale_names, c.get("scale_deltas") or []):
            r = _secondary(d, **{k: v_ for k, v_ in ctx.items() if k not in ("baseline_mean", "ceiling")}, scale=name)
            out += [r] if r else []
    for st in v.get("studies") or []:
        comp = st.get("comparison") or {}
        if not comp.get("claim"):
            continue
        task = f"{st['per_class']}/class" + ("" if st.get("method") in (None, "fft") else f", {st['method']} sampler")
        design, why = (("exploratory", "one comparison beyond the grid, judged alone") if kind == "exploratory" else
                       ("descriptive", "fixed in advance, judged alone; not sized for power"))
        out.append(claims.row(**_from_claim(comp["claim"], **base, design=design, design_why=why,
                                            task=task, scale="all", arm=comp["name"], baseline="none",
                                            baseline_mean=st["baseline"]["mean"], ceiling=1.0)))
    learned = v.get("learned") or {}
    if learned.get("all"):
        lv = dict(base, design=kind, design_why="what the no-backdrop network learned", task="25/class", arm="none")
        out.append(_level(learned["all"], scale="all", metric="test accuracy", **lv))
        for name, d in zip(scale_names, learned.get("scales") or []):
            if d:
                out.append(_level(d, scale=name, metric="test accuracy", **lv))
    return out


def learnability_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The learnability study's rows: every comparison along the edge and on the two-scale task (Holm over the
    study); the two-scale task that is not at the edge is secondary (it does not test the question)."""
    out = []
    base = {"study": s["profile"], "experiment": "learnability", "design": "exploratory"}
    cells = [(c, True) for c in s["edge"]["cells"]] + [(t, t.get("at_edge", True)) for t in s.get("twoscale") or []]
    for cell, at_edge in cells:
        if "ratio" in cell:
            task = f"{cell['scale']} scale, ratio {cell['ratio']:.2f}, {cell['per_class']}/class"
            scale = cell["scale"]
        else:
            task = f"two-scale task, {cell['per_class']}/class"
            scale = "all"
        for c in cell.get("comparisons") or []:
            ctx = dict(base, task=task, scale=scale, arm=c["name"], baseline="none",
                       baseline_mean=cell["baseline"]["mean"], ceiling=1.0)
            if at_edge:
                out.append(claims.row(design_why="along the edge; Holm over the whole study",
                                      **_from_claim(c["claim"], **ctx)))
            else:
                r = _secondary(c, **{k: v for k, v in ctx.items() if k not in ("baseline_mean", "ceiling")},
                               design_why="not at the edge: does not test the question")
                out += [r] if r else []
    return out


def confirm_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """A pre-registered study's rows (``confirm``, ``attribute``): only once complete; the family's comparisons
    (primary, with the pre-registration's own wording beside the grammar's status, planned and realised MDE and
    the median epochs each arm trained), and per scale (secondary)."""
    if s.get("status") != "complete":
        return []
    prof = s["profile"]
    power = _planned_power(prof)
    out = []
    for c in s["comparisons"]:
        base_arm = c.get("baseline", "none")
        ctx = dict(study=prof, experiment="confirm", design="confirmatory",
                   design_why="pre-registered: fixed in advance, fresh seeds and test set", task=c["task"],
                   arm=c["label"], baseline=c.get("baseline_label", base_arm), baseline_mean=c["none"]["mean"],
                   ceiling=1.0, mde_planned=(power.get(c["task"]) or {}).get("mde_at_seeds"),
                   epochs_arm=c["epochs"]["arm"], epochs_baseline=c["epochs"]["baseline"],
                   prereg_status=c.get("prereg_decision"))
        out.append(claims.row(scale="all", **_from_claim(c["claim"], **ctx)))
        for name, d in (c.get("scales") or {}).items():
            r = _secondary(d.get("diff"), **{k: v for k, v in ctx.items()
                                             if k not in ("baseline_mean", "ceiling", "prereg_status", "mde_planned")},
                           scale=name)
            out += [r] if r else []
    return out


def _planned_power(profile: str) -> dict[str, Any]:
    from .experiments.confirm.plan import PreregistrationError, read_preregistration

    try:
        return read_preregistration(profile)["block"].get("power", {}).get("tasks", {})
    except PreregistrationError:
        return {}


def _relative(by: dict[str, dict[int, float]], arm: str, base: str) -> dict[int, float]:
    """Per seed, the share of the baseline's mis-ranked pairs the arm removes: 1 - (1 - AUC_arm) / (1 - AUC_base)."""
    a, b = by.get(arm, {}), by.get(base, {})
    return {k: 1 - (1 - a[k]) / (1 - b[k]) for k in sorted(set(a) & set(b)) if b[k] < 1}


def nondecomposable_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The AUC study's rows. Relevance is judged on the share of mis-ranked pairs removed (primary, margin
    :data:`ND_MARGIN`, Holm over every setting against full batch): on the AUC itself a ±0.03 margin cannot be
    reached from a full-batch AUC near 0.975, so the AUC differences are secondary (intervals)."""
    prof = s["profile"]
    by: dict[str, dict[int, float]] = {}
    for r in s["runs"]:
        if r.get("test_auc") is not None:
            by.setdefault(r["label"], {})[int(r["seed"])] = float(r["test_auc"])
    chosen = {s["headline"].get("backdrop"), s["headline"].get("minibatch")}
    design = "descriptive" if prof == "default" else "exploratory"
    base = dict(study=prof, experiment="nondecomposable", design=design, task="digit 8 vs rest", scale="all")
    comps = [(c["name"], "full batch") for c in s["comparisons"]]
    diffs = [stats.paired({k: 0.0 for k in _relative(by, a, b)}, _relative(by, a, b)) for a, b in comps]
    adj = stats.holm([d.get("p") if d else None for d in diffs])
    m = len(comps)
    out = []
    for (arm, bl), d, q, c in zip(comps, diffs, adj, s["comparisons"]):
        if d is None:                           # fewer than 2 paired seeds: nothing to judge
            continue
        why = ("chosen on validation among its kind" if arm in chosen else "a setting of the grid") + \
              "; relevance margin chosen after the AUC results were seen"
        mt, tt = stats.margin_test(d, ND_MARGIN, m), stats.tost(d, ND_MARGIN, claims.ALPHA / 2)
        out.append(claims.row(**base, design_why=why, arm=arm, baseline=bl, metric="mis-ranked pairs removed (share)",
                              baseline_mean=0.0, ceiling=1.0, seeds=d["n"], delta=d["mean"], ci_low=d["low"],
                              ci_high=d["high"], p=d["p"], p_adj=q, family=f"every setting against full batch ({m})",
                              family_size=m, margin=ND_MARGIN, margin_p=mt["p_adjusted"] if mt else None,
                              tost_p=tt["p"] if tt else None,
                              mde=stats.mde(d["sd"], d["n"], m=m)))
        r = _secondary(c, **base, design_why=why, arm=arm, baseline=bl, metric="test AUC")
        out += [r] if r else []
    lv = stats.learned_over_seeds(by["full batch"], 0.5)
    out.append(_level(lv, **base, design_why="what the full-batch network learned", arm="full batch",
                      metric="test AUC"))
    return out


#: which summary each committed profile writes, and how it becomes rows
SOURCES = {"gp_sweep": gp_sweep_rows, "learnability": learnability_rows, "confirm": confirm_rows,
           "nondecomposable": nondecomposable_rows}


def rows_for(profile: str) -> list[dict[str, Any]]:
    """Every row of ``profile`` from its summaries (none: an empty list)."""
    out: list[dict[str, Any]] = []
    for name, fn in SOURCES.items():
        s = load(profile, name)
        if s is None:
            continue
        if not isinstance(s, dict) or s.get("profile") not in (None, profile):
            raise claims.ClaimsError(f"results/{profile}/{name}.json: not a summary of profile {profile!r}")
        try:
            out += fn(s)
        except (KeyError, TypeError, IndexError) as err:
            raise claims.ClaimsError(f"results/{profile}/{name}.json: not a complete summary ({type(err).__name__}: "
                                     f"{err}); rebuild it (the study's --collect-only)") from None
    return out


def build(profiles_: Optional[list[str]] = None) -> dict[str, Path]:
    """Write ``results/<profile>/claims.csv`` for every profile with a summary (or those named)."""
    root = paths.output_root() / "results"
    names = profiles_ or sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    out = {}
    for name in names:
        rows = rows_for(name)
        if rows:
            out[name] = claims.write(root / name, rows)
    return out


def table(profile: str) -> list[dict[str, Any]]:
    """The committed, validated claims table of ``profile`` (:func:`backdrop_repro.claims.read`)."""
    return claims.read(paths.output_root() / "results" / profile / "claims.csv")


if __name__ == "__main__":      # python -m backdrop_repro.tables
    for k, v in build().items():
        print(f"{k}: {v}")
