"""One prepared command for a short GPU window: the ``paper`` grid, sized to the time there is.

A GPU machine comes now and then for about 15 minutes in all (start-up and transfers included),
so this script spends it on results and ends inside a hard deadline (default 510 s, 8.5 min)::

    python3 scripts/gpu_window.py --profile paper --out OUT_DIR

It lives outside the science package (nothing in ``backdrop_repro`` imports it) and imports the
package of the checkout it sits in. It runs on the machine's own Python (PyTorch, numpy, scipy and
tqdm are all it needs; the data cache is pointed at a work folder, so pooch is never imported) and,
in order:

1. starts generating the profile's datasets (one process per dataset, on the CPU cores) and,
   meanwhile, **measures one run**: training steps and evaluation forwards of the run's network at
   its batch size, layout and precision on the device, so it knows the runs per minute (one in
   flight) and the device memory one run needs;
2. **sizes the grid to the budget**: the configurations ``none`` and ``demo`` (the authors'
   fine 0.3 + coarse 0.95) first, then every ``fine`` and ``coarse`` level, for as many seeds as
   fit (at least ``--min-seeds``, 5; at most ``--max-seeds``), seed-major within each tier so a
   cut-off grid still holds complete pairs; more seeds follow while time remains;
3. trains with **several runs in flight** on the one device (``--jobs``, default: as many as its
   memory holds, at most 6), one process each, every run through the sweep's own
   run core's :func:`~backdrop_repro.experiments.core.run_one`, so each record is exactly the record of
   ``backdrop-repro sweep`` (same key, same fields, per-scale accuracy included where the sweep
   writes it). A run starts only if its expected duration (measured on the runs finished so
   far) ends before the deadline; at the deadline the runs still in flight are stopped and the
   finished records kept (they are written atomically);
4. packs into ``OUT_DIR`` (a new or empty folder: one holding files is refused, so a second
   window never replaces the first one's archive) a few files: ``records.tar.gz`` (``results/<profile>/gp_runs/*.json``,
   ready to untar into a checkout), ``timing.log`` (what it did, when) and ``window.json`` (the
   probe, the sizing, one row per run: key, label, seed, seconds, and the stop reason).

Every argument (``--jobs``, ``--device``, ``--deadline-s``, the seeds, ``--out``) is checked before
any work, each bad one a one-line error (exit 2). ``--work`` (data cache and run records) wins over
``BACKDROP_REPRO_DATA``/``BACKDROP_REPRO_OUTPUT``; without it those variables, else a temp folder.
Runs already recorded there are listed as ``already recorded`` and never counted as runs this window
trained (nor in its runs per minute). On Ctrl-C (exit 130), as at the deadline, the runs in flight
are stopped and what finished is packed. Workers (data and runs) die with the window's process
(``PR_SET_PDEATHSIG`` and a watch on the parent), so a ``kill -9`` leaves none behind. The deadline
pool (:class:`Deadline`) is this script's own: no other command needs a deadline.

The same script runs at ``smoke`` scale on a CPU in the test suite (``tests/test_gpu_window.py``),
so a GPU window is never spent on a crash. Where a pure-Python package is missing on the GPU
machine, carry it as a wheel (``docs/performance.md``, "How to spend a GPU window").
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import queue
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # the package of this checkout

# The sweep's plan, the run core and the worker processes, imported in this one place.
from backdrop_repro import paths, profiles, records  # noqa: E402
from backdrop_repro.checks import check_device, check_int, is_real, resolve_device  # noqa: E402
from backdrop_repro.experiments import core, launchers  # noqa: E402
from backdrop_repro.experiments.core import build_model  # noqa: E402
from backdrop_repro.experiments.gp_sweep.plan import RunSpec, find_record, plan_grid, runs_dir  # noqa: E402
from backdrop_repro.train import make_optimizer  # noqa: E402

__all__ = ["run_window", "plan_window", "run_work", "Deadline", "main"]

#: the configurations of the window, in priority order: the pair the paper's claim rests on first
TIERS = (("none", "demo"), ("fine", "coarse"))
#: seconds kept free before the deadline for stopping workers and packing
MARGIN_S = 15.0


# --------------------------------------------------------------------------------------------
# the work of one run, and the plan
# --------------------------------------------------------------------------------------------
def run_work(spec: RunSpec) -> dict[str, int]:
    """Training steps, training samples and evaluation forwards of one run (from its budget).

    Example: ``run_work(plan_grid("paper", ["none"], [0])[0])`` ->
    ``{"steps": 2500, "train": 10000, "eval": 6400, "epochs": 100}``.
    """
    cfg = spec.train_config()
    n_train, n_val, n_test = (len(r) for r in spec.recipes())
    epochs = range(1, cfg.epochs + 1)
    evals = sum(1 for e in epochs if e % cfg.eval_every == 0 or e == cfg.epochs)
    tests = sum(1 for e in epochs if e % (cfg.test_every or cfg.eval_every) == 0 or e == cfg.epochs)
    steps = cfg.epochs * -(-n_train // cfg.batch_size)
    return {"steps": steps, "train": cfg.epochs * n_train, "eval": evals * (n_train + n_val) + tests * n_test,
            "epochs": cfg.epochs}


def plan_window(profile: str | profiles.Profile, seeds: int, max_seeds: int) -> list[RunSpec]:
    """The window's runs in priority order: ``none`` + ``demo`` for seeds ``0..seeds-1``, then the
    ``fine`` and ``coarse`` levels for the same seeds, then both tiers for each further seed up to
    ``max_seeds`` (seed-major inside each block).

    Example: ``[s.config for s in plan_window("smoke", 1, 1)]`` -> ``['none', 'demo', 'fine', 'coarse']``.
    """
    p = profiles.get(profile)
    if not 1 <= seeds <= max_seeds:
        raise ValueError(f"seeds must be in [1, max_seeds={max_seeds}], got {seeds!r}")
    out: list[RunSpec] = []
    for tier in TIERS:
        grid = plan_grid(p, list(tier), list(range(seeds)))
        out += sorted(grid, key=lambda s: s.seed)        # stable: config order kept within a seed
    for seed in range(seeds, max_seeds):
        for tier in TIERS:
            out += plan_grid(p, list(tier), [seed])
    return out


# --------------------------------------------------------------------------------------------
# log
# --------------------------------------------------------------------------------------------
class _Log:
    def __init__(self, path: Path, t0: float, echo: bool = True) -> None:
        self.path, self.t0, self.echo = path, t0, echo
        self.fh = open(path, "a", buffering=1)

    def __call__(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:7.1f} s] {msg}"
        self.fh.write(line + "\n")
        if self.echo:
            print(line, flush=True)


# --------------------------------------------------------------------------------------------
# probe: one run's speed and memory on the device
# --------------------------------------------------------------------------------------------
def probe(spec: RunSpec, device: str, steps: int = 6) -> dict[str, float]:
    """Seconds per training step and per evaluated sample of ``spec``'s network on ``device``
    (random data of the run's shape, the run's batch, layout and precision), and on CUDA the
    peak device memory of both. Example: ``probe(plan_grid("smoke", ["none"], [0])[0], "cpu")``."""
    import contextlib

    import torch

    cfg = spec.train_config(device)
    size = spec.profile.data.size
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    saved = None
    if cuda:
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = cfg.precision == "tf32"
        torch.cuda.reset_peak_memory_stats(dev)
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if cfg.precision == "bf16" \
        else contextlib.nullcontext
    try:
        net = build_model(spec).to(dev)
        if cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        opt = make_optimizer(net.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
        x = torch.randn(cfg.batch_size, 1, size, size, device=dev)
        y = torch.arange(cfg.batch_size, device=dev) % 4

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = torch.nn.functional.cross_entropy(net(x).float(), y)
            loss.backward()
            opt.step()

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(dev)

        for _ in range(2):
            step()
        sync()
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t)
        step_s = sorted(times)[len(times) // 2]          # the median: robust to a stray slow step
        n_eval = min(cfg.eval_batch_size if cuda else 8, len(spec.recipes()[2]))   # CPU: a short probe
        xe = torch.randn(n_eval, 1, size, size, device=dev)
        net.eval()
        with torch.no_grad(), autocast():
            net(xe)
            sync()
            t = time.perf_counter()
            net(xe)
            sync()
        eval_s = (time.perf_counter() - t) / n_eval
        out = {"step_s": step_s, "eval_sample_s": eval_s}
        if cuda:
            out["peak_bytes"] = float(torch.cuda.max_memory_allocated(dev))
        net = opt = x = xe = None           # free the device memory before emptying the cache
        if cuda:
            torch.cuda.empty_cache()
        return out
    finally:
        if saved is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


# --------------------------------------------------------------------------------------------
# data, in parallel on the CPU cores
# --------------------------------------------------------------------------------------------
def _build_one(recipe: Any) -> str:
    from backdrop_repro.data.datasets import build_dataset

    ds = build_dataset(recipe, progress=False)
    return str(ds.path)


def _start_data(specs: Sequence[RunSpec], workers: int):
    """Start building every distinct dataset of ``specs`` (one process each); returns (pool, futures)."""
    from backdrop_repro.data.datasets import recipe_key

    recipes = {}
    for s in specs:
        for r in s.recipes():
            recipes.setdefault(recipe_key(r), r)
    pool = launchers.worker_pool(max(1, min(workers, len(recipes))))
    return pool, [pool.submit(_build_one, r) for r in recipes.values()]


# --------------------------------------------------------------------------------------------
# the runs: the deadline pool
# --------------------------------------------------------------------------------------------
def _deadline_worker(wid: int, tasks: Any, results: Any, device: Optional[str], threads: int, rehearsal_s: float,
                     reuse: bool, parent: int) -> None:
    """Worker process: take specs from ``tasks`` until None; run each through :func:`.core.run_one`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the caller stops its workers (a Ctrl-C is its to handle)
    launchers.die_with_parent(parent)
    import torch

    torch.set_num_threads(max(1, threads))
    while True:
        spec = tasks.get()
        if spec is None:
            return
        t = time.monotonic()
        try:
            if rehearsal_s > 0:
                time.sleep(rehearsal_s)
            else:
                core.run_one(spec, device=device, reuse=reuse, progress=False)
            results.put(("done", wid, spec.key, time.monotonic() - t, ""))
        except Exception:  # noqa: BLE001 - reported, the pool goes on
            results.put(("error", wid, spec.key, time.monotonic() - t, traceback.format_exc()))


