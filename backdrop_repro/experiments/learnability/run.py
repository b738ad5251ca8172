"""Training the learnability map: the runs of :mod:`.plan` through the run core and a launcher.

:func:`run_one` (the run core's, :func:`..core.run_one`) trains one CNN or spectral-energy run or
scores the likelihood classifier on the task's test set, and writes its keyed record atomically;
:func:`run_part` runs one part through a launcher (:mod:`..launchers`: local processes by default,
or submitit; records already present are skipped, so every call resumes); :func:`run_all` runs the parts in priority order: the map at
every size but the largest, the map at the largest size, the edge (chosen from the map's
records), the two-scale task, then writes the summary (:func:`.report.write_summary`).

Example
-------
>>> summary = run_all("smoke", progress=False)                 # doctest: +SKIP
>>> summary["edge"]["cells"][0]["comparisons"][0]["claim"]     # doctest: +SKIP
"""
from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from ... import profiles
from .. import launchers
from ..core import build_model, run_one
from .plan import PARTS, LearnSpec, energy_statistic, plan_map, plan_part, section

__all__ = ["build_model", "run_one", "run_part", "run_all", "energy_statistic"]


def run_part(profile: "str | profiles.Profile", part: str, jobs: Optional[int] = None, reuse: bool = True,
             device: Optional[str] = None, progress: bool = True, per_class: Optional[Sequence[int]] = None,
             seeds: Optional[Sequence[int]] = None, launcher: "str | launchers.Launcher" = "local",
             **submitit_options: Any) -> list[LearnSpec]:
    """Run one of :data:`.plan.PARTS` (``per_class``/``seeds``: a subset of the map). The oracle runs
    (one per task, seconds) first here, the networks through the ``launcher`` (:func:`..launchers.get`:
    ``"local"``, ``jobs`` processes, default: the section's; ``"submitit"`` with ``submitit_options``; or a
    launcher object), seed-major. Returns the part's specs; a failed submitit task raises
    :class:`..launchers.LaunchError` (the next call resubmits it)."""
    p = profiles.get(profile)
    s = section(p)
    run = launchers.get(launcher, p, jobs=s.jobs if jobs is None else jobs, **submitit_options)
    specs = plan_map(p, per_class, seeds) if part == "map" else plan_part(p, part)
    for spec in specs:
        if spec.model == "oracle":
            run_one(spec, device=device, reuse=reuse, progress=progress)
    nets = [x for x in specs if x.model != "oracle"]
    out = run(nets, device=device, reuse=reuse, progress=progress, desc=f"learnability {p.name}: {part}")
    if out["failed"]:
        raise launchers.LaunchError(f"{len(out['failed'])} of {out['jobs']} jobs failed (run the same command again "
                                    "to resubmit only the missing runs): " + " | ".join(out["failed"]))
    return specs


def run_all(profile: "str | profiles.Profile", parts: Sequence[str] = PARTS, jobs: Optional[int] = None,
            reuse: bool = True, device: Optional[str] = None, progress: bool = True,
            launcher: "str | launchers.Launcher" = "local", **submitit_options: Any) -> dict[str, Any]:
    """Run ``parts`` in priority order (the map at every size but the largest first, then the largest;
    then the edge, then the two-scale task), then write and return :func:`.report.write_summary`."""
    from .report import write_summary

    p = profiles.get(profile)
    s = section(p)
    bad = [x for x in parts if x not in PARTS]
    if bad or not parts:
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {list(parts)!r}")
    t0 = time.perf_counter()
    if launcher != "local":                 # one executor for every part
        launcher = launchers.get(launcher, p, **submitit_options)
        submitit_options = {}
    if "map" in parts:
        sizes = sorted(s.per_class)
        for batch in ([sizes[:-1], sizes[-1:]] if len(sizes) > 1 else [sizes]):
            run_part(p, "map", jobs, reuse, device, progress, per_class=batch, launcher=launcher)
    for part in ("edge", "twoscale"):
        if part in parts:
            run_part(p, part, jobs, reuse, device, progress, launcher=launcher)
    return write_summary(p, wall=time.perf_counter() - t0)
