"""Where runs train: two launchers behind one signature, above the run core.

A launcher is called as ``launcher(specs, device=None, reuse=True, progress=True, desc="runs")`` and
runs every spec without a record (:func:`.core.pending`) through :func:`.core.run_one`, which writes
the spec's keyed record atomically: so a launcher needs no scheduler state of its own, every call
resumes, and the results of several calls, launchers or machines merge by key. It returns
``{"submitted": runs started, "jobs": processes or array tasks, "failed": [one line per failed task]}``
(a launcher may add keys).

* :class:`Local` (``"local"``): ``jobs`` spawned processes on this machine, one torch thread each unless
  the spec says otherwise (faster than one run with two threads); a failing run raises.
* :class:`Submitit` (``"submitit"``): SLURM job arrays (or submitit's local executor) through
  :func:`make_executor`; needs ``pip install 'backdrop-repro[cluster]'``, and on a cluster the data
  cache (``BACKDROP_REPRO_DATA``) and output root (``BACKDROP_REPRO_OUTPUT``) on a file system every
  node sees, and SLURM's job accounting (``sacct``, checked first). A task at its time limit is requeued
  and resumes its run from the run's checkpoint; a failed task is listed in ``failed`` (its state and
  reason); the next call submits it again. A Ctrl-C cancels the arrays the call submitted.

Every worker process comes from one place (:func:`worker_pool`, :func:`spawn`: the ``spawn`` start
method and :func:`die_with_parent`, so a ``kill -9`` of the caller leaves no worker behind).
:func:`get` turns a launcher's name (the ``--launcher`` flag) and its options into one; the GP sweep,
the learnability map and the confirm study all take ``launcher=``.

Example
-------
>>> from backdrop_repro.experiments.gp_sweep.plan import plan_grid
>>> launch = get("local", jobs=2)
>>> launch(plan_grid("smoke"), desc="GP sweep smoke")            # doctest: +SKIP
{'submitted': 24, 'jobs': 24, 'failed': []}
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

from .. import paths, profiles
from ..checks import check_device, check_int, tqdm_disable
from . import core

try:                                   # the cluster extra (``pip install 'backdrop-repro[cluster]'``)
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:                    # pragma: no cover - submitit calls only ``checkpoint``, so the class still works
    _Checkpointable = object

__all__ = ["Launcher", "LAUNCHERS", "CLUSTERS", "LaunchError", "Local", "Submitit", "get", "make_executor",
           "worker_pool", "spawn", "die_with_parent", "PARENT_CHECK_S", "CLUSTER_DEFAULTS", "add_cli_arguments",
           "check_cli_args", "cli_options", "cli_flag", "RunShard", "check_accounting", "signal_delay_s", "MAX_REQUEUES",
           "SHORT_TIME_MIN"]

#: the launchers a command line can name (the GPU window's deadline pool is scripts/gpu_window.py's own)
LAUNCHERS = ("local", "submitit")
#: where submitit runs the jobs: ``slurm`` (sbatch job arrays) or ``local`` (subprocesses on this
#: machine, submitit's LocalExecutor: the same code path without SLURM, used by the tests)
CLUSTERS = ("slurm", "local")


class Launcher(Protocol):
    """The one signature of every launcher (module docstring)."""

    def __call__(self, specs: Sequence[core.Spec], device: Optional[str] = None, reuse: bool = True,
                 progress: bool = True, desc: str = "runs") -> dict[str, Any]: ...


class LaunchError(RuntimeError):
    """Some submitted jobs failed; the message names the runs and their log files."""


# --------------------------------------------------------------------------------------------
# worker processes: one start method, one parent watch
# --------------------------------------------------------------------------------------------
#: seconds between a worker's checks that its parent is still alive
PARENT_CHECK_S = 1.0
_CONTEXT = multiprocessing.get_context("spawn")


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when ``parent`` dies (a SIGKILL of the caller leaves no
    worker, and so no resource tracker, behind). On Linux the kernel sends SIGKILL at the parent's
    death (``PR_SET_PDEATHSIG``); everywhere a daemon thread polls ``os.getppid()``."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(PARENT_CHECK_S)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes that end when this process dies (:func:`die_with_parent`)."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=_CONTEXT, initializer=die_with_parent,
                               initargs=(os.getpid(),))


def spawn(target: Callable[..., None], *args: Any) -> Any:
    """One started worker process running ``target(*args, parent_pid)`` (the target calls
    :func:`die_with_parent` with the last argument); returns the process (the GPU window's workers)."""
    proc = _CONTEXT.Process(target=target, args=(*args, os.getpid()), daemon=True)
    proc.start()
    return proc


def queue_pair() -> tuple[Any, Any]:
    """A task queue and a result queue of the workers' start method."""
    return _CONTEXT.Queue(), _CONTEXT.Queue()


def _submit_quietly(pool: ProcessPoolExecutor, calls: list) -> dict:
    """Submit ``(tag, (fn, *args))`` calls with SIGINT ignored while the pool spawns its workers: they
    inherit the ignored signal through ``exec``, so a Ctrl-C is the parent's alone (one line, no traceback
    from every worker still importing); the parent then cancels the pool and its workers die with it."""
    import signal

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return {pool.submit(*call): tag for tag, call in calls}
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


# --------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------
def fmt_s(s: float) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"`` or ``"42 s"``."""
    s = int(round(s))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else (f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s")


class Lines:
    """Progress where no bar can be drawn (output redirected to a log): one line per finished run
    with runs done / total, the time so far and the projected time left (at the rate so far)."""

    def __init__(self, total: int, desc: str, stream: Any = None, unit: str = "runs"):
        self.total, self.desc, self.done, self.t0, self.unit = total, desc, 0, time.perf_counter(), unit
        self.stream = stream if stream is not None else sys.stderr

    def update(self, label: str = "", n: int = 1) -> None:
        self.done += n
        took = time.perf_counter() - self.t0
        left = took / self.done * (self.total - self.done)
        print(f"[{self.desc}] {self.done}/{self.total} {self.unit} done{f' ({label})' if label else ''}, "
              f"{fmt_s(took)} so far, ≈ {fmt_s(left)} left", file=self.stream, flush=True)

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, progress: bool, unit: str = "runs") -> Any:
    """tqdm's bar on a terminal, :class:`Lines` on any other stream, nothing when switched off."""
    from tqdm import tqdm

    if tqdm_disable(progress) is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return Lines(total, desc, unit=unit)
    return tqdm(total=total, desc=desc, unit=unit.rstrip("s"), disable=tqdm_disable(progress), dynamic_ncols=True)


def _tick(bar: Any, spec: core.Spec) -> None:
    bar.update(f"{spec.label}, seed {spec.seed}") if isinstance(bar, Lines) else bar.update()


def _build_data(specs: Sequence[core.Spec], progress: bool) -> None:
    for s in specs:                     # build (or verify) every dataset once, here, before any worker starts
        core.load_data(s, progress=progress)


# --------------------------------------------------------------------------------------------
# local processes
# --------------------------------------------------------------------------------------------
def _local_worker(spec: core.Spec, device: Optional[str], reuse: bool) -> str:
    import torch

    torch.set_num_threads(spec.threads or 1)
    core.run_one(spec, device=device, reuse=reuse, progress=False)
    return spec.key


class Local:
    """``jobs`` processes on this machine (``jobs=1``: in this process). Example: ``Local(2)(specs)``."""

    name = "local"

    def __init__(self, jobs: int = 1):
        self.jobs = check_int("jobs", jobs, low=1)

    def __call__(self, specs: Sequence[core.Spec], device: Optional[str] = None, reuse: bool = True,
                 progress: bool = True, desc: str = "runs") -> dict[str, Any]:
        check_device(device)                # before any dataset is built
        todo = core.pending(specs, reuse)
        out = {"submitted": len(todo), "jobs": len(todo), "failed": []}
        if not todo:
            return out
        _build_data(todo, progress)
        bar = progress_bar(len(todo), desc, progress)
        try:
            if self.jobs == 1 or len(todo) == 1:
                for s in todo:
                    core.run_one(s, device=device, reuse=reuse)
                    _tick(bar, s)
                return out
            with worker_pool(min(self.jobs, len(todo))) as pool:
                futures = _submit_quietly(pool, [(s, (_local_worker, s, device, reuse)) for s in todo])
                try:
                    for f in as_completed(futures):
                        f.result()
                        _tick(bar, futures[f])
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        finally:
            bar.close()
        return out


# --------------------------------------------------------------------------------------------
# submitit
# --------------------------------------------------------------------------------------------
#: times a task cut by its time limit is requeued (submitit's ``max_num_timeout``; its default is 3): each
#: requeue resumes the run from its checkpoint, so a run longer than ``--time-min`` finishes in several
MAX_REQUEUES = 10
#: a ``--time-min`` under this many minutes warns: a task then lives only seconds before SLURM's signal
SHORT_TIME_MIN = 2


def signal_delay_s(time_min: int) -> int:
    """Seconds before the time limit at which SLURM signals a task to requeue itself: submitit's 90 s, less for
    limits under 6 minutes (a quarter of the limit, at least 15 s), so a short task still trains before it.
    SLURM checks limits about every 30 s and may signal that much earlier. Example: ``signal_delay_s(1) == 15``."""
    return max(15, min(90, time_min * 60 // 4))


def check_accounting(timeout_s: float = 60.0) -> None:
    """Raise ``ValueError`` (one line: what is missing, how to get it) unless ``sacct`` answers: submitit reads
    every task's state from SLURM's accounting, and without it a cancelled, killed or timed-out task is never
    seen as finished (the wait never ends). Example: ``check_accounting()`` on a login node -> None."""
    how = ("ask the cluster's administrators for job accounting (slurmdbd, AccountingStorageType="
           "accounting_storage/slurmdbd); on a machine of your own, scripts/slurm-single-node.sh starts a "
           "single-node cluster with it")
    if shutil.which("sacct") is None:
        raise ValueError(f"cluster 'slurm' needs job accounting, and sacct is not on the PATH: {how}")
    try:
        p = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations", "--starttime", "now",
                            "--format", "JobID"], capture_output=True, text=True, timeout=timeout_s)
        err = "" if p.returncode == 0 else ((p.stderr or p.stdout).strip().splitlines() or [f"exit {p.returncode}"])[0]
    except subprocess.TimeoutExpired:
        err = f"no answer in {timeout_s:.0f} s"
    if err:
        raise ValueError(f"cluster 'slurm' needs job accounting (sacct: {err[:160]}): submitit reads each task's "
                         f"state from it, and without it a cancelled or killed task is never seen as finished; {how}")


def make_executor(folder: str | os.PathLike, cluster: str = "slurm", partition: Optional[str] = None,
                  gpus_per_job: int = 0, time_min: int = 240, array_parallelism: int = 32,
                  cpus_per_task: Optional[int] = None, mem_gb: Optional[int] = None,
                  name: str = "backdrop-sweep") -> Any:
    """A configured ``submitit.AutoExecutor`` writing its logs and pickles to ``folder``.

    ``cluster`` is one of :data:`CLUSTERS`; ``slurm`` needs ``sbatch`` on the PATH and job accounting
    (:func:`check_accounting`), both checked here, before anything is submitted. A task near its time limit
    (:func:`signal_delay_s`) is requeued up to :data:`MAX_REQUEUES` times and resumes its run from the run's
    checkpoint (:class:`RunShard`); a ``time_min`` under :data:`SHORT_TIME_MIN` warns (a task then trains
    under a minute between requeues).
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
    if cluster == "slurm":
        check_accounting()
    if time_min < SHORT_TIME_MIN:
        import warnings

        warnings.warn(f"--time-min {time_min} is under {SHORT_TIME_MIN} minutes: SLURM signals a task to requeue "
                      f"about {signal_delay_s(time_min)} s (up to 30 s more) before its limit, so each task trains "
                      "only seconds before its run resumes in the next; give a run's length or more",
                      UserWarning, stacklevel=2)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster, slurm_max_num_timeout=MAX_REQUEUES)
    params: dict[str, Any] = dict(name=name, timeout_min=time_min, gpus_per_node=gpus_per_job, nodes=1,
                                  tasks_per_node=1, slurm_array_parallelism=array_parallelism,
                                  slurm_signal_delay_s=signal_delay_s(time_min))
    if cpus_per_task is not None:
        params["cpus_per_task"] = cpus_per_task
    if mem_gb is not None:
        params["mem_gb"] = mem_gb
    if partition is not None:
        params["slurm_partition"] = partition
    ex.update_parameters(**params)
    return ex


def run_shard(specs: Sequence[core.Spec], device: Optional[str], reuse: bool, threads: Optional[int] = None) -> list[str]:
    """What one array task runs: each spec through :func:`.core.run_one`; returns the keys written.

    The spec's profile travels inside the spec (a resolved :class:`~backdrop_repro.profiles.Profile`), so
    this process needs no table entry for it (a profile registered at run time in the submitting process).
    """
    return RunShard()(specs, device, reuse, threads)


class RunShard(_Checkpointable):
    """:func:`run_shard` as submitit's ``Checkpointable``: at SLURM's signal before the time limit,
    :meth:`checkpoint` resubmits this same call (the task is requeued) and the run in progress resumes from its
    own checkpoint file, written every epoch; the runs it already finished are skipped (their records).

    With ``reuse=False`` the runs are retrained: a run's old record is removed when it is requeued, so the
    requeued task resumes the new training rather than reading the record it replaces.
    Example: ``RunShard()(specs, "cpu", True)`` -> the keys written.
    """

    def __init__(self) -> None:
        self.started: list[str] = []        # keys this task began (with reuse=False: trained afresh)
        self.finished: list[str] = []       # keys this task recorded

    def __call__(self, specs: Sequence[core.Spec], device: Optional[str], reuse: bool,
                 threads: Optional[int] = None) -> list[str]:
        import torch

        if threads and not any(s.threads for s in specs):
            torch.set_num_threads(threads)
        for s in specs:
            if s.key not in self.finished:
                fresh = not reuse and s.key not in self.started
                self.started.append(s.key)
                core.run_one(s, device=device, reuse=not fresh, progress=False)
                self.finished.append(s.key)
        return [s.key for s in specs]

    def checkpoint(self, specs: Sequence[core.Spec], device: Optional[str], reuse: bool,
                   threads: Optional[int] = None) -> Any:
        """The same call, resubmitted (submitit calls this at the signal; the task is then requeued)."""
        from submitit.helpers import DelayedSubmission

        if not reuse:
            for s in specs:
                if s.key in self.started and s.key not in self.finished:
                    Path(s.record_path).unlink(missing_ok=True)
        return DelayedSubmission(self, specs, device, reuse, threads)


_UNFINISHED = ("PENDING", "RUNNING", "REQUEUED", "COMPLETING", "UNKNOWN", "READY", "PREEMPTED")


def _state(job: Any, slurm: bool, wait_s: float = 15.0) -> str:
    """The task's state; on SLURM its final one (``sacct`` asked again for up to ``wait_s``: a task that wrote
    its error is still ``RUNNING`` while its process exits)."""
    end = time.monotonic() + wait_s
    while True:
        try:
            state = str(job.state)
        except Exception:  # noqa: BLE001 - the state is a courtesy
            return "UNKNOWN"
        if not slurm or state.split(" ")[0] not in _UNFINISHED or time.monotonic() > end:
            return state
        time.sleep(1.0)
        type(job).watcher.update()


def _failure(job: Any, err: BaseException, slurm: bool = False) -> str:
    """Why a task failed, in a few words: SLURM's state (``CANCELLED by 0``, ``TIMEOUT``, ``FAILED``) and the
    exception's last line (``timed-out and not checkpointable``; a Python error raised by a run)."""
    state = _state(job, slurm)
    text = str(err).strip()
    parts = text.split("-" * 22)            # submitit's FailedJobError: the task's traceback between two rulers
    lines = [x.strip() for x in (parts[1] if len(parts) >= 3 else "").strip().splitlines() if x.strip()]
    if lines:
        reason = lines[-1]
    elif "has not produced any output" in text:
        reason = "the task ended without a result"
    else:
        reason = (text.splitlines() or [type(err).__name__])[-1]
    if "Job not requeued because:" in reason:
        reason = "not requeued: " + reason.split("Job not requeued because:", 1)[1].strip().rstrip(".")
    return f"state {state}: {reason[:200]}"