class Deadline:
    """Specs in order, ``jobs`` at a time, until ``deadline`` (``time.monotonic()`` seconds).

    A run is started only when ``now + estimate <= deadline``; the estimate is ``first_estimate_s``
    until runs finish, then 1.1 x the longest of the last ``jobs`` finished runs (the runs in flight
    share the device). At the deadline (or on Ctrl-C) the workers still busy are terminated; records
    are written atomically, so what finished is kept. ``threads``: torch threads per worker;
    ``rehearsal_s`` > 0 sleeps instead of training (the tests' dry run). The call returns, besides the
    common keys, ``runs`` (one row per run: key, label, seed, config, level, s, worker, status, end_s),
    ``stop`` (why it ended), ``estimate_s`` and ``interrupted``. The data must be built beforehand.
    """

    name = "deadline"

    def __init__(self, jobs: int, deadline: float, first_estimate_s: float, log: Callable[[str], None] = print,
                 threads: int = 1, rehearsal_s: float = 0.0):
        self.jobs, self.deadline, self.first_estimate_s = check_int("jobs", jobs, low=1), deadline, first_estimate_s
        self.log, self.threads, self.rehearsal_s = log, threads, rehearsal_s

    @staticmethod
    def _row(spec: core.Spec, **kw: Any) -> dict[str, Any]:
        return {"key": spec.key, "label": spec.label, "config": getattr(spec, "config", None),
                "level": getattr(spec, "level", None), "seed": spec.seed, **kw}

    def __call__(self, specs: Sequence[core.Spec], device: Optional[str] = None, reuse: bool = True,
                 progress: bool = True, desc: str = "runs") -> dict[str, Any]:
        log, deadline = self.log, self.deadline
        tasks, results = launchers.queue_pair()
        jobs = max(1, min(self.jobs, len(specs)))
        procs = [launchers.spawn(_deadline_worker, w, tasks, results, device, self.threads, self.rehearsal_s, reuse)
                 for w in range(jobs)]
        by_key = {s.key: s for s in specs}
        todo = list(specs)
        busy: dict[int, tuple[str, float]] = {}
        idle = list(range(jobs))
        done: list[dict[str, Any]] = []
        walls: list[float] = []
        estimate = self.first_estimate_s
        stop = "all planned runs finished"
        t_pool = time.monotonic()
        interrupted = False
        started = 0
        try:
            while True:
                now = time.monotonic()
                while idle and todo:
                    if now + estimate > deadline:
                        break
                    spec = todo.pop(0)
                    w = idle.pop(0)
                    busy[w] = (spec.key, now)
                    tasks.put(spec)
                    started += 1
                    log(f"start  {spec.label:<26} seed {spec.seed:<3} {spec.key} on worker {w} "
                        f"(expected {estimate:.0f} s)")
                if not busy:
                    if todo:
                        stop = (f"deadline: {len(todo)} planned runs left, the next would need ~{estimate:.0f} s, "
                                f"{max(0.0, deadline - now):.0f} s left")
                    break
                if now >= deadline:
                    stop = f"deadline: {len(busy)} runs in flight stopped, {len(todo)} not started"
                    break
                try:
                    status, w, key, secs, err = results.get(timeout=min(2.0, max(0.05, deadline - now)))
                except queue.Empty:
                    continue
                busy.pop(w, None)
                idle.append(w)
                s = by_key[key]
                done.append(self._row(s, s=round(secs, 2), worker=w, status=status,
                                      end_s=round(time.monotonic() - t_pool, 2)))
                if status == "done":
                    walls.append(secs)
                    estimate = 1.1 * max(walls[-jobs:])
                    log(f"done   {s.label:<26} seed {s.seed:<3} {key} in {secs:.1f} s")
                else:
                    log(f"FAILED {s.label:<26} seed {s.seed:<3} {key}:\n{err}")
        except KeyboardInterrupt:
            interrupted = True
            stop = f"interrupted (Ctrl-C): {len(busy)} runs in flight stopped, {len(todo)} not started"
        finally:
            for _ in procs:
                tasks.put(None)
            t_end = time.monotonic() + (1.0 if busy else 10.0)
            for p in procs:
                if busy:
                    p.terminate()
                p.join(max(0.1, t_end - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join(5)
        for w, (key, t) in busy.items():
            done.append(self._row(by_key[key], s=round(time.monotonic() - t, 2), worker=w,
                                  status="stopped (Ctrl-C)" if interrupted else "stopped at the deadline"))
        log(f"stop: {stop}")
        failed = [f"{r['key']} ({r['label']}, seed {r['seed']})" for r in done if r["status"] == "error"]
        return {"submitted": started, "jobs": jobs, "failed": failed, "runs": done, "stop": stop,
                "estimate_s": round(estimate, 2), "interrupted": interrupted}


def run_pool(specs: Sequence[RunSpec], jobs: int, deadline: float, first_estimate_s: float, device: str,
             log: Any = print, threads: int = 1, rehearsal_s: float = 0.0) -> dict[str, Any]:
    """Run ``specs`` in order, ``jobs`` at a time, until ``deadline`` (monotonic s) through
    :class:`Deadline` (every run through the run core's ``run_one``).
    Returns ``{"runs": [{key, label, seed, config, level, s, worker, status, end_s}], "stop": reason,
    "estimate_s": ..., "interrupted": ...}``."""
    res = Deadline(jobs, deadline, first_estimate_s, log, threads, rehearsal_s)(specs, device=device)
    return {k: res[k] for k in ("runs", "stop", "estimate_s", "interrupted")}


# --------------------------------------------------------------------------------------------
# the window
# --------------------------------------------------------------------------------------------
def _gpu_free_bytes() -> Optional[int]:
    import torch

    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info()
    return int(free)


def _data_bytes(spec: RunSpec) -> int:
    from backdrop_repro.data.datasets import estimate_bytes

    return sum(estimate_bytes(r) for r in spec.recipes())


def check_args(out: "str | Path", profile: str | profiles.Profile, deadline_s: Any, device: Any, jobs: Any, min_seeds: Any,
               max_seeds: Any, max_jobs: Any) -> Path:
    """Every argument of the window checked before any work: one ``ValueError`` naming the flag and
    what it accepts. ``out`` must be a new or empty folder (a second window never replaces the first
    one's ``records.tar.gz``). Returns ``out`` as a Path."""
    profiles.get(profile)
    if not is_real(deadline_s) or not math.isfinite(deadline_s) or deadline_s <= MARGIN_S:
        raise ValueError(f"--deadline-s must be a finite number of seconds > {MARGIN_S:g} (the margin kept for "
                         f"packing), got {deadline_s!r}")
    check_int("--jobs", jobs, low=1, allow_none=True)
    check_int("--min-seeds", min_seeds, low=1)
    check_int("--max-seeds", max_seeds, low=1)
    check_int("--max-jobs", max_jobs, low=1)
    if min_seeds > max_seeds:
        raise ValueError(f"--min-seeds {min_seeds} must be <= --max-seeds {max_seeds}")
    check_device(device)
    if str(out) == "":
        raise ValueError("--out must name a folder, got ''")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder; choose a new or empty folder")
    if out.is_dir():
        held = sorted(f.name for f in out.iterdir())
        if held:
            raise ValueError(f"--out {out} already holds {', '.join(held[:3])}{' ...' if len(held) > 3 else ''}: "
                             "choose a new or empty folder (a window never replaces another's archive)")
    return out


def _point_env(work: Optional["str | Path"]) -> tuple[Path, dict[str, Optional[str]]]:
    """Point the data cache and the run records at ``work`` (it wins over the environment); without
    it keep ``BACKDROP_REPRO_DATA``/``_OUTPUT`` if set, else a temp folder. Returns the work folder and
    the variables as they were (to restore)."""
    names = ("BACKDROP_REPRO_DATA", "BACKDROP_REPRO_OUTPUT", "TQDM_DISABLE")
    saved = {k: os.environ.get(k) for k in names}
    given = work is not None
    work = Path(work).absolute() if given else Path(tempfile.mkdtemp(prefix="gpu-window-"))
    for name, sub in (("BACKDROP_REPRO_DATA", "data"), ("BACKDROP_REPRO_OUTPUT", "output")):
        if given or not os.environ.get(name):
            os.environ[name] = str(work / sub)     # no pooch: a plain folder
    os.environ.setdefault("TQDM_DISABLE", "1")
    return work, saved


def run_window(out: str | Path, profile: str | profiles.Profile = "paper", deadline_s: float = 510.0, device: str = "auto",
               jobs: Optional[int] = None, min_seeds: int = 5, max_seeds: int = 20, work: Optional[str | Path] = None,
               max_jobs: int = 6, rehearsal_s: float = 0.0, echo: bool = True) -> dict[str, Any]:
    """Run the window (module docstring) and pack its results into ``out``; returns the summary
    also written to ``out/window.json``. Ends by ``deadline_s`` seconds after the call (plus the
    packing). Bad arguments: ``ValueError`` before any work (:func:`check_args`). On Ctrl-C it stops,
    packs what finished and returns the summary with ``"interrupted": True``.
    Example: ``run_window("/tmp/w", "smoke", deadline_s=120, max_seeds=2, min_seeds=1)``."""
    t0 = time.monotonic()
    out = check_args(out, profile, deadline_s, device, jobs, min_seeds, max_seeds, max_jobs)
    deadline = t0 + float(deadline_s)
    out.mkdir(parents=True, exist_ok=True)
    work, saved = _point_env(work)
    try:
        return _window(out, profiles.get(profile), deadline_s, deadline, device, jobs, min_seeds, max_seeds, work,
                       max_jobs, rehearsal_s, echo, t0)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _window(out: Path, p: profiles.Profile, deadline_s: float, deadline: float, device: str, jobs: Optional[int],
            min_seeds: int, max_seeds: int, work: Path, max_jobs: int, rehearsal_s: float, echo: bool,
            t0: float) -> dict[str, Any]:
    log = _Log(out / "timing.log", t0, echo)
    import torch

    log(f"data cache {os.environ['BACKDROP_REPRO_DATA']}, run records under {os.environ['BACKDROP_REPRO_OUTPUT']}")
    dev = resolve_device(device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    summary: dict[str, Any] = {
        "profile": p.name, "device": torch.cuda.get_device_name(0) if dev.startswith("cuda") else f"cpu, {cores} cores",
        "torch": torch.__version__, "python": platform.python_version(), "host": platform.node(),
        "deadline_s": deadline_s, "work": str(work), "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "runs": [], "runs_finished": 0, "interrupted": False}
    log(f"GPU window: profile {p.name}, device {summary['device']}, torch {torch.__version__}, "
        f"python {summary['python']}, {cores} CPU cores, deadline {deadline_s:.0f} s")
    pool = None
    try:
        # 1. data (CPU processes) while the device is probed
        first = plan_window(p, 1, 1)[0]
        n0 = max(1, min(min_seeds, max_seeds))
        pool, futures = _start_data(plan_window(p, n0, n0), cores)
        log(f"data: building {len(futures)} datasets in {min(cores, len(futures))} processes "
            f"({p.data.size}², {p.data.method} sampler)")
        pr = probe(first, dev)
        work1 = run_work(first)
        run_s = work1["steps"] * pr["step_s"] + work1["eval"] * pr["eval_sample_s"] + 0.02 * work1["epochs"]
        summary["probe"] = {**{k: round(v, 6) for k, v in pr.items()}, "run_work": work1,
                            "run_s_one_in_flight": round(run_s, 1), "runs_per_minute_one_in_flight": round(60 / run_s, 3)}
        log(f"probe: {pr['step_s'] * 1e3:.1f} ms per training step (batch {first.train_config().batch_size}), "
            f"{pr['eval_sample_s'] * 1e3:.2f} ms per evaluated sample -> one run ({work1['steps']} steps, "
            f"{work1['eval']} evaluation forwards) ~{run_s:.0f} s: {60 / run_s:.2f} runs per minute with one in flight")
        # 2. how many in flight
        if jobs is None:
            if dev.startswith("cuda"):
                free = _gpu_free_bytes() or 0
                need = int(pr.get("peak_bytes", 0) + _data_bytes(first) + 1.5 * 2 ** 30)
                jobs = max(1, min(max_jobs, int((free - 2 * 2 ** 30) // max(need, 1))))
                log(f"jobs: {jobs} in flight ({free / 2 ** 30:.1f} GiB free on the device, ~{need / 2 ** 30:.1f} GiB per run)")
            else:
                jobs = max(1, min(max_jobs, p.sweep.jobs or cores))
                log(f"jobs: {jobs} in flight (CPU)")
        try:
            for f in futures:
                f.result(timeout=max(0.1, deadline - MARGIN_S - time.monotonic()))
        except Exception as err:      # data not ready by the deadline (or failed): stop, pack what there is
            _stop_pool(pool)
            pool = None
            why = "deadline: the data were not ready" if isinstance(err, TimeoutError) else f"data failed: {err!r}"
            summary.update(stop=why)
            log(f"stop: {why}")
            return _pack(out, p, summary, t0, log)
        pool.shutdown()
        pool = None
        log("data: ready")
        # 3. size the grid to what is left (pessimistic: no gain from several in flight until measured)
        per_seed = len(plan_window(p, 1, 1))
        left = deadline - MARGIN_S - time.monotonic()
        fit = int(left // run_s)
        seeds = max(1, min(max_seeds, max(min_seeds, fit // per_seed)))
        specs = plan_window(p, seeds, max(seeds, max_seeds))
        summary["sizing"] = {"left_s": round(left, 1), "runs_that_fit_one_in_flight": fit, "runs_per_seed": per_seed,
                             "seeds_planned": seeds, "max_seeds": max_seeds, "jobs": jobs}
        log(f"sizing: {left:.0f} s left -> ~{fit} runs at one in flight; grid planned for {seeds} seeds "
            f"({seeds * per_seed} runs: none + demo first, then the fine and coarse levels), then more seeds up to "
            f"{max_seeds} while time remains")
        # runs already recorded in the work folder: not trained here, never counted as this window's
        recorded = [sp for sp in specs if find_record(sp) is not None]
        if recorded:
            log(f"{len(recorded)} planned runs already recorded in {os.environ['BACKDROP_REPRO_OUTPUT']}: not trained "
                "again, not counted")
        summary["already_recorded"] = [sp.key for sp in recorded]
        keys = set(summary["already_recorded"])
        todo = [sp for sp in specs if sp.key not in keys]
        # 4. the runs
        threads = max(1, cores // jobs)
        res = run_pool(todo, jobs, deadline - MARGIN_S, run_s * jobs, dev, log, threads, rehearsal_s) if todo else \
            {"runs": [], "stop": "all planned runs were already recorded", "estimate_s": round(run_s * jobs, 2),
             "interrupted": False}
        summary.update(res)
    except KeyboardInterrupt:
        if pool is not None:
            _stop_pool(pool)
        summary.update(stop="interrupted (Ctrl-C)", interrupted=True)
    except BaseException:
        if pool is not None:
            _stop_pool(pool)
        log.fh.close()
        raise
        log("stop: interrupted (Ctrl-C)")
    finished = [r for r in summary["runs"] if r["status"] == "done"]
    elapsed = time.monotonic() - t0
    summary["runs_finished"] = len(finished)
    summary["elapsed_s"] = round(elapsed, 1)
    if finished:
        span = max(1e-9, max(r["end_s"] for r in finished))
        summary["runs_per_minute_observed"] = round(60 * len(finished) / span, 3)
    log(f"finished {len(finished)} runs in {elapsed:.0f} s" + (
        f" (~{summary['runs_per_minute_observed']:.2f} runs per minute with {jobs} in flight)" if finished else ""))
    return _pack(out, p, summary, t0, log)


def _stop_pool(pool: Any) -> None:
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _pack(out: Path, p: profiles.Profile, summary: dict[str, Any], t0: float, log: _Log) -> dict[str, Any]:
    """Write ``records.tar.gz`` (every usable record of the profile in the run-records folder, read
    through :mod:`backdrop_repro.records`; malformed ones are listed, not packed) and ``window.json``
    into ``out`` (atomically); returns the summary."""
    summary.setdefault("elapsed_s", round(time.monotonic() - t0, 1))
    rdir = runs_dir(p)
    found = [records.inspect(f) for f in sorted(rdir.glob("*.json"))] if rdir.exists() else []
    good = [r.path for r in found if r.status in ("ok", "failed")]
    summary["malformed_records"] = [r.reason for r in found if r.status == "malformed"]
    with paths.atomic_path(out / "records.tar.gz") as tmp:
        with tarfile.open(tmp, "w:gz") as tar:
            for f in good:
                tar.add(f, arcname=f"results/{p.name}/gp_runs/{f.name}")
    summary["records"] = [f.stem for f in good]
    paths.write_text(out / "window.json", json.dumps(summary, indent=1, sort_keys=True))
    log(f"packed {len(good)} records into {out / 'records.tar.gz'}; summary in {out / 'window.json'}")
    log.fh.close()
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: 0 when runs finished, 1 when none did, 2 a bad argument (one line), 130 Ctrl-C."""
    ap = argparse.ArgumentParser(prog="python3 scripts/gpu_window.py", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="a new or empty folder for records.tar.gz, timing.log, "
                                                            "window.json")
    ap.add_argument("--profile", default="paper", choices=profiles.names())
    ap.add_argument("--deadline-s", type=float, default=510.0, help="hard end, seconds after the start (default 510)")
    ap.add_argument("--device", default="auto", help="auto (cuda if present), cuda, cuda:N or cpu")
    ap.add_argument("--jobs", type=int, default=None, help="runs in flight (default: as many as the device memory holds)")
    ap.add_argument("--min-seeds", type=int, default=5)
    ap.add_argument("--max-seeds", type=int, default=20)
    ap.add_argument("--max-jobs", type=int, default=6)
    ap.add_argument("--work", type=Path, default=None, help="data cache and run outputs (wins over BACKDROP_REPRO_DATA "
                                                            "and _OUTPUT; default: those, else a temp folder)")
    args = ap.parse_args(argv)
    if args.work is not None and str(args.work) == "":
        ap.error("--work must name a folder, got ''")
    try:
        check_args(args.out, args.profile, args.deadline_s, args.device, args.jobs, args.min_seeds, args.max_seeds,
                   args.max_jobs)
    except ValueError as err:
        ap.error(str(err))
    try:
        s = run_window(args.out, args.profile, args.deadline_s, args.device, args.jobs, args.min_seeds,
                       args.max_seeds, args.work, args.max_jobs)
    except (ValueError, OSError) as err:
        print(f"{ap.prog}: error: {err}", file=sys.stderr)
        return 2
    if s.get("interrupted"):
        return 130
    return 0 if s["runs_finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
