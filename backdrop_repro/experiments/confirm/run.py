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
import json
from pathlib import Path

from ...checks import check_device, check_int
from ...paths import check_writable
from .. import launchers
from .plan import PreregistrationError, check_preregistration, plan_runs, records_dir, section


def _ours(path: Path, sha: str) -> bool:
    """Whether the record at ``path`` carries the pre-registration hash ``sha`` (an unreadable record is left to the
    run core, which sets it aside and trains the run again)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return True
    return isinstance(rec, dict) and (rec.get("preregistration") or {}).get("sha256") == sha

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
    check_writable(records_dir(p), "the study's records folder")
    specs = plan_runs(p, prereg=pre["sha256"])
    foreign = [s.record_path for s in specs if s.record_path.exists() and not _ours(s.record_path, pre["sha256"])]
    if foreign:                      # never trained over, never counted as done: loud, before any work
        raise PreregistrationError(
            f"{foreign[0]}: made under another pre-registration (or none), {len(foreign)} such record(s) in "
            f"{foreign[0].parent}; restore the committed pre-registration, or move them aside and state the deviation")
    run = launchers.get(launcher, p, jobs=jobs, **submitit_options)
    for name in names:
        if tasks is None or name in tasks:
            out = run([s for s in specs if s.task == name], device=device, reuse=True, progress=progress,
                      desc=f"confirm {p.name}: {name}")
            if out["failed"]:
                raise launchers.LaunchError(f"{len(out['failed'])} of {out['jobs']} jobs failed (run the same command "
                                            "again to resubmit only the missing runs): " + " | ".join(out["failed"]))
    from .report import write_summary

    return write_summary(p)