def _log_files(job: Any) -> list[str]:
    return [str(p) for p in (job.paths.stderr, job.paths.stdout) if Path(p).exists()]


def _logs(job: Any) -> str:
    """The task's log files that exist (none: the task never started)."""
    found = _log_files(job)
    return f"log {' and '.join(found)}" if found else "no log (the task never started)"


def _array_ids(jobs: Sequence[Any]) -> list[str]:
    return sorted({str(j.job_id).split("_")[0] for j in jobs})


def _cancel(jobs: Sequence[Any], slurm: bool) -> None:
    """Cancel the tasks not finished: one ``scancel`` of the arrays on SLURM, else each job (local executor)."""
    if slurm:
        subprocess.run(["scancel", *_array_ids(jobs)], capture_output=True, timeout=60, check=False)
        return
    for j in jobs:
        j.cancel(check=False)


def _wait(jobs: Sequence[Any], desc: str, progress: bool, poll_s: float, slurm: bool = False) -> None:
    """Until every task is done: a bar on a terminal, a line per finished task elsewhere (:class:`Lines`).
    On SLURM the tasks' states are read from ``sacct`` once per poll (submitit's own reading slows to once
    in 10 minutes, so a cancelled task would be seen only minutes later)."""
    bar = progress_bar(len(jobs), desc, progress, unit="jobs")
    done = 0
    try:
        while True:
            if slurm:
                type(jobs[0]).watcher.update()
            n = sum(j.done() for j in jobs)
            if n > done:
                if isinstance(bar, Lines):
                    bar.update(f"{len(jobs) - n} queued or running", n - done)
                else:
                    bar.update(n - done)
                done = n
            if n == len(jobs):
                return
            if not isinstance(bar, Lines):
                bar.set_postfix_str(f"{len(jobs) - n} queued or running")
            time.sleep(poll_s)
    finally:
        bar.close()


