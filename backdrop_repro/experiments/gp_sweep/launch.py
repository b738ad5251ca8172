"""The submitit launcher of the GP sweep (``run_sweep(..., launcher="submitit")``,
``backdrop-repro sweep --launcher submitit``): SLURM job arrays, or submitit's local executor.

The sweep's runs are independent and each is keyed by a hash of its configuration
(:attr:`.plan.RunSpec.key`), so the cluster needs no scheduler of ours: the runs without a record
are submitted as one SLURM job array (one run per array task, or ``runs_per_job`` runs in turn),
each task calls :func:`.run.run_one`, which writes ``results/<profile>/gp_runs/<key>.json``
atomically, and the submitting process waits; :func:`.run.run_sweep` then rebuilds the tables
from every record present (:func:`.report.write_tables`, the same as
``backdrop-repro sweep --collect-only``).

Order: the grid first; the studies (data-size curve, robustness row) depend on the grid's best
configuration on the validation split, so they are planned (:func:`.plan.plan_runs`) only after
the grid's records exist, and submitted as a second array.

Calling it again submits only what is missing: records already present are skipped, a crashed
or timed-out task is simply submitted again by the next call (its checkpoint in the data cache
lets it resume). Results from several calls, machines or clusters merge by key.

Needs ``pip install 'backdrop-repro[cluster]'`` (submitit) and, on a cluster, the data cache
(``BACKDROP_REPRO_DATA``) and the output root (``BACKDROP_REPRO_OUTPUT``) on a file system that
every node sees; the jobs inherit the submitting shell's environment.

Example
-------
>>> from backdrop_repro.experiments.gp_sweep.run import run_sweep
>>> out = run_sweep("paper", launcher="submitit", partition="gpu", gpus_per_job=1)  # doctest: +SKIP
>>> out["launch"]["submitted"], out["launch"]["failed"]                           # doctest: +SKIP
(180, [])
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ... import paths, profiles
from ..._shared import check_int, tqdm_disable
from . import plan as gs
from .run import load_data, run_one

__all__ = ["CLUSTERS", "LaunchError", "make_executor", "executor_for", "pending", "submit_specs"]

#: where submitit runs the jobs: ``slurm`` (sbatch job arrays) or ``local`` (subprocesses on this
#: machine, submitit's LocalExecutor: the same code path without SLURM, used by the tests)
CLUSTERS = ("slurm", "local")


class LaunchError(RuntimeError):
    """Some submitted jobs failed; the message names the runs and their log files."""


def make_executor(folder: str | os.PathLike, cluster: str = "slurm", partition: Optional[str] = None,
                  gpus_per_job: int = 0, time_min: int = 240, array_parallelism: int = 32,
                  cpus_per_task: Optional[int] = None, mem_gb: Optional[int] = None,
                  name: str = "backdrop-sweep") -> Any:
    """A configured ``submitit.AutoExecutor`` writing its logs and pickles to ``folder``.

    ``cluster`` is one of :data:`CLUSTERS`; ``slurm`` needs ``sbatch`` on the PATH.
    Example: ``ex = make_executor("/scratch/logs", partition="gpu", gpus_per_job=1)``.
    """
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {CLUSTERS}, got {cluster!r}")
    check_int("gpus_per_job", gpus_per_job, low=0)
    check_int("time_min", time_min, low=1)
    check_int("array_parallelism", array_parallelism, low=1)
    check_int("cpus_per_task", cpus_per_task, low=1, allow_none=True)
    check_int("mem_gb", mem_gb, low=1, allow_none=True)
    if partition is not None and (not isinstance(partition, str) or not partition):
        raise ValueError(f"partition must be a non-empty string or None, got {partition!r}")
    try:
        import submitit
    except ImportError as err:
        raise ValueError("launcher 'submitit' needs the submitit package: pip install 'backdrop-repro[cluster]' "
                         "(or submitit>=1.5)") from err
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("cluster 'slurm' needs sbatch on the PATH (not found); run on a SLURM login node, or use "
                         "cluster 'local' (submitit's local executor) or --launcher local")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
    params: dict[str, Any] = dict(name=name, timeout_min=time_min, gpus_per_node=gpus_per_job, nodes=1,
                                  tasks_per_node=1, slurm_array_parallelism=array_parallelism)
    if cpus_per_task is not None:
        params["cpus_per_task"] = cpus_per_task
    if mem_gb is not None:
        params["mem_gb"] = mem_gb
    if partition is not None:
        params["slurm_partition"] = partition
    ex.update_parameters(**params)
    return ex


def _run_shard(specs: Sequence[gs.RunSpec], device: Optional[str], reuse: bool,
               threads: Optional[int] = None) -> list[str]:
    """What one array task runs: each spec through :func:`.run.run_one`; returns the keys written.

    The spec's profile travels inside the spec (a resolved :class:`~backdrop_repro.profiles.Profile`), so
    this process needs no table entry for it (a profile registered at run time in the submitting process).
    """
    import torch

    if threads and not any(s.profile.sweep.threads for s in specs):
        torch.set_num_threads(threads)
    return [run_one(s, device=device, reuse=reuse, progress=False)["key"] for s in specs]


def pending(specs: Sequence[gs.RunSpec], reuse: bool = True) -> list[gs.RunSpec]:
    """The specs without a readable record (all of them when ``reuse`` is False), seed-major.

    Example: ``pending(gs.plan_grid("paper"))`` -> the grid runs still to train.
    """
    # plan.find_record also adopts a record of the same key from another profile's folder (records.adopt)
    todo = [s for s in specs if not (reuse and gs.find_record(s) is not None)]
    return sorted(todo, key=lambda s: s.seed)


def _wait(jobs: Sequence[Any], desc: str, progress: bool, poll_s: float) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="job", disable=tqdm_disable(progress), dynamic_ncols=True)
    done = 0
    try:
        while True:
            states = [j.done() for j in jobs]
            n = sum(states)
            if n > done:
                bar.update(n - done)
                done = n
            if n == len(jobs):
                return
            bar.set_postfix_str(f"{len(jobs) - n} queued or running")
            time.sleep(poll_s)
    finally:
        bar.close()


def submit_specs(executor: Any, specs: Sequence[gs.RunSpec], device: Optional[str] = None, reuse: bool = True,
                 runs_per_job: int = 1, threads: Optional[int] = None, progress: bool = True,
                 poll_s: float = 10.0, desc: str = "jobs") -> dict[str, Any]:
    """Submit the specs without a record as one job array and wait for it.

    Returns ``{"submitted": runs submitted, "jobs": array tasks, "failed": [one line per failed
    task: job id, run keys, log file, error]}``. Nothing is submitted when every spec has a record.
    Example: ``submit_specs(make_executor(folder, "local"), gs.plan_grid("smoke"))["submitted"]``.
    """
    check_int("runs_per_job", runs_per_job, low=1)
    todo = pending(specs, reuse)
    if not todo:
        return {"submitted": 0, "jobs": 0, "failed": []}
    for s in todo:      # build every dataset once, here, rather than in many jobs at once
        load_data(s, progress=progress)
    shards = [todo[i:i + runs_per_job] for i in range(0, len(todo), runs_per_job)]
    n = len(shards)
    jobs = executor.map_array(_run_shard, shards, [device] * n, [reuse] * n, [threads] * n)
    if progress:
        print(f"{desc}: submitted {len(todo)} runs as {n} jobs (first job id {jobs[0].job_id}); logs in "
              f"{executor.folder.parent}", file=sys.stderr, flush=True)
    _wait(jobs, desc, progress, poll_s)
    failed = []
    for job, shard in zip(jobs, shards):
        try:
            job.result()
        except Exception as err:  # noqa: BLE001 - a failed task is reported, the others still count
            last = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            failed.append(f"job {job.job_id} (runs {', '.join(s.key for s in shard)}): {last[:200]} "
                          f"-- log {job.paths.stderr}")
    return {"submitted": len(todo), "jobs": n, "failed": failed}


def executor_for(profile: profiles.Profile, device: Optional[str] = None, reuse: bool = True, progress: bool = True,
                 cluster: str = "slurm", folder: Optional[str | os.PathLike] = None, partition: Optional[str] = None,
                 gpus_per_job: int = 0, time_min: int = 240, array_parallelism: int = 32,
                 cpus_per_task: Optional[int] = None, mem_gb: Optional[int] = None, runs_per_job: int = 1,
                 poll_s: float = 10.0, executor_factory: Optional[Callable[..., Any]] = None
                 ) -> tuple[Any, dict[str, Any]]:
    """The executor of a submitit sweep of ``profile`` and the keywords of :func:`submit_specs`.

    ``folder`` (default ``<data cache>/submitit/<profile>``) holds submitit's pickles and the
    jobs' logs. ``executor_factory`` (default :func:`make_executor`) is called with the executor
    options. Used by :func:`.run.run_sweep` with ``launcher="submitit"``.
    Example: ``run_sweep("paper", launcher="submitit", partition="gpu", gpus_per_job=1)``.
    """
    folder = Path(folder) if folder is not None else paths.data_dir() / "submitit" / profile.name
    factory = executor_factory or make_executor
    ex = factory(folder, cluster=cluster, partition=partition, gpus_per_job=gpus_per_job, time_min=time_min,
                 array_parallelism=array_parallelism, cpus_per_task=cpus_per_task, mem_gb=mem_gb,
                 name=f"backdrop-{profile.name}")
    return ex, dict(device=device, reuse=reuse, runs_per_job=runs_per_job, threads=cpus_per_task, progress=progress,
                    poll_s=poll_s)
