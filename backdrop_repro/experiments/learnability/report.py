"""The learnability map's tables, comparisons and Findings: reads records only.

* :func:`summarize_map` : per map cell (scale, length ratio, training images per class) the
  no-backdrop CNN's test accuracy (mean and 95 % interval over seeds, its training accuracy at
  the scored epoch, the exact binomial test of its pooled predictions against chance), the
  spectral-energy net's, the likelihood classifier's, and the separation ``d'`` of one number
  per image (the log mean squared slope, :func:`.run.energy_statistic`) on the test set.
* :func:`compare_cell` : no backdrop against every backdrop candidate of one cell, paired by
  seed, Holm-corrected over the cell's candidates (:func:`backdrop_repro.report.compare`),
  each judged by :func:`backdrop_repro.report.judge` with its minimum detectable effect, plus
  the dose-response of the task's mask (:func:`backdrop_repro.report.trend`, one pre-specified
  test) and, for the two-scale task, per-scale accuracy.
* :func:`study_family` : Holm over every comparison of the study (edge cells and two-scale task
  together: the study asks one question of all of them); the claims use it.
* :func:`write_summary` : all of it as ``results/<profile>/learnability.json`` (numbers only; the tables and
  Findings a reader sees are rendered by :mod:`backdrop_repro.render`).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ... import paths, profiles, report
from .plan import (PARTS, LearnSpec, map_cells, pick_twoscale, plan_edge, plan_map, plan_twoscale, read_records,
                   section, select_edge, twoscale_sizes)

__all__ = ["summarize_map", "compare_cell", "summarize_edge", "summarize_twoscale", "write_summary", "load_summary",
           "study_family", "twoscale_blocks", "at_edge", "twoscale_band"]


def _correct(rec: dict[str, Any], n_classes: int) -> tuple[int, int]:
    """Correct and total test predictions of a record (test labels interleave: label = index % classes)."""
    pred = rec["predictions"].get("test", "")
    return sum(int(c) == i % n_classes for i, c in enumerate(pred)), len(pred)


def _acc(recs: Sequence[tuple[LearnSpec, dict]], key: str = "test_accuracy") -> dict[int, float]:
    return {s.seed: r["final"][key] for s, r in recs if key in r["final"] and not r["final"].get("failed")}


def summarize_map(profile: "str | profiles.Profile") -> list[dict[str, Any]]:
    """One row per map cell, small scale first, ratio then training size ascending (module docstring).

    Row: ``scale``, ``lengths``, ``ratio``, ``per_class``, ``seeds``, ``cnn`` / ``spectral``
    (:func:`report.summary` of test accuracy, None without records), ``cnn_train`` (training
    accuracy at the scored epoch), ``cnn_pooled`` (:func:`report.above_chance`), ``oracle``
    (accuracy, exact, energy), ``band`` (mean CNN accuracy inside the edge band), ``edge``
    (chosen for the backdrop comparison).
    """
    p = profiles.get(profile)
    s = section(p)
    specs = plan_map(p)
    recs = read_records(specs)
    oracles = {sp.lengths: r["final"] for sp, r in recs if sp.model == "oracle"}
    cells = map_cells(p)
    edge = set(select_edge(cells, s.edge_band, s.edge_cells))
    rows = []
    for sp in specs:
        if sp.model != "cnn" or sp.seed != s.seeds[0]:      # one row per cell
            continue
        mine = [(x, r) for x, r in recs if x.cell == sp.cell]
        cnn = [(x, r) for x, r in mine if x.model == "cnn"]
        spec_ = [(x, r) for x, r in mine if x.model == "spectral"]
        row: dict[str, Any] = {"scale": sp.scale, "lengths": [list(ls) for ls in sp.lengths], "ratio": sp.ratio[0],
                               "per_class": sp.per_class, "seeds": sorted(_acc(cnn)), "cnn": None, "spectral": None,
                               "cnn_train": None, "cnn_pooled": None, "oracle": oracles.get(sp.lengths),
                               "edge": sp.cell in edge, "band": False}
        if _acc(cnn):
            row["cnn"] = report.summary(list(_acc(cnn).values()), bounds=report.UNIT)
            row["band"] = s.edge_band[0] <= row["cnn"]["mean"] <= s.edge_band[1]
            if _acc(cnn, "train_accuracy"):
                row["cnn_train"] = report.summary(list(_acc(cnn, "train_accuracy").values()), bounds=report.UNIT)
            c, t = map(sum, zip(*(_correct(r, 2) for _, r in cnn if not r["final"].get("failed"))))
            row["cnn_pooled"] = report.above_chance(c, t, 0.5)           # a description: the seeds share the test set
            row["cnn_learned"] = report.learned_over_seeds(_acc(cnn), 0.5, pooled=(c, t))
        if _acc(spec_):
            row["spectral"] = report.summary(list(_acc(spec_).values()), bounds=report.UNIT)
        rows.append(row)
    return rows


def compare_cell(recs: Sequence[tuple[LearnSpec, dict]], alpha: float = 0.05) -> dict[str, Any]:
    """No backdrop against each candidate among ``recs`` (one cell's CNN records), paired by seed,
    Holm over the candidates; each row with :func:`report.judge` (``m`` = number of candidates)
    and, for several classes, the per-scale means. ``trend``: the per-seed slope of the gain on
    the probability of the task's own mask (fine for small-scale tasks, coarse for large ones;
    both for the two-scale task, each its own trend), one pre-specified test each."""
    base = _acc([(s, r) for s, r in recs if s.config == "none"])
    groups: dict[str, list] = {}
    specs: dict[str, LearnSpec] = {}
    for s, r in recs:
        if s.config != "none":
            groups.setdefault(s.label, []).append((s, r))
            specs.setdefault(s.label, s)
    cands = {name: _acc(g) for name, g in groups.items()}
    rows = report.compare(base, cands, alpha=alpha)
    m = sum(r["decision"] is not None for r in rows)
    base_why = _unfinished_of([r for s, r in recs if s.config == "none"])
    for r in rows:
        why = [f"{tag}: {w}" for tag, w in (("no backdrop", base_why), (f"`{r['name']}`", _unfinished_of(
            [rec for _, rec in groups[r["name"]]]))) if w]
        r["unfinished"] = "; ".join(why) if why else None
        r["claim"] = report.judge(r, m=max(1, m), p_adjusted=r["p_holm"], family="this cell's candidates",
                                  unfinished=r["unfinished"]) if r["decision"] is not None else None
        sp = specs[r["name"]]
        r.update(config=sp.config, fine_prob=sp.fine_prob, coarse_prob=sp.coarse_prob,
                 summary=report.summary(list(cands[r["name"]].values()), bounds=report.UNIT) if cands[r["name"]] else None)
        if sp.n_classes > 2:
            sc = [rec["final"].get("test_scale_accuracy") for _, rec in groups[r["name"]]]
            r["scale_means"] = np.mean([v for v in sc if v], axis=0).tolist() if any(sc) else None
    out: dict[str, Any] = {"baseline": report.summary(list(base.values()), bounds=report.UNIT) if base else None,
                           "baseline_by_seed": base, "comparisons": rows, "m": m, "trend": {}}
    nb = [rec["final"].get("test_scale_accuracy") for s, rec in recs if s.config == "none"]
    if any(nb):
        out["baseline_scale_means"] = np.mean([v for v in nb if v], axis=0).tolist()
    for mask, attr in (("fine", "fine_prob"), ("coarse", "coarse_prob")):
        pts: dict[int, list] = {}
        for name, g in groups.items():
            if specs[name].config != mask:
                continue
            for seed, acc in _acc(g).items():
                if seed in base:
                    pts.setdefault(seed, []).append((getattr(specs[name], attr), acc - base[seed]))
        t = report.trend(pts)
        if t is not None:
            t.pop("slopes", None)
            why = [r["unfinished"] for r in rows if r.get("unfinished") and specs[r["name"]].config == mask]
            t["unfinished"] = why[0] if why else None
            out["trend"][mask] = t
    return out


def _unfinished_of(recs: Sequence[dict]) -> Optional[str]:
    """:func:`report.unfinished_reason` of a group of records (their stop reasons and final training loss)."""
    ok = [r for r in recs if not r["final"].get("failed")]
    reasons: dict[str, int] = {}
    for r in ok:
        if "stop_reason" in r["final"]:
            reasons[r["final"]["stop_reason"]] = reasons.get(r["final"]["stop_reason"], 0) + 1
    loss = [r["final"]["train_loss"] for r in ok if "train_loss" in r["final"]]
    return report.unfinished_reason(reasons, len(ok), float(np.mean(loss)) if loss else None)


def _cell_dict(key: tuple, cells: dict) -> dict[str, Any]:
    c = cells[key]
    return {"scale": key[0], "ratio": key[1][0], "per_class": key[2], "lengths": [list(ls) for ls in c["lengths"]],
            "map_mean": float(np.mean(list(c["cnn"].values())))}


def summarize_edge(profile: "str | profiles.Profile", cells: Optional[dict] = None) -> dict[str, Any]:
    """The edge part: ``band``, ``cells`` (each: the cell, its map accuracy and :func:`compare_cell`), chosen on the
    map's mean no-backdrop test accuracy only (never a backdrop run)."""
    p = profiles.get(profile)
    s = section(p)
    cells = map_cells(p) if cells is None else cells
    recs = read_records(plan_edge(p, cells))
    out = []
    for key in select_edge(cells, s.edge_band, s.edge_cells):
        mine = [(x, r) for x, r in recs if x.cell == key]
        out.append({**_cell_dict(key, cells), **compare_cell(mine)})
    return {"band": list(s.edge_band), "per_size": s.edge_cells, "seeds": list(s.edge_seeds), "cells": out}


