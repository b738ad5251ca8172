"""Choices made after seeing data, per study, generated from the committed results where possible.

:func:`items` returns one dict per disclosure (``study``, ``choice``, ``seen``, ``consequence``);
every number in them is read from ``results/*/*.json`` (the facts that no record holds, such as
which seeds formed a pilot, are stated as such). :func:`markdown` renders them; the README's
disclosures block and ``docs/disclosures.md`` are written by ``python -m backdrop_repro.glance``.

Example: ``[d["study"] for d in items()]`` starts with ``'replication'`` in this checkout.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from . import paths, report

__all__ = ["items", "markdown", "PILOT_SEEDS"]

#: the seeds of the 4-seed pilot of the learnability two-scale task at 100/class, reused in its 10 seeds
#: (a fact of the study's history, stated in its notebook; no record marks a run as a pilot run)
PILOT_SEEDS = (0, 1, 2, 3)


def _load(profile: str, name: str) -> Optional[dict]:
    path = paths.output_root() / "results" / profile / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _replication(out: list[dict[str, Any]]) -> None:
    rep, sc = _load("replication", "gp_sweep"), _load("scaled", "gp_sweep")
    if not rep or not sc:
        return
    picked = "fine 0.9 + coarse 0.95"
    grid = [r for r in sc["summary"] if r["study"] == "grid" and r["config"] != "none"]
    comps = {c["name"]: c for c in sc["verdict"]["comparisons"]}
    if picked not in comps or not grid:
        return
    by_test = sorted(comps, key=lambda n: -comps[n]["mean"])
    by_val = sorted((r["label"] for r in grid if r.get("val_accuracy")), key=lambda n: -next(
        r["val_accuracy"]["mean"] for r in grid if r["label"] == n))
    out.append({"study": "replication",
                "choice": f"`{picked}` fixed in advance for the confirmatory replication as “the exploratory grid's "
                          "largest gain”",
                "seen": f"picked from the `scaled` grid's paired test-accuracy gains (there it ranks {by_test.index(picked) + 1} "
                        f"of {len(by_test)}, {report.fmt_ci(comps[picked])}; `{by_test[0]}` "
                        f"{report.fmt_ci(comps[by_test[0]])}); on validation accuracy it ranks "
                        f"{by_val.index(picked) + 1 if picked in by_val else '—'} of {len(by_val)}",
                "consequence": "the choice used test data of an earlier study; the replication's result for this "
                               "setting is not free of that selection"})
    a, b = rep["settings"]["data"], sc["settings"]["data"]
    keys = ("size", "scales", "power", "method", "test_per_class", "test_seed")
    if all(a.get(k) == b.get(k) for k in keys):
        n_test = a["test_per_class"] * len(a["scales"][0]) * len(a["scales"][1])
        out.append({"study": "replication",
                    "choice": "the replication is scored on the same test set as the exploratory grid",
                    "seen": f"both profiles draw their {n_test:,} test images with test seed {a['test_seed']} "
                            f"({a['size']}², {a['method']})",
                    "consequence": "the setting chosen on that test set is confirmed on it: a fresh test set is "
                                   "needed for a confirmation free of the choice"})


def _learnability(out: list[dict[str, Any]]) -> None:
    d = _load("learnability", "learnability")
    if not d:
        return
    fam = d.get("family", {})
    out.append({"study": "learnability",
                "choice": f"Holm over the whole study ({fam.get('m', '?')} comparisons: every edge cell and the "
                          "two-scale task) instead of within each cell",
                "seen": "adopted after the first three edge cells had been seen (stated in the study's notebook)",
                "consequence": "the family is wider (more conservative) than the one first planned; no comparison "
                               "in the study was fixed in advance"})
    blocks = d.get("twoscale") or []
    blocks = [blocks] if isinstance(blocks, dict) else blocks
    sizes = sorted(t["per_class"] for t in blocks)
    for t in blocks:
        if t["per_class"] == max(sizes) and len(sizes) > 1:
            by = {int(k): v for k, v in t.get("baseline_by_seed", {}).items()}
            pilot = [by[s] for s in PILOT_SEEDS if s in by]
            rest = [v for s, v in by.items() if s not in PILOT_SEEDS]
            if pilot and rest:
                out.append({"study": "learnability",
                            "choice": f"the two-scale task's {t['per_class']}/class size added after a "
                                      f"{len(pilot)}-seed pilot, whose seeds are reused among its {len(by)} seeds",
                            "seen": f"the pilot's no-backdrop 4-class accuracy (seeds {PILOT_SEEDS[0]}–{PILOT_SEEDS[-1]}) "
                                    f"{sum(pilot) / len(pilot):.3f} against {sum(rest) / len(rest):.3f} on the other "
                                    f"{len(rest)} seeds",
                            "consequence": "the size was chosen on the pilot's outcome and the pilot runs count in the "
                                           "comparison: exploratory"})


def _nondecomposable(out: list[dict[str, Any]]) -> None:
    if not _load("scaled", "nondecomposable"):
        return
    out.append({"study": "non-decomposable",
                "choice": f"margin of relevance ±{report.MARGIN:g} test AUC (the package's accuracy margin)",
                "seen": "adopted when the claim grammar was applied to this experiment, after its results were seen",
                "consequence": "the relevance statements of the AUC comparisons rest on a margin chosen late"})


def _confirm(out: list[dict[str, Any]]) -> None:
    c = _load("confirm", "confirm")
    if not c:
        return
    tasks = ", ".join(t["name"] for t in c["design"]["tasks"])
    out.append({"study": "confirm",
                "choice": f"its two tasks ({tasks}) and their sizes, taken from the exploratory learnability study, "
                          "whose edge cells were picked on the no-backdrop *test* accuracy there; its seeds sized from "
                          "that study's paired SDs",
                "seen": "the learnability results, including the backdrop comparisons, were known when the "
                        "pre-registration was written",
                "consequence": "the tasks are where earlier data suggested an effect could show; the confirmation "
                               "itself uses fresh run seeds, fresh data seeds and a never-scored test set"})
    out.append({"study": "confirm",
                "choice": "the claim grammar that words its answers was rewritten after its pre-registration was "
                          "committed (before any of its results was read)",
                "seen": "no result of this study",
                "consequence": "the report applies both the grammar and the pre-registration's own words and lists "
                               + (f"{len(c.get('deviations', []))} disagreement(s)" if c.get("status") == "complete"
                                  else "any disagreement once the study is complete")})


def items() -> list[dict[str, Any]]:
    """Every disclosed choice, per study (see the module docstring)."""
    out: list[dict[str, Any]] = []
    _replication(out)
    _learnability(out)
    _nondecomposable(out)
    _confirm(out)
    out.append({"study": "all", "choice": "the claim grammar (`docs/claims.md`: statuses, the margin test, TOST at "
                                          "α/2, the unfinished rule, learning decided over seeds)",
                "seen": "written after every committed result had been seen",
                "consequence": "the statuses re-word committed results by one rule; they were not pre-registered"})
    return out


def markdown() -> str:
    """The disclosures as markdown bullets (one per choice)."""
    return "\n".join(f"- **{d['study']}**: {d['choice']}. Seen: {d['seen']}. Consequence: {d['consequence']}."
                     for d in items())
