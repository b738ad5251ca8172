"""The learnability map's runs: tasks, cells, keys, the edge chosen from the map's records.

A *task* is a set of GP classes: single-scale 2-class tasks (``scale`` ``"small"`` or
``"large"``: the section's first length against one other length, weight 1) and the two-scale
4-class task (``scale`` ``"two-scale"``: one small-scale pair crossed with one large-scale pair,
weights ``twoscale_power``). A *cell* of the map is a task at one number of training images per
class. Each cell holds, per seed, one run of the no-backdrop 2-scale CNN (``model="cnn"``) and
one of the spectral-energy reference (``model="spectral"``), and per task one run of the
likelihood classifier (``model="oracle"``, on the shared test set: it has no seed and no
training set). Every seed has its own training and validation sets
(:meth:`~backdrop_repro.profiles.DataSection.split_seed`); the test set is shared.

Parts (``PARTS``), in the order the command runs them:

* ``map``: every cell, the profile's ``seeds``;
* ``edge``: the cells whose no-backdrop mean test accuracy over the map's seeds lies in
  ``edge_band`` (:func:`select_edge`, at most ``edge_cells`` per scale and training-set size), each over
  ``edge_seeds``: no backdrop, the mask at the task's scale at every probability, and the
  authors' setting (fine + coarse);
* ``twoscale``: the 4-class task built from the chosen small- and large-scale edge cells
  (:func:`select_twoscale`), no backdrop against every mask level and the authors' setting.

The edge is chosen on the map's *test* accuracy of the baseline (there is no validation step
here): the choice uses the baseline's level only, never a backdrop run, so it cannot favour a
candidate; the paired differences along the edge are measured on seeds 0..9, of which the map's
seeds are a part.

Keys: a hash of everything that defines a run (:meth:`LearnSpec.to_dict`: model, masks, data
recipes, budget; not the part nor the profile's name), so the edge's no-backdrop runs at the map's
seeds *are* the map's runs. Records: ``results/<profile>/learnability/<key>.json``; checkpoints
(caches) ``<data cache>/checkpoints/learnability/<key>.pt``.

Example
-------
>>> specs = plan_map("learnability")
>>> len(specs), sum(s.model == "oracle" for s in specs)     # 2 scales x 4 ratios x 3 sizes x 5 seeds x 2 nets + 8
(248, 8)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ... import paths, profiles, records
from ...seeds import content_key
from ...data.recipes import Recipe
from ...train import TrainConfig
from ..gp_sweep.plan import read_record

__all__ = ["PARTS", "MODELS", "SCALES", "SCHEMA_VERSION", "LearnSpec", "section", "tasks", "plan_map", "plan_edge",
           "plan_twoscale", "plan_part", "select_edge", "select_twoscale", "pick_twoscale", "twoscale_sizes", "cell_of",
           "records_dir", "find_record", "read_records", "map_cells", "energy_statistic"]

PARTS = ("map", "edge", "twoscale")
MODELS = ("cnn", "spectral", "oracle")
SCALES = ("small", "large", "two-scale")
SCHEMA_VERSION = 1


def section(profile: "str | profiles.Profile") -> profiles.LearnSection:
    """The profile's :class:`~backdrop_repro.profiles.LearnSection` (``ValueError`` naming the profiles that have one)."""
    p = profiles.get(profile)
    if p.learnability is None:
        have = [n for n in profiles.names() if profiles.get(n).learnability is not None]
        raise ValueError(f"profile {p.name!r} has no learnability section; use one of {have}")
    return p.learnability