class Submitit:
    """Runs as one submitit job array per call (``runs_per_job`` runs in turn per array task, each task a
    :class:`RunShard`: requeued at its time limit, resuming its run), waiting for it. A Ctrl-C while waiting
    cancels the arrays this call submitted and says so in one line (then ``KeyboardInterrupt``: exit 130 at the
    command line). Build one from a profile and the ``--launcher submitit`` options with :meth:`for_profile`."""

    name = "submitit"

    def __init__(self, executor: Any, runs_per_job: int = 1, threads: Optional[int] = None, poll_s: float = 10.0):
        self.executor, self.threads, self.poll_s = executor, threads, poll_s
        self.runs_per_job = check_int("runs_per_job", runs_per_job, low=1)

    @classmethod
    def for_profile(cls, profile: profiles.Profile, cluster: str = "slurm", folder: Optional[str | os.PathLike] = None,
                    partition: Optional[str] = None, gpus_per_job: int = 0, time_min: int = 240,
                    array_parallelism: int = 32, cpus_per_task: Optional[int] = None, mem_gb: Optional[int] = None,
                    runs_per_job: int = 1, poll_s: float = 10.0,
                    executor_factory: Optional[Callable[..., Any]] = None) -> "Submitit":
        """``folder`` (default ``<data cache>/submitit/<profile>``) holds submitit's pickles and the jobs'
        logs; ``executor_factory`` (default :func:`make_executor`) is called with the executor options.
        Example: ``Submitit.for_profile(profiles.get("paper"), partition="gpu", gpus_per_job=1)``."""
        folder = Path(folder) if folder is not None else paths.data_dir() / "submitit" / profile.name
        ex = (executor_factory or make_executor)(
            folder, cluster=cluster, partition=partition, gpus_per_job=gpus_per_job, time_min=time_min,
            array_parallelism=array_parallelism, cpus_per_task=cpus_per_task, mem_gb=mem_gb,
            name=f"backdrop-{profile.name}")
        return cls(ex, runs_per_job=runs_per_job, threads=cpus_per_task, poll_s=poll_s)

    def __call__(self, specs: Sequence[core.Spec], device: Optional[str] = None, reuse: bool = True,
                 progress: bool = True, desc: str = "jobs") -> dict[str, Any]:
        check_device(device)
        todo = core.pending(specs, reuse)
        if not todo:
            return {"submitted": 0, "jobs": 0, "failed": []}
        _build_data(todo, progress)      # once, here, rather than in many jobs at once
        k = self.runs_per_job
        shards = [todo[i:i + k] for i in range(0, len(todo), k)]
        n = len(shards)
        jobs = self.executor.map_array(RunShard(), shards, [device] * n, [reuse] * n, [self.threads] * n)
        slurm = getattr(self.executor, "cluster", None) == "slurm"
        if progress:
            print(f"{desc}: submitted {len(todo)} runs as {n} jobs (first job id {jobs[0].job_id}); logs in "
                  f"{self.executor.folder.parent}", file=sys.stderr, flush=True)
        try:
            _wait(jobs, desc, progress, self.poll_s, slurm)
        except KeyboardInterrupt:
            left = [j for j in jobs if not j.done()]
            what = f"job arrays {', '.join(_array_ids(jobs))}" if slurm else f"{len(left)} jobs"
            try:
                if left:
                    _cancel(left, slurm)
                done = f"cancelled {what}"
            except (OSError, subprocess.SubprocessError) as err:
                done = f"could not cancel {what} ({err}; scancel them)"
            print(f"{desc}: interrupted: {done} ({len(left)} of {n} tasks not finished); the runs recorded "
                  "are kept, and the same command submits only the missing ones", file=sys.stderr, flush=True)
            raise
        failed = []
        for job, shard in zip(jobs, shards):
            if not _log_files(job) and hasattr(job, "_results_timeout_s"):
                job._results_timeout_s = 0      # never started (cancelled while queued): no result to wait 15 s for
            try:
                job.result()
            except Exception as err:  # noqa: BLE001 - a failed task is reported, the others still count
                failed.append(f"job {job.job_id} (runs {', '.join(s.key for s in shard)}): {_failure(job, err, slurm)} "
                              f"-- {_logs(job)}")
        return {"submitted": len(todo), "jobs": n, "failed": failed}


