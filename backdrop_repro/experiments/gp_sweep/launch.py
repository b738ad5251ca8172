"""Spread the GP sweep over a SLURM cluster through submitit (``backdrop-repro sweep --launcher submitit``).

The sweep's runs are independent and each is keyed by a hash of its configuration
(:attr:`~backdrop_repro.experiments.gp_sweep.RunSpec.key`), so the cluster needs no scheduler of
ours: the runs without a record are submitted as one SLURM job array (one run per array task,
or ``runs_per_job`` runs in turn), each task calls :func:`~backdrop_repro.experiments.gp_sweep.run_one`,
which writes ``results/<profile>/gp_runs/<key>.json`` atomically, and the submitting process
waits, then rebuilds the tables from every record present (:func:`collect`, the same as
``backdrop-repro sweep --collect-only``).

Order: the grid first; the studies (data-size curve, robustness row) depend on the grid's best
configuration on the validation split, so they are planned (``gp_sweep.plan_runs``) only after
the grid's records exist, and submitted as a second array.

Calling it again submits only what is missing: records already present are skipped, a crashed
or timed-out task is simply submitted again by the next call (its checkpoint in the data cache
lets it resume). Results from several calls, machines or clusters merge by key.

Needs ``pip install 'backdrop-repro[cluster]'`` (submitit) and, on a cluster, the data cache
(``BACKDROP_REPRO_DATA``) and the output root (``BACKDROP_REPRO_OUTPUT``) on a file system that
every node sees; the jobs inherit the submitting shell's environment.

Example
-------
>>> out = launch_sweep("paper", partition="gpu", gpus_per_job=1, time_min=240)   # doctest: +SKIP
>>> out["submitted"], out["failed"]                                             # doctest: +SKIP
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

__all__ = ["CLUSTERS", "LaunchError", "make_executor", "pending", "submit_specs", "launch_sweep", "collect"]

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
    """What one array task runs: each spec through ``gp_sweep.run_one``; returns the keys written.

    The spec's profile travels inside the spec; it is registered here when this process's table
    lacks it (a profile registered at run time in the submitting process).
    """
    import torch

    for s in specs:
        if profiles.PROFILES.get(s.profile.name) != s.profile:
            profiles.register(s.profile, overwrite=True)
    if threads and not any(s.profile.sweep.threads for s in specs):
        torch.set_num_threads(threads)
    return [gs.run_one(s, device=device, reuse=reuse, progress=False)["key"] for s in specs]


def pending(specs: Sequence[gs.RunSpec], reuse: bool = True) -> list[gs.RunSpec]:
    """The specs without a readable record (all of them when ``reuse`` is False), seed-major.

    Example: ``pending(gs.plan_grid("paper"))`` -> the grid runs still to train.
    """
    # gp_sweep.find_record also adopts a record of the same key from another profile's folder
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
        gs.load_data(s, progress=progress)
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


def collect(profile: str | profiles.Profile, wall: float = 0.0) -> dict[str, Any]:
    """The collect step: rebuild ``results/<profile>/gp_sweep.json`` / ``.csv`` from every record present.

    Example: ``collect("paper")["n_runs"]``.
    """
    from .report import write_tables  # noqa: F401 (gp_report never imports launch: no cycle)

    return write_tables(profiles.get(profile), wall=wall)


def launch_sweep(profile: str | profiles.Profile = "paper", configs: Optional[Sequence[str]] = None,
                 seeds: Optional[Sequence[int]] = None, studies: bool = True, reuse: bool = True,
                 device: Optional[str] = None, cluster: str = "slurm", folder: Optional[str | os.PathLike] = None,
                 partition: Optional[str] = None, gpus_per_job: int = 0, time_min: int = 240,
                 array_parallelism: int = 32, cpus_per_task: Optional[int] = None, mem_gb: Optional[int] = None,
                 runs_per_job: int = 1, progress: bool = True, poll_s: float = 10.0,
                 executor_factory: Optional[Callable[..., Any]] = None) -> dict[str, Any]:
    """Run the sweep as submitit job arrays (grid, then studies), then the collect step.

    ``folder`` (default ``<data cache>/submitit/<profile>``) holds submitit's pickles and the
    jobs' logs. ``executor_factory`` (default :func:`make_executor`) is called with the executor
    options. Returns the tables (:func:`collect`) plus ``"launch": {"submitted", "jobs", "failed"}``;
    raises :class:`LaunchError` (after the collect step) when a job failed, and then does not
    plan the studies.

    Example: ``launch_sweep("paper", partition="gpu", gpus_per_job=1)["launch"]["submitted"]``.
    """
    p = profiles.get(profile)
    t0 = time.perf_counter()
    folder = Path(folder) if folder is not None else paths.data_dir() / "submitit" / p.name
    factory = executor_factory or make_executor
    ex = factory(folder, cluster=cluster, partition=partition, gpus_per_job=gpus_per_job, time_min=time_min,
                 array_parallelism=array_parallelism, cpus_per_task=cpus_per_task, mem_gb=mem_gb,
                 name=f"backdrop-{p.name}")
    kw = dict(device=device, reuse=reuse, runs_per_job=runs_per_job, threads=cpus_per_task, progress=progress,
              poll_s=poll_s)
    total = {"submitted": 0, "jobs": 0, "failed": []}

    def add(out: dict[str, Any]) -> None:
        for k in total:
            total[k] += out[k]

    add(submit_specs(ex, gs.plan_grid(p, configs, seeds), desc=f"GP sweep {p.name}: grid", **kw))
    if studies and not total["failed"]:
        extra = [s for s in gs.plan_runs(p, configs, seeds) if s.study != "grid"]
        add(submit_specs(ex, extra, desc=f"GP sweep {p.name}: data size + robustness", **kw))
    sweep = collect(p, wall=time.perf_counter() - t0)
    sweep["launch"] = total
    if total["failed"]:
        raise LaunchError(f"{len(total['failed'])} of {total['jobs']} jobs failed (the tables hold the other runs; "
                          "run the same command again to resubmit only the missing runs): "
                          + " | ".join(total["failed"]))
    return sweep
