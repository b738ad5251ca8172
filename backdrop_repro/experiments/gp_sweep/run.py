"""Training the GP sweep: one runner, the launcher a parameter (local processes or submitit).

:func:`run_sweep` trains the grid, then (``studies``) the data-size and robustness runs planned
from the grid's records (:func:`.plan.plan_runs`), scores the likelihood classifier on the test
sets the tables quote (:func:`write_references`: keyed records ``results/<profile>/gp_reference/<key>.json``),
and ends with the collect step (:func:`.report.write_tables`, which only reads records). Where the runs train is the
``launcher``: ``"local"`` (this machine, ``jobs`` processes with one thread each, faster than
one run with two threads) or ``"submitit"`` (SLURM job arrays through :mod:`.launch`).
Either way every run goes through :func:`run_one`, which writes its keyed record atomically, so
runs already recorded are skipped and results of several calls or machines merge by key.

Parameter path from the profile to the masks: ``profiles`` → :func:`.plan.plan_grid`
(``RunSpec.fine_prob``/``coarse_prob``) → :func:`run_one` → :func:`build_model` →
:class:`~backdrop_repro.models.TwoScaleCNN` → :class:`~backdrop_repro.masking.BackdropMask`.

Example
-------
>>> sweep = run_sweep("smoke", progress=False)                     # doctest: +SKIP
>>> sweep["verdict"]["overall"]                                     # doctest: +SKIP
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ... import paths, profiles, records
from ..._shared import check_device, check_int, check_members, torch_generator, torch_threads, tqdm_disable
from ...models import TwoScaleCNN, keep_freed_memory
from ...train import train
from .plan import (REFERENCE_CLASSIFIER, ReferenceSpec, RunSpec, ckpt_path, collect, find_record, plan_grid, plan_runs,
                   read_record, reference_specs, runs_dir)
from .report import write_tables

__all__ = ["scale_metrics", "LAUNCHERS", "run_sweep", "run_one", "run_specs", "build_model", "load_data",
           "worker_pool", "run_device", "die_with_parent", "score_reference", "write_references"]

#: where the runs train: this machine (processes) or a cluster through submitit
LAUNCHERS = ("local", "submitit")


_DATA_CACHE: dict[str, Any] = {}


def load_data(spec: RunSpec, progress: bool = False) -> tuple[Any, Any, Any]:
    """``(train, val, test)`` :class:`~backdrop_repro.data.files.GPDataset` of the run (cached on disk
    and, within a process, in memory)."""
    from ...data.datasets import build_dataset, recipe_key

    out = []
    for r in spec.recipes():
        k = recipe_key(r)
        if k not in _DATA_CACHE:
            _DATA_CACHE[k] = build_dataset(r, progress=progress)
        out.append(_DATA_CACHE[k])
    return tuple(out)


def build_model(spec: RunSpec) -> TwoScaleCNN:
    """The run's network: initialised from ``seed``, masks drawn from the seed's ``gp_masks`` stream
    (``Generator(seed + 10**6)``)."""
    s, d = spec.profile.sweep, spec.profile.data
    gen = torch_generator(spec.seed, "gp_masks")
    kw = dict(width=s.width, fine_prob=spec.fine_prob, coarse_prob=spec.coarse_prob, kernel=s.kernel,
              generator=gen, init_seed=spec.seed, init=s.init, impl=s.impl, stem=s.stem)
    if s.impl == "blocked":
        keep_freed_memory()             # speed only (host malloc): glibc keeps the 1024² maps' memory between steps
    if s.n_fine is not None and s.n_coarse is not None:
        net = TwoScaleCNN(n_fine=s.n_fine, n_coarse=s.n_coarse, **kw)
        net.image_size = d.size
        return net
    return TwoScaleCNN.for_scales(d.size, small_cl=d.scales[0], large_cl=d.scales[-1], **kw)


def run_device(spec: RunSpec, device: Optional[str]) -> str:
    """The torch device a run trains on: ``device``, else the profile's; ``"auto"`` is cuda where available."""
    d = check_device(device or spec.profile.sweep.device)
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return d