def summarize_twoscale(profile: "str | profiles.Profile", cells: Optional[dict] = None) -> list[dict[str, Any]]:
    """The two-scale task, one block per training-set size (:func:`.plan.twoscale_sizes`): its small-
    and large-scale edge cells, ``per_class``, lengths, weights, the likelihood classifier and
    :func:`compare_cell`. Empty when the map has no edge cell at one of the scales."""
    p = profiles.get(profile)
    s = section(p)
    cells = map_cells(p) if cells is None else cells
    pick = pick_twoscale(p, cells)
    if pick is None:
        return []
    specs = plan_twoscale(p, cells)
    recs = read_records(specs)
    oracle = next((r["final"] for x, r in recs if x.model == "oracle"), None)
    out = []
    for n in twoscale_sizes(s, pick["per_class"]):
        nets = [(x, r) for x, r in recs if x.model == "cnn" and x.per_class == n]
        block = {"small": _cell_dict(pick["small"], cells), "large": _cell_dict(pick["large"], cells),
                 "per_class": n, "lengths": [list(ls) for ls in specs[0].lengths],
                 "power": list(specs[0].power), "oracle": oracle, **compare_cell(nets)}
        block["at_edge"] = at_edge(block, s.edge_band)
        out.append(block)
    return out


def twoscale_blocks(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary's two-scale blocks as a list (a summary written before several sizes held one dict)."""
    t = summary.get("twoscale")
    return [t] if isinstance(t, dict) and t else list(t or [])


def study_family(summary: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """Holm over every comparison of the study (each edge cell's and the two-scale task's candidates),
    in place: the study asks one question ("does backdrop move the edge?") of all of them, so a gain
    in one cell counts only after correcting for all. Each row keeps its cell's ``p_holm`` and gets
    ``p_study`` (Holm over the study), ``decision`` and ``claim`` from it (:func:`report.judge` with
    ``m`` = the study's number of comparisons); the block's ``m`` becomes that number.
    Returns ``{"m": number of comparisons, "alpha": alpha}``."""
    blocks = list(summary.get("edge", {}).get("cells", [])) + twoscale_blocks(summary)
    rows = [r for b in blocks for r in b["comparisons"] if r.get("decision") is not None]
    adj = report.holm([r.get("p") for r in rows])
    family = f"the learnability study's {len(rows)} comparisons, widened after the first edge cells were seen"
    for r, p in zip(rows, adj):
        r["p_study"] = p
        r["decision"] = report.decide(p, r["mean"], alpha)
        r["claim"] = report.judge(r, m=max(1, len(rows)), p_adjusted=p, alpha=alpha, family=family,
                                  fixed_in_advance=False, unfinished=r.get("unfinished"))
        r["status"] = r["claim"]["status"]
    for b in blocks:
        b["m_cell"], b["m"] = b.get("m", 0), len(rows)
    return {"m": len(rows), "alpha": alpha}


def write_summary(profile: "str | profiles.Profile", wall: float = 0.0) -> dict[str, Any]:
    """Summarize every record present and write ``results/<profile>/learnability.json``; returns it."""
    p = profiles.get(profile)
    s = section(p)
    cells = map_cells(p)
    out: dict[str, Any] = {"profile": p.name, "description": p.description, "parts": list(PARTS),
                           "size": s.data.size, "method": s.data.method, "test_per_class": s.data.test_per_class,
                           "map": summarize_map(p), "edge": summarize_edge(p, cells),
                           "twoscale": summarize_twoscale(p, cells), "wall_time_s": round(wall, 1)}
    out["family"] = study_family(out)
    paths.write_json(paths.results_dir(p.name) / "learnability.json", out)
    return out


def load_summary(profile: "str | profiles.Profile") -> dict[str, Any]:
    """Read ``results/<profile>/learnability.json`` (``FileNotFoundError`` naming the command)."""
    import json

    name = profiles.get(profile).name
    path = paths.results_dir(name) / "learnability.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `backdrop-repro learnability --profile {name}` first")
    return json.loads(path.read_text())


def twoscale_band(band: Sequence[float]) -> tuple[float, float]:
    """The edge ``band`` (2 classes, chance 0.5) rescaled to 4 classes (chance 0.25): the same share
    of the way from chance to 1. Example: ``twoscale_band((0.6, 0.9)) == (0.4, 0.85)`` (rounded)."""
    lo, hi = (min(1.0, max(0.0, 0.25 + (x - 0.5) * 1.5)) for x in band)
    return lo, hi


def at_edge(block: dict[str, Any], band: Sequence[float]) -> Optional[bool]:
    """Whether a two-scale block's no-backdrop 4-class accuracy lies in the rescaled ``band``
    (:func:`twoscale_band`); None without a baseline. Edge cells are at the edge by construction."""
    b = block.get("baseline")
    if not b:
        return None
    lo, hi = twoscale_band(band)
    return bool(lo <= b["mean"] <= hi)