@dataclass(frozen=True)
class LearnSpec:
    """One run: a ``model`` (``cnn`` | ``spectral`` | ``oracle``) on a task (``lengths``: per scale the
    class lengths, ``power``: weight per scale) with ``per_class`` training images per class and
    ``seed``; a ``cnn`` with masks has ``fine_prob``/``coarse_prob`` > 0 (``config`` names it:
    ``none``, ``fine``, ``coarse``, ``demo``). ``part`` says which part planned it (not part of the key)."""

    profile: profiles.Profile
    scale: str
    lengths: tuple[tuple[float, ...], ...]
    power: tuple[float, ...]
    per_class: int
    model: str
    seed: int = 0
    config: str = "none"
    fine_prob: float = 0.0
    coarse_prob: float = 0.0
    part: str = "map"

    @property
    def section(self) -> profiles.LearnSection:
        return section(self.profile)

    @property
    def ratio(self) -> tuple[float, ...]:
        """Per scale, the ratio of the two class lengths (longer / shorter)."""
        return tuple(round(max(ls) / min(ls), 4) for ls in self.lengths)

    @property
    def n_classes(self) -> int:
        return int(np.prod([len(ls) for ls in self.lengths]))

    @property
    def label(self) -> str:
        """``none``, ``fine 0.3``, ``coarse 0.95``, ``demo: fine 0.3 + coarse 0.95``, ``spectral``, ``likelihood``."""
        if self.model != "cnn":
            return {"spectral": "spectral", "oracle": "likelihood"}[self.model]
        if self.config == "none":
            return "none"
        parts = ([f"fine {self.fine_prob:g}"] if self.fine_prob else []) + \
                ([f"coarse {self.coarse_prob:g}"] if self.coarse_prob else [])
        return ("demo: " if self.config == "demo" else "") + " + ".join(parts)

    @property
    def cell(self) -> tuple[str, tuple[float, ...], int]:
        """``(scale, ratio, per_class)``: the map cell of the run (the oracle's ``per_class`` is 0)."""
        return (self.scale, self.ratio, self.per_class)

    def recipes(self) -> tuple[Recipe, Recipe, Recipe]:
        """``(train, val, test)`` recipes: the run seed's own training and validation sets, the shared test set."""
        d = self.section.data
        n = {"train": max(1, self.per_class), "val": d.val_per_class, "test": d.test_per_class}
        return tuple(Recipe(size=d.size, scales=self.lengths, power=self.power, per_class=n[split],
                            seed=d.split_seed(split, self.seed), method=d.method)
                     for split in ("train", "val", "test"))

    def train_config(self, device: str = "cpu") -> TrainConfig:
        """The convergence budget: ``epochs`` is the cap at the smallest ``per_class``; larger training
        sets keep its image visits, but at least ``min_epochs``."""
        s = self.section
        epochs = max(s.min_epochs, round(s.epochs * min(s.per_class) / self.per_class))
        spectral = self.model == "spectral"
        optim = replace(s.optim, lr=s.spectral_lr) if spectral else s.optim
        return TrainConfig(epochs=epochs, batch_size=s.batch_size, **asdict(optim), seed=self.seed,
                           eval_every=s.eval_every, test_every=epochs, channels_last=s.channels_last and not spectral,
                           device=device, patience=s.patience, loss_target=s.loss_target, select=s.select)

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the run (its identity): not the part, the profile's name nor the device."""
        s = self.section
        tr, va, te = self.recipes()
        out: dict[str, Any] = {"schema": SCHEMA_VERSION, "experiment": "learnability", "scale": self.scale,
                               "model": self.model, "data": {"test": te.to_dict()}}
        if self.model == "oracle":
            return out
        if self.model == "cnn":
            out["net"] = {"width": s.width, "n_fine": s.n_fine, "n_coarse": s.n_coarse, "kernel": 2, "init": "he",
                          "n_classes": self.n_classes}
            out.update(config=self.config, fine_prob=self.fine_prob, coarse_prob=self.coarse_prob)
        else:
            out["net"] = {"channels": s.spectral_channels, "kernel": s.spectral_kernel, "n_classes": self.n_classes}
        out["seed"] = self.seed
        out["data"].update(train=tr.to_dict(), val=va.to_dict())
        out["train"] = {k: v for k, v in self.train_config().to_dict().items() if k != "device"}
        return out

    @cached_property
    def key(self) -> str:
        """12-hex-digit hash of :meth:`to_dict` (computed once per spec)."""
        return content_key(self.to_dict(), 12)

    @property
    def record_path(self) -> Path:
        """Where the run's record lives: ``results/<profile>/learnability/<key>.json``."""
        return records_dir(self.profile) / f"{self.key}.json"

    # ------------------------------------------------ what the run core needs (:class:`..core.Spec`)
    @property
    def checkpoint(self) -> Optional[Path]:
        """:func:`ckpt_path` (None for the likelihood classifier, which does not train)."""
        return None if self.model == "oracle" else ckpt_path(self)

    @property
    def threads(self) -> Optional[int]:
        return self.section.threads

    default_device = None

    def net_options(self) -> dict[str, Any]:
        """The network's options (:func:`..core.build_model`): the 2-scale CNN with the section's fixed
        stride-2 layers, kernel 2, He init; or the spectral-energy net."""
        s = self.section
        if self.model == "spectral":
            return dict(n_classes=self.n_classes, channels=s.spectral_channels, kernel=s.spectral_kernel)
        return dict(width=s.width, n_classes=self.n_classes, n_fine=s.n_fine, n_coarse=s.n_coarse, kernel=2, init="he",
                    size=s.data.size)

    def oracle_settings(self) -> dict[str, Any]:
        """The likelihood classifier's defaults (:func:`backdrop_repro.gp.oracle.oracle_for_recipe`)."""
        return {}

    def oracle_extra(self, images: Any, labels: Any, classifier: Any) -> dict[str, Any]:
        """The classifier's test loss and, for a 2-class task, the energy statistic's class means, SDs and
        separation ``dprime`` (:func:`energy_statistic`)."""
        out: dict[str, Any] = {"test_loss": classifier.evaluate(images, labels)["loss"]}
        if self.n_classes == 2:
            e = energy_statistic(images)
            a, b = e[labels == 0], e[labels == 1]
            sd = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
            out["energy"] = {"mean": [float(a.mean()), float(b.mean())], "sd": [float(a.std(ddof=1)), float(b.std(ddof=1))],
                             "dprime": float(abs(a.mean() - b.mean()) / sd) if sd > 0 else None}
        return out

    def find_record(self) -> Optional[dict[str, Any]]:
        """:func:`find_record`."""
        return find_record(self)

    def record_extra(self) -> dict[str, Any]:
        """The map cell of the run (a study adds its own fields: see the confirm study's spec)."""
        return {"cell": {"scale": self.scale, "ratio": list(self.ratio), "per_class": self.per_class,
                         "lengths": [list(ls) for ls in self.lengths]}}