def _device_name(dev: str) -> str:
    if dev.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(dev))
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_one(spec: RunSpec, device: Optional[str] = None, reuse: bool = True, progress: bool = False) -> dict[str, Any]:
    """Train one run (or, with ``reuse``, return its record); resumable from its checkpoint.

    ``reuse=False`` trains from scratch (the checkpoint is deleted first) and overwrites the
    record. Returns the record written to ``results/<profile>/gp_runs/<key>.json``: ``key``,
    ``config`` (:meth:`RunSpec.to_dict`), ``label``, ``history``, ``final``, ``wall_time_s``,
    ``device``, ``versions``.
    """
    if reuse:
        rec = find_record(spec)
        if rec is not None:
            return rec
    else:
        ckpt_path(spec).unlink(missing_ok=True)
    with torch_threads(spec.profile.sweep.threads):
        tr, va, te = load_data(spec, progress=progress)
        dev = run_device(spec, device)
        out = train(build_model(spec), tr, te, spec.train_config(dev), checkpoint=ckpt_path(spec), resume=True,
                    progress=progress, val_data=va)
        name = _device_name(dev)
    final = dict(out["final"])
    if out.get("failed"):
        final["failed"] = out["failed"]
    else:
        final.update(scale_metrics(spec, tr, va, te, out["predictions"]))
    rec = {"key": spec.key, "config": spec.to_dict(), "label": spec.label, "history": out["history"],
           "final": final, "predictions": {k: "".join(map(str, v)) for k, v in out["predictions"].items()},
           "wall_time_s": round(out["wall_time_s"], 2), "device": name, "versions": paths.versions()}
    paths.write_json(runs_dir(spec.profile) / f"{spec.key}.json", rec)
    return rec


def score_reference(spec: ReferenceSpec, progress: bool = False) -> dict[str, Any]:
    """Score the likelihood classifier (:func:`backdrop_repro.gp.oracle.oracle_for_recipe` with
    :data:`.plan.REFERENCE_CLASSIFIER`) on ``spec``'s test set and write its record to
    ``spec.record_path`` atomically; return it. ``final``: ``test_accuracy``, ``test_scale_accuracy``
    (per scale, smallest first, as in :func:`scale_metrics`), ``method``, ``exact``
    (:func:`~backdrop_repro.gp.oracle.is_exact`: the exact likelihood of the data, else an
    approximation, not a ceiling); ``predictions["test"]``: one class digit per test image.
    """
    from ...data.datasets import build_dataset
    from ...gp import oracle

    t0 = time.perf_counter()
    r = spec.recipes()[0]
    ds = build_dataset(r, progress=progress)
    images, labels = np.asarray(ds.images), np.asarray(ds.labels)
    settings = dict(REFERENCE_CLASSIFIER)
    pred = oracle.oracle_for_recipe(r, **settings).predict(images)
    settings.pop("floor")
    lengths = np.asarray(r.classes)                         # (classes, scales)
    final = {"test_accuracy": float(np.mean(pred == labels)),
             "test_scale_accuracy": [float(np.mean(lengths[pred, s] == lengths[labels, s])) for s in range(lengths.shape[1])],
             "method": r.method, "exact": bool(oracle.is_exact(r, **settings))}
    rec = {"key": spec.key, "config": spec.to_dict(), "label": "likelihood classifier", "history": [], "final": final,
           "predictions": {"test": "".join(map(str, pred.tolist()))}, "wall_time_s": round(time.perf_counter() - t0, 2),
           "device": "cpu", "versions": paths.versions()}
    paths.write_json(spec.record_path, rec)
    return rec


def write_references(profile: str | profiles.Profile, progress: bool = False) -> dict[str, dict[str, Any]]:
    """The records of the references the profile's tables quote (:func:`.plan.reference_specs` of the
    records present): each read from its profile's folder, else adopted from another profile's
    (:func:`backdrop_repro.records.adopt`: the same test set and classifier have the same key), else
    scored (:func:`score_reference`). Returns ``{"main": record, ["robustness": record]}``; the
    report reads them (:func:`.plan.read_reference`)."""
    p = profiles.get(profile)
    out = {}
    for name, spec in reference_specs(p, collect(p)).items():
        rec = read_record(spec.record_path, spec) or records.adopt(spec, spec.record_path, "gp_reference")
        out[name] = rec if rec is not None else score_reference(spec, progress)
    return out