# --------------------------------------------------------------------------------------------
def get(launcher: "str | Launcher" = "local", profile: Optional[profiles.Profile] = None, jobs: int = 1,
        **options: Any) -> Launcher:
    """The launcher a name stands for: ``"local"`` (``Local(jobs)``; no options), ``"submitit"``
    (:meth:`Submitit.for_profile` of ``profile`` with ``options``); a launcher object passes through.
    Example: ``get("local", jobs=2).jobs == 2``."""
    if callable(launcher) and not isinstance(launcher, str):
        if options:
            raise TypeError(f"options {sorted(options)} are for launcher 'submitit', not an object")
        return launcher
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS} (or a launcher object), got {launcher!r}")
    if launcher == "local":
        if options:
            raise TypeError(f"options {sorted(options)} are for launcher 'submitit'")
        return Local(jobs)
    if profile is None:
        raise ValueError("launcher 'submitit' needs the profile (its folder and job names)")
    return Submitit.for_profile(profile, **options)


# --------------------------------------------------------------------------------------------
# the command line: one group of flags for every experiment's command
# --------------------------------------------------------------------------------------------
#: the flags of ``--launcher submitit`` (dest -> default); given with ``--launcher local``: an error
CLUSTER_DEFAULTS = {"cluster": "slurm", "partition": None, "gpus_per_job": 0, "time_min": 240,
                    "array_parallelism": 32, "cpus_per_task": None, "mem_gb": None, "runs_per_job": 1,
                    "slurm_folder": None}