def energy_statistic(images: np.ndarray) -> np.ndarray:
    """``log`` of the mean squared slope of each image (periodic finite differences): ``(N,)``.

    For a standardised field with a squared-exponential kernel of length ``l`` the expected mean
    squared slope per axis is about ``1 / l^2``, so one number per image carries the class.
    Example: ``energy_statistic(np.zeros((1, 4, 4)) + 1)`` -> ``[-inf]`` (a flat image has no slope).
    """
    x = np.asarray(images, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(((np.roll(x, 1, -1) - x) ** 2 + (np.roll(x, 1, -2) - x) ** 2).mean(axis=(-2, -1)) / 2)


def tasks(profile: "str | profiles.Profile") -> list[tuple[str, tuple[tuple[float, float]], tuple[float]]]:
    """The single-scale tasks ``(scale, ((base, other),), (1.0,))``, small scale first, ratio ascending."""
    s = section(profile)
    out = []
    for scale, lengths in (("small", s.small), ("large", s.large)):
        if len(lengths) < 2 or len(set(lengths)) != len(lengths):
            raise ValueError(f"learnability.{scale} must hold a base length and >= 1 other distinct length, got {lengths!r}")
        out += [(scale, ((float(lengths[0]), float(o)),), (1.0,)) for o in sorted(lengths[1:], key=lambda v: abs(v / lengths[0]))]
    return out


def _seeds(seeds: Optional[Sequence[int]], default: Sequence[int]) -> list[int]:
    seeds = list(default if seeds is None else seeds)
    if not seeds or any(not isinstance(x, (int, np.integer)) or x < 0 for x in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    return [int(x) for x in seeds]


def plan_map(profile: "str | profiles.Profile", per_class: Optional[Sequence[int]] = None,
             seeds: Optional[Sequence[int]] = None) -> list[LearnSpec]:
    """The map's runs: per task its oracle, then per ``per_class`` (default: the section's) and seed a
    no-backdrop CNN and a spectral-energy net. Order: task, size, seed, model."""
    p = profiles.get(profile)
    s = section(p)
    sizes = list(s.per_class if per_class is None else per_class)
    bad = [n for n in sizes if n not in s.per_class]
    if bad or not sizes:
        raise ValueError(f"per_class must be a non-empty subset of {s.per_class}, got {sizes!r}")
    seeds = _seeds(seeds, s.seeds)
    out = []
    for scale, lengths, power in tasks(p):
        out.append(LearnSpec(p, scale, lengths, power, 0, "oracle"))
        out += [LearnSpec(p, scale, lengths, power, n, m, seed) for n in sizes for seed in seeds
                for m in ("cnn", "spectral")]
    return out


def records_dir(profile: "str | profiles.Profile") -> Path:
    """``results/<profile>/learnability``: one JSON record per run."""
    return paths.results_dir(profiles.get(profile)) / "learnability"


def ckpt_path(spec: LearnSpec) -> Path:
    return paths.data_dir() / "checkpoints" / "learnability" / f"{spec.key}.pt"


def find_record(spec: LearnSpec) -> Optional[dict[str, Any]]:
    """The spec's record in its profile's folder, else one copied from another profile's folder by
    :func:`backdrop_repro.records.adopt` (it carries ``copied_from``). Unreadable records are set aside
    by :func:`..gp_sweep.plan.read_record`."""
    own = spec.record_path
    rec = read_record(own, spec)
    return rec if rec is not None else records.adopt(spec, own, "learnability")


def read_records(specs: Sequence[LearnSpec]) -> list[tuple[LearnSpec, dict[str, Any]]]:
    """``(spec, record)`` of every spec whose record is in its profile's folder (plan order)."""
    out = []
    for s in specs:
        rec = read_record(s.record_path, s)
        if rec is not None:
            out.append((s, rec))
    return out


def cell_of(spec: LearnSpec) -> tuple[str, tuple[float, ...], int]:
    """The map cell of a run: ``(scale, ratio, per_class)``."""
    return spec.cell


def map_cells(profile: "str | profiles.Profile") -> dict[tuple, dict[str, Any]]:
    """Per map cell ``(scale, ratio, per_class)``: ``task`` (lengths, power), the no-backdrop CNN's
    per-seed test accuracies ``cnn`` ({seed: acc}) from the records on disk."""
    cells: dict[tuple, dict[str, Any]] = {}
    for spec, rec in read_records([s for s in plan_map(profile) if s.model == "cnn"]):
        if rec["final"].get("failed"):
            continue
        c = cells.setdefault(spec.cell, {"lengths": spec.lengths, "power": spec.power, "cnn": {}})
        c["cnn"][spec.seed] = rec["final"]["test_accuracy"]
    return cells


def select_edge(cells: dict[tuple, dict[str, Any]], band: tuple[float, float], per_size: int,
                min_seeds: int = 2) -> list[tuple]:
    """The edge: per scale and number of training images per class, up to ``per_size`` cells whose
    mean no-backdrop test accuracy lies in ``band`` (inclusive), nearest the band's centre first
    (ties: smaller ratio); cells with fewer than ``min_seeds`` seeds recorded do not count. The edge
    is a line through (ratio, training images): one point of it per training-set size, so a larger
    training set adds its own edge cell instead of displacing another size's. Returns cell keys,
    small scale first, then fewer images first.

    Example: ``select_edge({("small", (1.2,), 25): {"cnn": {0: 0.7, 1: 0.8}}}, (0.6, 0.9), 1)``
    -> ``[("small", (1.2,), 25)]``.
    """
    lo, hi = band
    centre = (lo + hi) / 2
    groups: dict[tuple, list] = {}
    for key, c in cells.items():
        if len(c["cnn"]) < min_seeds:
            continue
        m = float(np.mean(list(c["cnn"].values())))
        if lo <= m <= hi:
            groups.setdefault((key[0], key[2]), []).append((abs(m - centre), key[1], key))
    out = []
    for scale in ("small", "large"):
        for n in sorted(n for sc, n in groups if sc == scale):
            out += [k for *_, k in sorted(groups[(scale, n)])[:per_size]]
    return out


def select_twoscale(cells: dict[tuple, dict[str, Any]], edge: Sequence[tuple], band: tuple[float, float]) -> Optional[dict[str, Any]]:
    """The two-scale task from the edge: a small-scale and a large-scale edge cell, preferring a pair at
    the same number of training images per class (nearest the band's centre together); without one,
    the best cell of each scale at the larger of their sizes. None when a scale has no edge cell.
    Returns ``{"small": cell, "large": cell, "per_class": n}``."""
    centre = sum(band) / 2
    small = [k for k in edge if k[0] == "small"]
    large = [k for k in edge if k[0] == "large"]
    if not small or not large:
        return None

    def dist(k: tuple) -> float:
        return abs(float(np.mean(list(cells[k]["cnn"].values()))) - centre)

    pairs = sorted((dist(a) + dist(b), a[2], a, b) for a in small for b in large if a[2] == b[2])
    if pairs:
        _, n, a, b = pairs[0]
        return {"small": a, "large": b, "per_class": n}
    a, b = min(small, key=dist), min(large, key=dist)
    return {"small": a, "large": b, "per_class": max(a[2], b[2])}


def _candidates(s: profiles.LearnSection, scale: str) -> list[tuple[str, float, float]]:
    """``(config, fine, coarse)`` of the backdrop candidates at a task's scale, then the authors' setting."""
    fine = [("fine", float(p), 0.0) for p in s.fine_probs]
    coarse = [("coarse", 0.0, float(p)) for p in s.coarse_probs]
    demo = [("demo", float(s.demo_probs[0]), float(s.demo_probs[1]))]
    return {"small": fine, "large": coarse, "two-scale": fine + coarse}[scale] + demo


def _comparison(p: profiles.Profile, scale: str, lengths, power, per_class: int, seeds: Sequence[int],
                part: str) -> list[LearnSpec]:
    s = section(p)
    configs = [("none", 0.0, 0.0)] + _candidates(s, scale)
    return [LearnSpec(p, scale, lengths, power, per_class, "cnn", seed, c, f, co, part)
            for c, f, co in configs for seed in seeds]


def plan_edge(profile: "str | profiles.Profile", cells: Optional[dict] = None,
              seeds: Optional[Sequence[int]] = None) -> list[LearnSpec]:
    """The edge comparison's runs (baseline and candidates over ``edge_seeds``) for the cells
    :func:`select_edge` picks from ``cells`` (default: the map's records on disk)."""
    p = profiles.get(profile)
    s = section(p)
    cells = map_cells(p) if cells is None else cells
    seeds = _seeds(seeds, s.edge_seeds)
    out = []
    for key in select_edge(cells, s.edge_band, s.edge_cells):
        c = cells[key]
        out += _comparison(p, key[0], c["lengths"], c["power"], key[2], seeds, "edge")
    return out


def pick_twoscale(profile: "str | profiles.Profile", cells: dict[tuple, dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The profile's two-scale pair: :func:`select_twoscale` over the edge :func:`select_edge` picks from ``cells``."""
    s = section(profile)
    return select_twoscale(cells, select_edge(cells, s.edge_band, s.edge_cells), s.edge_band)


def plan_twoscale(profile: "str | profiles.Profile", cells: Optional[dict] = None,
                  seeds: Optional[Sequence[int]] = None) -> list[LearnSpec]:
    """The two-scale 4-class task's runs (its oracle first) for the pair :func:`select_twoscale` picks."""
    p = profiles.get(profile)
    s = section(p)
    cells = map_cells(p) if cells is None else cells
    pick = pick_twoscale(p, cells)
    if pick is None:
        return []
    lengths = (cells[pick["small"]]["lengths"][0], cells[pick["large"]]["lengths"][0])
    power = tuple(float(w) for w in s.twoscale_power)
    seeds = _seeds(seeds, s.edge_seeds)
    out = [LearnSpec(p, "two-scale", lengths, power, 0, "oracle", part="twoscale")]
    for n in twoscale_sizes(s, pick["per_class"]):
        out += _comparison(p, "two-scale", lengths, power, n, seeds, "twoscale")
    return out


def twoscale_sizes(s: profiles.LearnSection, first: int) -> list[int]:
    """The two-scale task's training-set sizes: the chosen pair's ``first``, then ``s.twoscale_sizes``
    (repeats dropped, order kept)."""
    return list(dict.fromkeys([int(first), *map(int, s.twoscale_sizes)]))


def plan_part(profile: "str | profiles.Profile", part: str, cells: Optional[dict] = None) -> list[LearnSpec]:
    """The runs of one of :data:`PARTS` (``edge``/``twoscale`` chosen from ``cells`` or the records on disk)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    return {"map": lambda: plan_map(profile), "edge": lambda: plan_edge(profile, cells),
            "twoscale": lambda: plan_twoscale(profile, cells)}[part]()