def scale_metrics(spec: RunSpec, train_ds: Any, val_ds: Any, test_ds: Any,
                  predictions: dict[str, Sequence[int]]) -> dict[str, Any]:
    """Per-scale accuracy and confusion matrices of a run's predictions.

    A prediction is right on scale ``s`` when the predicted class has the true class's
    correlation length on that scale (the 4-class problem marginalised onto one scale). Returns,
    for each split with predictions (``val``, ``test``): ``<split>_scale_accuracy`` (one accuracy
    per scale, smallest scale first) and ``<split>_confusion`` (rows: true class, columns:
    predicted). Example: all right -> ``test_scale_accuracy == [1.0, 1.0]``.
    """
    classes = spec.recipes()[2].classes
    out: dict[str, Any] = {}
    for split, ds in (("val", val_ds), ("test", test_ds)):
        if split not in predictions:
            continue
        pred = np.asarray(predictions[split], dtype=np.int64)
        true = np.asarray(ds.labels, dtype=np.int64)
        if pred.shape != true.shape:
            raise ValueError(f"{split} predictions: {pred.shape[0]} for {true.shape[0]} images")
        lengths = np.asarray(classes)                       # (classes, scales)
        out[f"{split}_scale_accuracy"] = [float(np.mean(lengths[pred, s] == lengths[true, s]))
                                          for s in range(lengths.shape[1])]
        conf = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(conf, (true, pred), 1)
        out[f"{split}_confusion"] = conf.tolist()
    return out


#: seconds between a worker's checks that its parent is still alive
PARENT_CHECK_S = 1.0


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when ``parent`` dies (a SIGKILL of the sweep leaves no
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


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes that end when this process dies (:func:`die_with_parent`)."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else (f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s")


class _Lines:
    """Progress where no bar can be drawn (output redirected to a log): one line per finished run
    with runs done / total, the time so far and the projected time left (at the rate so far)."""

    def __init__(self, total: int, desc: str, stream: Any = None):
        self.total, self.desc, self.done, self.t0 = total, desc, 0, time.perf_counter()
        self.stream = stream if stream is not None else sys.stderr

    def update(self, label: str = "") -> None:
        self.done += 1
        took = time.perf_counter() - self.t0
        left = took / self.done * (self.total - self.done)
        print(f"[{self.desc}] {self.done}/{self.total} runs done{f' ({label})' if label else ''}, "
              f"{_fmt_s(took)} so far, ≈ {_fmt_s(left)} left", file=self.stream, flush=True)

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, progress: bool) -> Any:
    """tqdm's bar on a terminal, :class:`_Lines` on any other stream, nothing when switched off."""
    from tqdm import tqdm

    if tqdm_disable(progress) is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return _Lines(total, desc)
    return tqdm(total=total, desc=desc, unit="run", disable=tqdm_disable(progress))


def _worker(spec: RunSpec, device: Optional[str], reuse: bool, run: Any = None) -> str:
    torch.set_num_threads(spec.profile.sweep.threads or 1)
    (run or run_one)(spec, device=device, reuse=reuse, progress=False)
    return spec.key


