"""The GP sweep: 2-scale CNNs with and without backdrop on the multi-scale GP classes.

Grid (every configuration, every seed, one training budget): ``none`` (no backdrop); ``fine``
and ``coarse`` (one mask) at each of the profile's probabilities; ``both`` pairing level i of
each; ``demo`` (the authors' demo setting, fine 0.3 + coarse 0.95). Then two studies, for
``none`` and for the backdrop configuration with the best mean *validation* accuracy over seeds
(never chosen on the test set): the data-size curve (other numbers of training images per class,
with the same number of image visits, epochs x images) and the robustness row (the same task
drawn by another sampler, e.g. the paper's own construction).

Every run is keyed by a hash of everything that defines it (not the profile's name), so a run
already recorded is skipped, runs can be spread over processes or machines, and two profiles
that share a run (``default`` is a subset of ``scaled``) share its key. ``jobs`` runs go in
parallel, one process per run with one thread each (faster than one run with two threads).
Records: ``results/<profile>/gp_runs/<key>.json``; tables: ``gp_sweep.json`` / ``.csv``, always
written from every record present for the profile's plan; checkpoints (caches, not results):
``<data cache>/checkpoints/gp_sweep/<key>.pt``.

Example
-------
>>> sweep = run_sweep("smoke", progress=False)                     # doctest: +SKIP
>>> sweep["verdict"]["overall"]                                     # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .. import paths, profiles
from ..models import TwoScaleCNN
from ..train import TrainConfig, train

__all__ = ["CONFIGS", "STUDIES", "RunSpec", "plan_grid", "plan_studies", "plan_runs", "select_best", "run_one",
           "run_specs", "collect", "load_sweep", "build_model", "load_data",
           "runs_dir", "read_record", "find_record"]

CONFIGS = ("none", "fine", "coarse", "both", "demo")
STUDIES = ("grid", "data_size", "robustness")
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class RunSpec:
    """One training run. ``per_class``/``method`` (None: the profile's) vary the training data
    of the studies; the profile object travels with the spec so worker processes need no table."""

    profile: profiles.Profile
    config: str
    level: int
    fine_prob: float
    coarse_prob: float
    seed: int
    study: str = "grid"
    per_class: Optional[int] = None
    method: Optional[str] = None

    @property
    def label(self) -> str:
        """Readable name: ``none``, ``fine 0.3``, ``coarse 0.95``, ``fine 0.3 + coarse 0.5``, ``demo ...``."""
        if self.config == "none":
            return "none"
        parts = ([f"fine {self.fine_prob:g}"] if self.fine_prob else []) + \
                ([f"coarse {self.coarse_prob:g}"] if self.coarse_prob else [])
        return ("demo: " if self.config == "demo" else "") + " + ".join(parts)

    def recipes(self):
        """``(train, val, test)`` :class:`~backdrop_repro.datasets.Recipe` of the run."""
        from ..datasets import split_recipe

        return (split_recipe(self.profile, "train", self.per_class, self.method),
                split_recipe(self.profile, "val", None, self.method),
                split_recipe(self.profile, "test", None, self.method))

    def train_config(self, device: str = "cpu") -> TrainConfig:
        """The budget: the profile's epochs, or for another training size the same image visits."""
        s, d = self.profile.sweep, self.profile.data
        n = self.per_class or d.per_class
        epochs = max(1, round(s.epochs * d.per_class / n))
        eval_every = max(1, round(s.eval_every * epochs / s.epochs))
        return TrainConfig(epochs=epochs, batch_size=s.batch_size, lr=s.lr, optimizer=s.optimizer,
                           weight_decay=s.weight_decay, seed=self.seed, eval_every=eval_every, test_every=epochs,
                           channels_last=s.channels_last, precision=s.precision, device=device)

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the run (its identity; device and profile name excluded)."""
        s = self.profile.sweep
        tr, va, te = self.recipes()
        model = {"width": s.width, "kernel": s.kernel, "n_fine": s.n_fine, "n_coarse": s.n_coarse,
                 "size": self.profile.data.size, "init": s.init}
        if s.impl != "conv":        # only then: the keys of runs of the default formulation stay as they were
            model["impl"] = s.impl
        return {"schema": SCHEMA_VERSION, "study": self.study, "config": self.config, "level": self.level,
                "fine_prob": self.fine_prob, "coarse_prob": self.coarse_prob, "seed": self.seed,
                "model": model,
                "train": {k: v for k, v in self.train_config().to_dict().items() if k != "device"},
                "data": {"train": tr.to_dict(), "val": va.to_dict(), "test": te.to_dict()}}

    @property
    def key(self) -> str:
        """12-hex-digit hash of :meth:`to_dict`."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def _levels(p: profiles.Profile, config: str) -> list[tuple[int, float, float]]:
    s = p.sweep
    if config == "none":
        return [(0, 0.0, 0.0)]
    if config == "demo":
        return [(0, float(s.demo_probs[0]), float(s.demo_probs[1]))] if s.demo_probs else []
    return [(i, float(f) if config in ("fine", "both") else 0.0, float(c) if config in ("coarse", "both") else 0.0)
            for i, (f, c) in enumerate(zip(s.fine_probs, s.coarse_probs))]


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    import numbers

    seeds = list(seeds)
    if not seeds or any(not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    return [int(s) for s in seeds]


def plan_grid(profile: str | profiles.Profile, configs: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None) -> list[RunSpec]:
    """The grid's runs in a fixed order (configuration x level x seed).

    Example: ``len(plan_grid("scaled")) == (1 + 3 + 3 + 3 + 1) * 10`` (110 runs).
    """
    p = profiles.get(profile)
    configs = list(CONFIGS if configs is None else configs)
    bad = [c for c in configs if c not in CONFIGS]
    if bad or not configs:
        raise ValueError(f"configs must be a non-empty subset of {CONFIGS}, got {configs!r}")
    if len(p.sweep.fine_probs) != len(p.sweep.coarse_probs):
        raise ValueError(f"profile {p.name!r}: fine_probs and coarse_probs must have the same number of levels")
    seeds = _check_seeds(p.sweep.seeds if seeds is None else seeds)
    return [RunSpec(p, c, lv, f, co, s) for c in CONFIGS if c in configs
            for lv, f, co in _levels(p, c) for s in seeds]


def plan_studies(profile: str | profiles.Profile, best: Optional[RunSpec],
                 seeds: Optional[Sequence[int]] = None) -> list[RunSpec]:
    """Data-size and robustness runs for ``none`` and the ``best`` configuration (a grid spec)."""
    p = profiles.get(profile)
    seeds = _check_seeds(p.sweep.seeds if seeds is None else seeds)
    pairs = [("none", 0, 0.0, 0.0)] + ([(best.config, best.level, best.fine_prob, best.coarse_prob)] if best else [])
    out = []
    for n in p.sweep.data_sizes:
        out += [RunSpec(p, c, lv, f, co, s, "data_size", per_class=n) for c, lv, f, co in pairs for s in seeds]
    if p.sweep.robustness_method:
        out += [RunSpec(p, c, lv, f, co, s, "robustness", method=p.sweep.robustness_method)
                for c, lv, f, co in pairs for s in seeds]
    return out


def runs_dir(profile: str | profiles.Profile) -> Path:
    """``results/<profile>/gp_runs``: one JSON record per run."""
    return paths.results_dir(profiles.get(profile).name) / "gp_runs"


def _ckpt_path(spec: RunSpec) -> Path:
    return paths.data_dir() / "checkpoints" / "gp_sweep" / f"{spec.key}.pt"


def read_record(path: Path, spec: Optional[RunSpec] = None) -> Optional[dict[str, Any]]:
    """The run record at ``path`` if it is readable and (given ``spec``) belongs to it, else None.

    A corrupt record is renamed to ``<name>.corrupt`` with a warning naming it (the run is then
    trained again): a record that cannot be read is not a result.
    """
    import warnings

    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
        if not isinstance(rec, dict) or "final" not in rec or "config" not in rec:
            raise ValueError("not a run record")
    except (ValueError, UnicodeDecodeError) as err:
        warnings.warn(f"run record {path} is unreadable ({err}); moved to {path.name}.corrupt, the run will be "
                      "trained again", RuntimeWarning, stacklevel=2)
        path.replace(path.with_name(path.name + ".corrupt"))
        return None
    if spec is not None and rec["config"] != spec.to_dict():
        return None
    return rec


def find_record(spec: RunSpec) -> Optional[dict[str, Any]]:
    """The spec's record in its profile's folder, else (copied from) another profile's folder."""
    own = runs_dir(spec.profile) / f"{spec.key}.json"
    rec = read_record(own, spec)
    if rec is not None:
        return rec
    for other in sorted((paths.output_root() / "results").glob(f"*/gp_runs/{spec.key}.json")):
        rec = read_record(other, spec)
        if rec is not None:
            paths.write_json(own, rec)
            return rec
    return None


_DATA_CACHE: dict[str, Any] = {}


def load_data(spec: RunSpec, progress: bool = False) -> tuple[Any, Any, Any]:
    """``(train, val, test)`` :class:`~backdrop_repro.datasets.GPDataset` of the run (cached on disk
    and, within a process, in memory)."""
    from ..datasets import build_dataset, recipe_key

    out = []
    for r in spec.recipes():
        k = recipe_key(r)
        if k not in _DATA_CACHE:
            _DATA_CACHE[k] = build_dataset(r, progress=progress)
        out.append(_DATA_CACHE[k])
    return tuple(out)


def build_model(spec: RunSpec) -> TwoScaleCNN:
    """The run's network: initialised from ``seed``, masks drawn from ``Generator(seed + 10**6)``."""
    s, d = spec.profile.sweep, spec.profile.data
    gen = torch.Generator().manual_seed(spec.seed + 10 ** 6)
    kw = dict(width=s.width, fine_prob=spec.fine_prob, coarse_prob=spec.coarse_prob, kernel=s.kernel,
              generator=gen, init_seed=spec.seed, init=s.init, impl=s.impl)
    if s.n_fine is not None and s.n_coarse is not None:
        net = TwoScaleCNN(n_fine=s.n_fine, n_coarse=s.n_coarse, **kw)
        net.image_size = d.size
        return net
    return TwoScaleCNN.for_scales(d.size, small_cl=d.scales[0], large_cl=d.scales[-1], **kw)


def _device(spec: RunSpec, device: Optional[str]) -> str:
    d = device or spec.profile.sweep.device
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
        _ckpt_path(spec).unlink(missing_ok=True)
    threads = torch.get_num_threads()
    if spec.profile.sweep.threads:
        torch.set_num_threads(spec.profile.sweep.threads)
    try:
        tr, va, te = load_data(spec, progress=progress)
        dev = _device(spec, device)
        out = train(build_model(spec), tr, te, spec.train_config(dev), checkpoint=_ckpt_path(spec), resume=True,
                    progress=progress, val_data=va)
        name = _device_name(dev)
    finally:
        torch.set_num_threads(threads)
    rec = {"key": spec.key, "config": spec.to_dict(), "label": spec.label, "history": out["history"],
           "final": out["final"], "wall_time_s": round(out["wall_time_s"], 2), "device": name,
           "versions": paths.versions()}
    paths.write_json(runs_dir(spec.profile) / f"{spec.key}.json", rec)
    return rec


def _worker(spec: RunSpec, device: Optional[str], reuse: bool) -> str:
    profiles.PROFILES.setdefault(spec.profile.name, spec.profile)   # a profile registered at run time
    torch.set_num_threads(spec.profile.sweep.threads or 1)
    run_one(spec, device=device, reuse=reuse, progress=False)
    return spec.key


def run_specs(specs: Sequence[RunSpec], jobs: int = 1, device: Optional[str] = None, reuse: bool = True,
              progress: bool = True, desc: str = "runs") -> None:
    """Run ``specs`` (those without a record first filtered out when ``reuse``), ``jobs`` at a time."""
    from tqdm import tqdm

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    todo = [s for s in specs if not (reuse and find_record(s) is not None)]
    todo.sort(key=lambda s: s.seed)     # seed-major: a partial sweep holds complete pairs of seeds
    if not todo:
        return
    for s in todo:                      # build (or verify) every dataset once, before the workers start
        load_data(s, progress=progress)
    bar = tqdm(total=len(todo), desc=desc, unit="run", disable=not progress or None)
    try:
        if jobs == 1 or len(todo) == 1:
            for s in todo:
                run_one(s, device=device, reuse=reuse)
                bar.update()
            return
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
            futures = [pool.submit(_worker, s, device, reuse) for s in todo]
            try:
                for f in as_completed(futures):
                    f.result()
                    bar.update()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()


def select_best(records: Sequence[dict[str, Any]]) -> Optional[tuple[str, int]]:
    """``(config, level)`` of the backdrop grid configuration with the best mean validation accuracy
    over seeds (ties: the earlier configuration). Only grid records of configurations other than
    ``none`` count; the test set plays no part."""
    groups: dict[tuple[str, int], list[float]] = {}
    for r in records:
        c = r["config"]
        if c["study"] == "grid" and c["config"] != "none" and "val_accuracy" in r["final"]:
            groups.setdefault((c["config"], c["level"]), []).append(r["final"]["val_accuracy"])
    if not groups:
        return None
    order = sorted(groups, key=lambda k: (CONFIGS.index(k[0]), k[1]))
    return max(order, key=lambda k: float(np.mean(groups[k])))


def plan_runs(profile: str | profiles.Profile, configs: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None, records: Optional[Sequence[dict]] = None) -> list[RunSpec]:
    """The grid plus the studies for the best configuration among ``records`` (default: on disk)."""
    grid = plan_grid(profile, configs, seeds)
    if records is None:
        records = [r for r in (read_record(runs_dir(profile) / f"{s.key}.json", s) for s in grid) if r]
    best = select_best(records)
    spec = next((s for s in grid if best and (s.config, s.level) == best), None)
    return grid + plan_studies(profile, spec, seeds)


def collect(profile: str | profiles.Profile) -> list[dict[str, Any]]:
    """Every readable record of the profile's full plan that is on disk (plan order)."""
    p = profiles.get(profile)
    out = []
    for s in plan_runs(p):
        rec = read_record(runs_dir(p) / f"{s.key}.json", s)
        if rec is not None:
            out.append(rec)
    return out


def load_sweep(profile: str | profiles.Profile) -> dict[str, Any]:
    """Read ``results/<profile>/gp_sweep.json`` (``FileNotFoundError`` naming it and the command)."""
    name = profiles.get(profile).name
    path = paths.results_dir(name) / "gp_sweep.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `backdrop-repro sweep --profile {name}` first")
    return json.loads(path.read_text())

