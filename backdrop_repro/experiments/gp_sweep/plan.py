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
that share a run (``default`` is a subset of ``scaled``) share its key. This module plans the
runs and reads their records; :mod:`.run` trains them, :mod:`.report` tables them.
Records: ``results/<profile>/gp_runs/<key>.json``; checkpoints (caches, not results):
``<data cache>/checkpoints/gp_sweep/<key>.pt``.

The tables quote the likelihood classifier's accuracy on the test set (the reference): a
:class:`ReferenceSpec` (the test set's recipe and the classifier's settings, keyed the same way)
whose record ``results/<profile>/gp_reference/<key>.json`` the runner writes
(:func:`.run.write_references`) and the report reads (:func:`read_reference`).

Example
-------
>>> len(plan_grid("scaled"))
110
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ... import paths, profiles
from ... import records as _records
from ...checks import is_int
from ...seeds import content_key
from ...train import TrainConfig

__all__ = ["CONFIGS", "STUDIES", "RunSpec", "plan_grid", "plan_studies", "plan_runs", "select_best", "collect",
           "load_sweep", "runs_dir", "read_record", "find_record", "ckpt_path", "REFERENCE_CLASSIFIER",
           "ReferenceSpec", "reference_specs", "read_reference"]

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
        """``(train, val, test)`` :class:`~backdrop_repro.data.recipes.Recipe` of the run."""
        from ...data.datasets import split_recipe

        return (split_recipe(self.profile, "train", self.per_class, self.method, run_seed=self.seed),
                split_recipe(self.profile, "val", None, self.method, run_seed=self.seed),
                split_recipe(self.profile, "test", None, self.method, run_seed=self.seed))

    def train_config(self, device: str = "cpu") -> TrainConfig:
        """The budget: the profile's epochs, or for another training size the same image visits;
        with a convergence budget (``patience``/``loss_target``/``select``) the profile's epochs
        are the cap for every training size and every run stops by the same rule."""
        s, d = self.profile.sweep, self.profile.data
        n = self.per_class or d.per_class
        converge = s.patience is not None or s.loss_target is not None or s.select != "last"
        epochs = s.epochs if converge else max(1, round(s.epochs * d.per_class / n))
        eval_every = s.eval_every if converge else max(1, round(s.eval_every * epochs / s.epochs))
        return TrainConfig(epochs=epochs, batch_size=s.batch_size, **asdict(s.optim), seed=self.seed,
                           eval_every=eval_every, test_every=epochs, channels_last=s.channels_last,
                           eval_batch_size=s.eval_batch_size,
                           precision=s.precision, device=device,
                           patience=s.patience, loss_target=s.loss_target, select=s.select)

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the run (its identity; device and profile name excluded)."""
        s = self.profile.sweep
        tr, va, te = self.recipes()
        model = {"width": s.width, "kernel": s.kernel, "n_fine": s.n_fine, "n_coarse": s.n_coarse,
                 "size": self.profile.data.size, "init": s.init}
        if s.impl != "conv":        # only then: the keys of runs of the default formulation stay as they were
            model["impl"] = s.impl
            if s.impl == "blocked":
                model["stem"] = s.stem
        return {"schema": SCHEMA_VERSION, "study": self.study, "config": self.config, "level": self.level,
                "fine_prob": self.fine_prob, "coarse_prob": self.coarse_prob, "seed": self.seed,
                "model": model,
                "train": {k: v for k, v in self.train_config().to_dict().items() if k != "device"},
                "data": {"train": tr.to_dict(), "val": va.to_dict(), "test": te.to_dict()}}

    @cached_property
    def key(self) -> str:
        """12-hex-digit hash of :meth:`to_dict` (computed once per spec: a frozen spec's key cannot change)."""
        return content_key(self.to_dict(), 12)

    # ------------------------------------------------ what the run core needs (:class:`..core.Spec`)
    model = "cnn"

    @property
    def record_path(self) -> Path:
        """``results/<profile>/gp_runs/<key>.json``."""
        return runs_dir(self.profile) / f"{self.key}.json"

    @property
    def checkpoint(self) -> Path:
        """The run's checkpoint, :func:`ckpt_path`."""
        return ckpt_path(self)

    @property
    def threads(self) -> Optional[int]:
        return self.profile.sweep.threads

    @property
    def default_device(self) -> Optional[str]:
        return self.profile.sweep.device

    def net_options(self) -> dict[str, Any]:
        """The 2-scale CNN's options (:func:`..core.build_model`): masks placed by receptive field
        unless the profile fixes ``n_fine``/``n_coarse``."""
        s, d = self.profile.sweep, self.profile.data
        return dict(width=s.width, kernel=s.kernel, init=s.init, impl=s.impl, stem=s.stem, n_fine=s.n_fine,
                    n_coarse=s.n_coarse, size=d.size, small_cl=d.scales[0], large_cl=d.scales[-1])

    def find_record(self) -> Optional[dict[str, Any]]:
        """:func:`find_record`."""
        return find_record(self)

    def record_extra(self) -> dict[str, Any]:
        """Nothing: a GP sweep record has the core's fields only."""
        return {}


def _levels(p: profiles.Profile, config: str) -> list[tuple[int, float, float]]:
    s = p.sweep
    if config == "none":
        return [(0, 0.0, 0.0)]
    if config == "demo":
        return [(0, float(s.demo_probs[0]), float(s.demo_probs[1]))] if s.demo_probs else []
    return [(i, float(f) if config in ("fine", "both") else 0.0, float(c) if config in ("coarse", "both") else 0.0)
            for i, (f, c) in enumerate(zip(s.fine_probs, s.coarse_probs))]


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds or any(not is_int(s) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    return [int(s) for s in seeds]


def plan_grid(profile: str | profiles.Profile, configs: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None) -> list[RunSpec]:
    """The grid's runs in a fixed order (configuration x level x seed).

    Example: ``len(plan_grid("scaled")) == (1 + 3 + 3 + 3 + 1) * 10`` (110 runs).
    """
    p = profiles.get(profile)
    configs = list((p.sweep.configs or CONFIGS) if configs is None else configs)
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
    seeds = _check_seeds((p.sweep.study_seeds or p.sweep.seeds) if seeds is None else seeds)
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
    return paths.results_dir(profiles.get(profile)) / "gp_runs"


def ckpt_path(spec: RunSpec) -> Path:
    """The run's checkpoint (a cache, not a result): ``<data cache>/checkpoints/gp_sweep/<key>.pt``."""
    return paths.data_dir() / "checkpoints" / "gp_sweep" / f"{spec.key}.pt"


def read_record(path: Path, spec: Optional[RunSpec] = None) -> Optional[dict[str, Any]]:
    """The run record at ``path`` if it is usable and (given ``spec``) belongs to it, else None: the
    package's one record reader, :func:`backdrop_repro.records.read_record` (checks schema, values,
    predictions; a diverged run is returned with ``final.failed``). A malformed record is named in a
    warning and set aside as ``<name>.corrupt`` only in ``spec``'s own working folder (the run is then
    trained again), never in a committed reference or another profile's folder.
    """
    return _records.read_record(path, spec)


def find_record(spec: RunSpec) -> Optional[dict[str, Any]]:
    """The spec's record in its profile's folder, else one copied from another profile's folder by
    :func:`backdrop_repro.records.adopt` (it carries ``copied_from``, so a reproduction check never
    counts it as a re-run); None when no profile holds one."""
    own = runs_dir(spec.profile) / f"{spec.key}.json"
    rec = read_record(own, spec)
    return rec if rec is not None else _records.adopt(spec, own, "gp_runs")


#: the likelihood classifier of the tables' reference: :func:`backdrop_repro.gp.oracle.oracle_for_recipe`'s
#: settings (part of the reference's key)
REFERENCE_CLASSIFIER = {"mode": "auto", "floor": 1e-6, "amplitudes": "fixed", "window": "auto"}


@dataclass(frozen=True)
class ReferenceSpec:
    """The likelihood classifier scored on a profile's test set (``method``: the test data's sampler,
    None for the profile's; the robustness row's for its reference). Keyed like a run by
    :meth:`to_dict`: the test set's recipe and :data:`REFERENCE_CLASSIFIER`.

    Example: ``ReferenceSpec(profiles.get("default")).key == ReferenceSpec(profiles.get("replication")).key``
    (the two profiles share their test set).
    """

    profile: profiles.Profile
    method: Optional[str] = None

    def recipes(self):
        """``(test,)``: the :class:`~backdrop_repro.data.recipes.Recipe` of the test set scored."""
        from ...data.recipes import split_recipe

        return (split_recipe(self.profile, "test", None, self.method),)

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the reference (its identity): the test recipe and the classifier's settings."""
        return {"schema": SCHEMA_VERSION, "experiment": "gp_reference", "data": {"test": self.recipes()[0].to_dict()},
                "classifier": dict(REFERENCE_CLASSIFIER)}

    @cached_property
    def key(self) -> str:
        """12-hex-digit hash of :meth:`to_dict`."""
        return content_key(self.to_dict(), 12)

    @property
    def record_path(self) -> Path:
        """``results/<profile>/gp_reference/<key>.json``."""
        return paths.results_dir(self.profile) / "gp_reference" / f"{self.key}.json"

    # ------------------------------------------------ what the run core needs (:class:`..core.Spec`)
    model = "oracle"
    label = "likelihood classifier"
    seed = 0
    checkpoint = None
    threads = None
    default_device = "cpu"

    def oracle_settings(self) -> dict[str, Any]:
        """:data:`REFERENCE_CLASSIFIER`."""
        return dict(REFERENCE_CLASSIFIER)

    def oracle_extra(self, images: Any, labels: Any, classifier: Any) -> dict[str, Any]:
        """The test set's sampler (``method``), which the tables quote."""
        return {"method": self.recipes()[0].method}

    def find_record(self) -> Optional[dict[str, Any]]:
        """The reference's record in its profile's folder, else one adopted from another profile's
        (:func:`backdrop_repro.records.adopt`: the same test set and classifier have the same key)."""
        return read_record(self.record_path, self) or _records.adopt(self, self.record_path, "gp_reference")

    def record_extra(self) -> dict[str, Any]:
        return {}


def reference_specs(profile: str | profiles.Profile, records: Sequence[dict[str, Any]]) -> dict[str, ReferenceSpec]:
    """The references the tables of ``records`` quote: ``"main"`` (the profile's test set) once there is a
    record, and ``"robustness"`` (the robustness row's sampler) once there is a robustness record.

    Example: ``reference_specs("smoke", []) == {}``.
    """
    p = profiles.get(profile)
    out = {"main": ReferenceSpec(p)} if records else {}
    if p.sweep.robustness_method and any(r["config"]["study"] == "robustness" for r in records):
        out["robustness"] = ReferenceSpec(p, p.sweep.robustness_method)
    return out


def read_reference(spec: ReferenceSpec) -> Optional[dict[str, Any]]:
    """The recorded reference as the tables quote it, ``{"test_accuracy", "method", "exact",
    "small_scale_accuracy", "large_scale_accuracy"}`` (the last two: the first and the last scale),
    or None when its record is missing or unusable (read by :func:`read_record`)."""
    rec = read_record(spec.record_path, spec)
    if rec is None or rec["final"].get("failed"):
        return None
    f = rec["final"]
    sc = f.get("test_scale_accuracy") or [None]
    return {"test_accuracy": f["test_accuracy"], "method": f["method"], "exact": bool(f["exact"]),
            "small_scale_accuracy": sc[0], "large_scale_accuracy": sc[-1] if len(sc) > 1 else None}


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
    p = profiles.get(profile)
    if p.sweep.study_config is not None:        # fixed in advance: no selection
        spec = next((s for s in grid if s.config == p.sweep.study_config), None)
    else:
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

