"""Training the confirmatory study: check the pre-registration, then every run, task by task.

:func:`run_study` refuses to start when the pre-registration file is missing or disagrees with
the profile (:func:`.plan.check_preregistration`), then trains the runs without a record through
the run core (:func:`..core.run_one`: the learnability study's network, budget, checkpoints and record
format) and a launcher (:mod:`..launchers`: ``jobs`` local processes by default, or submitit),
seed-major within a task, the tasks in the profile's order (the small-scale edge task, minutes, first). Every call resumes: runs
with a record are skipped, an interrupted run restarts from its checkpoint.

Example: ``run_study("smoke", progress=False)`` (after writing the smoke pre-registration).
"""
from __future__ import annotations

from typing import Any, Optional

from ... import profiles
from ..._shared import check_device, check_int
from .. import launchers
from .plan import check_preregistration, plan_runs, section

__all__ = ["run_study"]


def run_study(profile: "str | profiles.Profile", jobs: Optional[int] = None, device: Optional[str] = None,
              progress: bool = True, tasks: Optional[list[str]] = None, launcher: "str | launchers.Launcher" = "local",
              **submitit_options: Any) -> dict[str, Any]:
    """Train every planned run that has no record (``tasks``: a subset by name) through ``launcher``
    (:func:`..launchers.get`); returns the report's summary. A failed submitit task raises
    :class:`..launchers.LaunchError` (the next call resubmits it)."""
    p = profiles.get(profile)
    c = section(p)
    names = [t.name for t in c.tasks]
    if tasks is not None and (not tasks or any(t not in names for t in tasks)):
        raise ValueError(f"tasks must be a non-empty subset of {names}, got {tasks!r}")
    jobs = check_int("jobs", p.learnability.jobs if jobs is None else jobs, low=1)
    check_device(device)
    pre = check_preregistration(p)
    run = launchers.get(launcher, p, jobs=jobs, **submitit_options)
    specs = plan_runs(p, prereg=pre["sha256"])
    for name in names:
        if tasks is None or name in tasks:
            out = run([s for s in specs if s.task == name], device=device, reuse=True, progress=progress,
                      desc=f"confirm {p.name}: {name}")
            if out["failed"]:
                raise launchers.LaunchError(f"{len(out['failed'])} of {out['jobs']} jobs failed (run the same command "
                                            "again to resubmit only the missing runs): " + " | ".join(out["failed"]))
    from .report import write_summary

    return write_summary(p)