def run_specs(specs: Sequence[RunSpec], jobs: int = 1, device: Optional[str] = None, reuse: bool = True,
              progress: bool = True, desc: str = "runs", run: Any = None, find: Any = None) -> None:
    """Run ``specs`` (those without a record first filtered out when ``reuse``), ``jobs`` at a time.

    ``run``/``find``: another experiment's runner and record finder (module-level functions, so
    worker processes can import them; default :func:`run_one` and :func:`.plan.find_record`). Its
    specs need ``profile``, ``seed``, ``key`` and ``recipes()`` (the datasets built first).
    """
    jobs = check_int("jobs", jobs, low=1)
    check_device(device)                # before any dataset is built
    run, find = run or run_one, find or find_record
    todo = [s for s in specs if not (reuse and find(s) is not None)]
    todo.sort(key=lambda s: s.seed)     # seed-major: a partial sweep holds complete pairs of seeds
    if not todo:
        return
    for s in todo:                      # build (or verify) every dataset once, before the workers start
        load_data(s, progress=progress)
    bar = _progress(len(todo), desc, progress)
    lines = isinstance(bar, _Lines)
    try:
        if jobs == 1 or len(todo) == 1:
            for s in todo:
                run(s, device=device, reuse=reuse)
                bar.update(f"{getattr(s, 'label', s.key)}, seed {s.seed}") if lines else bar.update()
            return
        with worker_pool(min(jobs, len(todo))) as pool:
            futures = _submit_quietly(pool, [(s, (_worker, s, device, reuse, run)) for s in todo])
            try:
                for f in as_completed(futures):
                    f.result()
                    s = futures[f]
                    bar.update(f"{getattr(s, 'label', s.key)}, seed {s.seed}") if lines else bar.update()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()



def run_sweep(profile: str | profiles.Profile = profiles.DEFAULT, configs: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None, studies: bool = True, jobs: Optional[int] = None,
              reuse: bool = True, device: Optional[str] = None, progress: bool = True, launcher: str = "local",
              **submitit_options: Any) -> dict[str, Any]:
    """Run the grid, then (``studies``) the data-size and robustness runs; write and return the tables.

    ``reuse=False`` retrains every run from scratch. ``launcher`` is one of :data:`LAUNCHERS`:
    ``"local"`` runs ``jobs`` (default: the profile's) in parallel here; ``"submitit"`` submits
    the runs without a record as job arrays (``submitit_options``: those of
    :func:`.launch.make_executor` plus ``folder``, ``runs_per_job``, ``poll_s`` and
    ``executor_factory``) and adds ``"launch": {"submitted", "jobs", "failed"}`` to the result;
    a failed job raises :class:`.launch.LaunchError` after the tables are written, and then the
    studies are not planned. The likelihood classifier's references are recorded next
    (:func:`write_references`), then the tables are rebuilt from every record present for the profile's
    full plan, so a subset call (``configs``/``seeds``) adds records and never drops any.
    Returns :func:`.report.write_tables`.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    if launcher == "local" and submitit_options:
        raise TypeError(f"options {sorted(submitit_options)} are for launcher 'submitit'")
    p = profiles.get(profile)
    check_device(device)                                       # every input checked before any work
    if seeds is not None:
        check_members("seeds", seeds, sorted(set(p.sweep.seeds) | set(p.sweep.study_seeds or ())),
                      f"profile {p.name!r} tables only its own seeds: register a profile with more seeds")
    t0 = time.perf_counter()
    paths.clean_package_orphans(p.name)
    if launcher == "local":
        jobs = p.sweep.jobs if jobs is None else jobs

        def launch(specs: list[RunSpec], desc: str) -> None:
            run_specs(specs, jobs, device, reuse, progress, desc=desc)
    else:
        from . import launch as submit

        total: dict[str, Any] = {"submitted": 0, "jobs": 0, "failed": []}
        executor, kw = submit.executor_for(p, device=device, reuse=reuse, progress=progress, **submitit_options)

        def launch(specs: list[RunSpec], desc: str) -> None:
            out = submit.submit_specs(executor, specs, desc=desc, **kw)
            for k in total:
                total[k] += out[k]

    launch(plan_grid(p, configs, seeds), f"GP sweep {p.name}: grid")
    if studies and not (launcher == "submitit" and total["failed"]):
        extra = [s for s in plan_runs(p, configs, seeds) if s.study != "grid"]
        launch(extra, f"GP sweep {p.name}: data size + robustness")
    write_references(p, progress=progress)
    sweep = write_tables(p, wall=time.perf_counter() - t0)
    if launcher == "submitit":
        sweep["launch"] = total
        if total["failed"]:
            raise submit.LaunchError(f"{len(total['failed'])} of {total['jobs']} jobs failed (the tables hold the other "
                                     "runs; run the same command again to resubmit only the missing runs): "
                                     + " | ".join(total["failed"]))
    return sweep