def cli_flag(dest: str) -> str:
    """The flag of an argparse ``dest`` (``slurm_folder`` -> ``--slurm-folder``)."""
    return "--" + dest.replace("_", "-")


def add_cli_arguments(parser: Any) -> None:
    """Add the ``--launcher`` group (``local`` | ``submitit`` and submitit's options) to a command's parser."""
    g = parser.add_argument_group("cluster (--launcher submitit; needs pip install 'backdrop-repro[cluster]')")
    g.add_argument("--launcher", choices=LAUNCHERS, default="local",
                   help="local: this machine (--jobs processes); submitit: SLURM job arrays")
    g.add_argument("--cluster", choices=CLUSTERS, default="slurm",
                   help="submitit's executor: slurm (sbatch), or local (subprocesses here, no SLURM; for tests)")
    g.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    g.add_argument("--gpus-per-job", type=int, default=0, metavar="N", help="GPUs per array task (default 0)")
    g.add_argument("--time-min", type=int, default=240, metavar="MIN", help="time limit per array task (default 240)")
    g.add_argument("--array-parallelism", type=int, default=32, metavar="N",
                   help="array tasks running at once (default 32)")
    g.add_argument("--cpus-per-task", type=int, default=None, metavar="N",
                   help="CPUs per array task (also the torch threads of profiles without a thread setting)")
    g.add_argument("--mem-gb", type=int, default=None, metavar="GB", help="memory per array task")
    g.add_argument("--runs-per-job", type=int, default=1, metavar="N",
                   help="runs per array task, trained in turn (default 1)")
    g.add_argument("--slurm-folder", default=None, metavar="DIR",
                   help="submitit's logs and pickles (default: <data cache>/submitit/<profile>)")


def check_cli_args(args: Any) -> None:
    """Refuse submitit's flags with ``--launcher local`` and ``--jobs`` with submitit: one ``ValueError``."""
    given = [cli_flag(k) for k, v in CLUSTER_DEFAULTS.items() if getattr(args, k) != v]
    if args.launcher == "local" and given:
        raise ValueError(f"{', '.join(given)}: only with --launcher submitit (this run is local)")
    if args.launcher == "submitit" and getattr(args, "jobs", None) is not None:
        raise ValueError("--jobs applies to --launcher local only (with submitit: --array-parallelism)")


def cli_options(args: Any) -> dict[str, Any]:
    """The keyword arguments ``launcher=`` and submitit's options of an experiment's runner, from the flags."""
    if args.launcher == "local":
        return {"launcher": "local"}
    return dict(launcher=args.launcher, cluster=args.cluster, folder=args.slurm_folder, partition=args.partition,
                gpus_per_job=args.gpus_per_job, time_min=args.time_min, array_parallelism=args.array_parallelism,
                cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, runs_per_job=args.runs_per_job)
