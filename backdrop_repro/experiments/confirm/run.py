"""Training the confirmatory study: check the pre-registration, then every run, task by task.

:func:`run_study` refuses to start when the pre-registration file is missing or disagrees with
the profile (:func:`.plan.check_preregistration`), then trains the runs without a record through
the learnability runner (:func:`~backdrop_repro.experiments.learnability.run.run_one`: the same
network, budget, checkpoints and record format), ``jobs`` at a time, seed-major within a task, the
tasks in the profile's order (the small-scale edge task, minutes, first). Every call resumes: runs
with a record are skipped, an interrupted run restarts from its checkpoint.

Example: ``run_study("smoke", progress=False)`` (after writing the smoke pre-registration).
"""
from __future__ import annotations

from typing import Any, Optional

from ... import profiles
from ..._shared import check_device, check_int
from ..gp_sweep.run import run_specs
from ..learnability.run import run_one
from ..learnability.plan import find_record
from .plan import check_preregistration, plan_runs, section

__all__ = ["run_study"]


def run_study(profile: "str | profiles.Profile", jobs: Optional[int] = None, device: Optional[str] = None,
              progress: bool = True, tasks: Optional[list[str]] = None) -> dict[str, Any]:
    """Train every planned run that has no record (``tasks``: a subset by name); returns the report's summary."""
    p = profiles.get(profile)
    c = section(p)
    names = [t.name for t in c.tasks]
    if tasks is not None and (not tasks or any(t not in names for t in tasks)):
        raise ValueError(f"tasks must be a non-empty subset of {names}, got {tasks!r}")
    jobs = check_int("jobs", p.learnability.jobs if jobs is None else jobs, low=1)
    check_device(device)
    pre = check_preregistration(p)
    specs = plan_runs(p, prereg=pre["sha256"])
    for name in names:
        if tasks is None or name in tasks:
            run_specs([s for s in specs if s.task == name], jobs=jobs, device=device, reuse=True, progress=progress,
                      desc=f"confirm {p.name}: {name}", run=run_one, find=find_record)
    from .report import write_summary

    return write_summary(p)
