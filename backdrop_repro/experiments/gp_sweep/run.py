"""Training the GP sweep: one runner, the launcher a parameter (local processes or submitit).

:func:`run_sweep` trains the grid, then (``studies``) the data-size and robustness runs planned
from the grid's records (:func:`.plan.plan_runs`), scores the likelihood classifier on the test
sets the tables quote (:func:`write_references`: keyed records ``results/<profile>/gp_reference/<key>.json``),
and ends with the collect step (:func:`.report.write_tables`, which only reads records). Where the runs train is the
``launcher``: ``"local"`` (this machine, ``jobs`` processes with one thread each, faster than
one run with two threads), ``"submitit"`` (SLURM job arrays) or a launcher object (:mod:`..launchers`).
Either way every run goes through the run core's :func:`run_one` (:mod:`..core`), which writes its keyed
record atomically, so runs already recorded are skipped and results of several calls or machines merge by key.

Parameter path from the profile to the masks: ``profiles`` → :func:`.plan.plan_grid`
(``RunSpec.fine_prob``/``coarse_prob``) → :func:`..core.run_one` → :func:`..core.build_model` →
:class:`~backdrop_repro.models.TwoScaleCNN` → :class:`~backdrop_repro.masking.BackdropMask`.

Example
-------
>>> sweep = run_sweep("smoke", progress=False)                     # doctest: +SKIP
>>> [c["status"] for c in sweep["verdict"]["comparisons"]]         # doctest: +SKIP
"""
from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from ... import paths, profiles
from ...checks import check_device, check_members
from .. import launchers
from ..core import build_model, load_data, run_one, scale_metrics
from .plan import ReferenceSpec, RunSpec, collect, plan_grid, plan_runs, reference_specs
from .report import write_tables

__all__ = ["LAUNCHERS", "run_sweep", "run_one", "build_model", "load_data", "scale_metrics", "score_reference",
           "write_references"]

#: where the runs train: this machine (processes) or a cluster through submitit (:mod:`..launchers`)
LAUNCHERS = launchers.LAUNCHERS


def score_reference(spec: ReferenceSpec, progress: bool = False) -> dict[str, Any]:
    """Score the likelihood classifier (:data:`.plan.REFERENCE_CLASSIFIER`) on ``spec``'s test set through
    the run core (:func:`..core.run_one`, which writes its record to ``spec.record_path`` atomically) and
    return the record. ``final``: ``test_accuracy``, ``test_scale_accuracy`` (per scale, smallest first,
    as in :func:`scale_metrics`), ``method``, ``exact`` (the exact likelihood of the data, else an
    approximation, not a ceiling); ``predictions["test"]``: one class digit per test image.
    """
    return run_one(spec, reuse=False, progress=progress)


def write_references(profile: "str | profiles.Profile", progress: bool = False) -> dict[str, dict[str, Any]]:
    """The records of the references the profile's tables quote (:func:`.plan.reference_specs` of the
    records present): each read from its profile's folder, else adopted from another profile's
    (:func:`backdrop_repro.records.adopt`: the same test set and classifier have the same key), else
    scored (:func:`score_reference`). Returns ``{"main": record, ["robustness": record]}``; the
    report reads them (:func:`.plan.read_reference`)."""
    p = profiles.get(profile)
    return {name: run_one(spec, progress=progress) for name, spec in reference_specs(p, collect(p)).items()}


def run_sweep(profile: "str | profiles.Profile" = profiles.DEFAULT, configs: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None, studies: bool = True, jobs: Optional[int] = None,
              reuse: bool = True, device: Optional[str] = None, progress: bool = True, launcher: "str | launchers.Launcher" = "local",
              **submitit_options: Any) -> dict[str, Any]:
    """Run the grid, then (``studies``) the data-size and robustness runs; write and return the tables.

    ``reuse=False`` retrains every run from scratch. ``launcher`` is one of :data:`LAUNCHERS` or a
    launcher object (:func:`..launchers.get`): ``"local"`` runs ``jobs`` (default: the profile's) in
    parallel here; ``"submitit"`` submits the runs without a record as job arrays (``submitit_options``:
    those of :meth:`..launchers.Submitit.for_profile`) and, like any launcher but the local one, adds
    ``"launch": {"submitted", "jobs", "failed"}`` to the result; a failed job raises
    :class:`..launchers.LaunchError` after the tables are written, and then the studies are not planned. The likelihood classifier's references are recorded next
    (:func:`write_references`), then the tables are rebuilt from every record present for the profile's
    full plan, so a subset call (``configs``/``seeds``) adds records and never drops any.
    Returns :func:`.report.write_tables`.
    """
    p = profiles.get(profile)
    check_device(device)                                       # every input checked before any work
    if seeds is not None:
        check_members("seeds", seeds, sorted(set(p.sweep.seeds) | set(p.sweep.study_seeds or ())),
                      f"profile {p.name!r} tables only its own seeds: register a profile with more seeds")
    run = launchers.get(launcher, p, jobs=p.sweep.jobs if jobs is None else jobs, **submitit_options)
    t0 = time.perf_counter()
    paths.clean_package_orphans(p.name)
    total: dict[str, Any] = {"submitted": 0, "jobs": 0, "failed": []}

    def launch(specs: list[RunSpec], desc: str) -> None:
        out = run(specs, device=device, reuse=reuse, progress=progress, desc=desc)
        for k in total:
            total[k] += out[k]

    launch(plan_grid(p, configs, seeds), f"GP sweep {p.name}: grid")
    if studies and not total["failed"]:
        extra = [s for s in plan_runs(p, configs, seeds) if s.study != "grid"]
        launch(extra, f"GP sweep {p.name}: data size + robustness")
    write_references(p, progress=progress)
    sweep = write_tables(p, wall=time.perf_counter() - t0)
    if launcher != "local":
        sweep["launch"] = total
        if total["failed"]:
            raise launchers.LaunchError(f"{len(total['failed'])} of {total['jobs']} jobs failed (the tables hold the other "
                                     "runs; run the same command again to resubmit only the missing runs): "
                                     + " | ".join(total["failed"]))
    return sweep
