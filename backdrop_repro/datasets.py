"""Class recipes (crosses of correlation lengths), the on-disk format and the torch Dataset.

A :class:`Recipe` names one correlation length per scale for every class; a class sample is
``Σ_s power_s · S_s`` with each base field ``S_s`` a standardised GP sample (:mod:`.gp`) used
exactly once in the whole dataset. Samples are interleaved one per class in turn (label
``i % n_classes``), as in the paper's pickle.

On disk (one folder per dataset): ``images.npy`` (float32 ``N × H × W``, memory-mappable),
``labels.npy`` (int64 ``N``) and ``meta.json`` (recipe or source, class names, versions and the
sha256 of both ``.npy`` files). Every write is atomic and every read verifies the hashes.

Example
-------
>>> ds = build_dataset(SMOKE, progress=False)          # doctest: +SKIP
>>> image, label = ds[0]; image.shape, label           # doctest: +SKIP
(torch.Size([1, 64, 64]), 0)
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from . import gp, profiles
from .paths import atomic_path, data_dir, versions, write_json

__all__ = [
    "Recipe", "PAPER", "SMOKE", "SPLITS", "split_recipe", "FORMAT_VERSION", "CacheError", "GPDataset",
    "class_spectrum", "base_field_plan", "generate", "write_dataset", "read_dataset",
    "build_dataset", "recipe_key", "add_cli",
]

#: bump when the generator or the on-disk format changes (invalidates cached datasets)
FORMAT_VERSION = 2
#: every correlation length must satisfy size >= MIN_SIZE_PER_LENGTH * length
MIN_SIZE_PER_LENGTH = 1.5


class CacheError(ValueError):
    """A dataset file on disk is missing, corrupted or does not match its ``meta.json``."""


def _fmt(length: float) -> str:
    return f"{float(length):g}"


@dataclass(frozen=True)
class Recipe:
    """How to build a multi-scale GP class dataset.

    Fields: ``size`` (image side, px); ``scales`` (per scale, the tuple of correlation lengths
    in px the classes choose from, e.g. ``((9.5, 10.0), (80.0, 140.0))``); ``power`` (one weight
    per scale); ``per_class`` (samples per class); ``seed``; ``method`` (``"fft"``,
    ``"matched"`` or ``"faithful"``, see :func:`backdrop_repro.gp.sample_field`).
    Lists are converted to tuples. Invalid values raise ``ValueError`` naming the field; every
    length must fit: ``size >= 1.5 × length``.

    Example
    -------
    >>> r = Recipe(size=64, scales=((2, 3), (8, 14)), power=(0.75, 1.25), per_class=2)
    >>> r.classes[1], r.class_names[1]
    ((3.0, 8.0), '3-8')
    """

    size: int
    scales: tuple[tuple[float, ...], ...]
    power: tuple[float, ...]
    per_class: int
    seed: int = 0
    method: str = "matched"

    def __post_init__(self) -> None:
        def bad(field: str, accepted: str, got: Any) -> ValueError:
            return ValueError(f"Recipe.{field} must be {accepted}, got {got!r}")

        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 8:
            raise bad("size", "an integer >= 8 (pixels)", self.size)
        try:
            scales = tuple(tuple(float(v) for v in s) for s in self.scales)
        except TypeError:
            raise bad("scales", "a sequence of sequences of correlation lengths", self.scales) from None
        if not scales or any(len(s) == 0 for s in scales):
            raise bad("scales", "a non-empty sequence of non-empty sequences of lengths", self.scales)
        for s in scales:
            for v in s:
                if not np.isfinite(v) or v <= 0:
                    raise bad("scales", "positive finite correlation lengths (px)", self.scales)
            if len(set(s)) != len(s):
                raise bad("scales", "distinct lengths within each scale", self.scales)
        longest = max(max(s) for s in scales)
        if self.size < MIN_SIZE_PER_LENGTH * longest:
            raise ValueError(f"Recipe.size must be >= {MIN_SIZE_PER_LENGTH} × the longest correlation "
                             f"length ({longest:g} px), i.e. >= {int(np.ceil(MIN_SIZE_PER_LENGTH * longest))}, "
                             f"got {self.size}")
        try:
            power = tuple(float(p) for p in self.power)
        except TypeError:
            raise bad("power", "a sequence of weights, one per scale", self.power) from None
        if len(power) != len(scales):
            raise ValueError(f"Recipe.power must have one weight per scale ({len(scales)}), got {len(power)}: "
                             f"{self.power!r}")
        if any(not np.isfinite(p) or p <= 0 for p in power):
            raise bad("power", "positive finite weights", self.power)
        if isinstance(self.per_class, bool) or not isinstance(self.per_class, (int, np.integer)) or self.per_class < 1:
            raise bad("per_class", "an integer >= 1", self.per_class)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise bad("seed", "a non-negative integer", self.seed)
        if self.method not in gp.METHODS:
            raise bad("method", f"one of {gp.METHODS}", self.method)
        if self.method == "faithful" and any(v >= gp.LARGE_SCALE_MIN for s in scales for v in s) \
                and self.size % gp.LARGE_UPSCALE:
            raise bad("size", f"a multiple of {gp.LARGE_UPSCALE} for method 'faithful' with lengths >= "
                      f"{gp.LARGE_SCALE_MIN:g}", self.size)
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "power", power)
        object.__setattr__(self, "per_class", int(self.per_class))
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def classes(self) -> list[tuple[float, ...]]:
        """Per-class length tuples in label order (the first scale varies fastest)."""
        return [tuple(reversed(c)) for c in itertools.product(*reversed(self.scales))]

    @property
    def class_names(self) -> dict[int, str]:
        """``{label: "9.5-80", ...}``: the class lengths joined by ``-``."""
        return {i: "-".join(_fmt(v) for v in c) for i, c in enumerate(self.classes)}

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return self.n_classes * self.per_class

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with some fields changed (``dataclasses.replace``), validated again."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {"size": self.size, "scales": [list(s) for s in self.scales], "power": list(self.power),
                "per_class": self.per_class, "seed": self.seed, "method": self.method}

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return cls(size=d["size"], scales=d["scales"], power=d["power"], per_class=d["per_class"],
                   seed=d["seed"], method=d["method"])


#: the paper's dataset: 4 classes of 1024² crosses, 25 per class (Zenodo 10.5281/zenodo.1252464)
PAPER = Recipe(size=1024, scales=((9.5, 10.0), (80.0, 140.0)), power=(0.75, 1.25), per_class=25,
               seed=1806, method="faithful")
#: seconds to build: 64², lengths chosen to fit (2 vs 3 px small, 8 vs 14 px large), 2 per class
SMOKE = Recipe(size=64, scales=((2.0, 3.0), (8.0, 14.0)), power=(0.75, 1.25), per_class=2,
               seed=1806, method="matched")
#: the splits of a profile's data, each drawn from its own seed
SPLITS = ("train", "val", "test")


def split_recipe(profile: "str | profiles.Profile", split: str = "train", per_class: int | None = None,
           method: str | None = None) -> Recipe:
    """The :class:`Recipe` of one split of a profile's data (see :mod:`backdrop_repro.profiles`).

    ``split`` is ``"train"``, ``"val"`` or ``"test"`` (independent seeds); ``per_class`` and
    ``method`` override the profile's (data-size curve, robustness row).
    Example: ``split_recipe("default", "test").per_class == 250``.
    """
    d = profiles.get(profile).data
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n = {"train": d.per_class, "val": d.val_per_class, "test": d.test_per_class}[split]
    seed = {"train": d.train_seed, "val": d.val_seed, "test": d.test_seed}[split]
    return Recipe(size=d.size, scales=d.scales, power=d.power, per_class=per_class or n, seed=seed,
                  method=method or d.method)


def _length_spectrum(n: int, cl: float, method: str) -> np.ndarray:
    return gp.se_spectrum(n, cl) if method == "fft" else gp.matched_spectrum(n, cl)


def class_spectrum(recipe: Recipe, label: int) -> np.ndarray:
    """``(size, size)`` spectrum of class ``label`` on the fftfreq grid: ``Σ_s power_s² S_s``.

    ``S_s`` is :func:`gp.se_spectrum` for ``method="fft"`` (then exact: ``E|FFT2(x)|²/n²``) and
    :func:`gp.matched_spectrum` otherwise (the stationary spectrum the samples are windows of).
    It ignores the per-sample standardisation of each scale (which removes k = 0 and rescales
    the rest, a large effect when few blobs fit in an image); :func:`oracle.recipe_components`
    corrects for it.
    Example: ``class_spectrum(SMOKE, 0).mean() == 0.75**2 + 1.25**2``.
    """
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < recipe.n_classes:
        raise ValueError(f"label must be an integer in [0, {recipe.n_classes}), got {label!r}")
    lengths = recipe.classes[int(label)]
    return sum(p * p * _length_spectrum(recipe.size, cl, recipe.method) for p, cl in zip(recipe.power, lengths))


def base_field_plan(recipe: Recipe) -> list[list[tuple[int, int, int]]]:
    """For each sample (in dataset order), the base fields it sums: ``(scale, length_index, use)``.

    Base field ``(s, a, u)`` is sample ``u`` of ``SeedSequence(seed, spawn_key=(s, a))`` at
    length ``scales[s][a]``; ``u`` counts the uses of that length in dataset order, so no base
    field is used twice. Example: ``base_field_plan(SMOKE)[2] == [(0, 0, 1), (1, 1, 0)]``.
    """
    used: dict[tuple[int, int], int] = {}
    plan = []
    classes = recipe.classes
    for i in range(len(recipe)):
        lengths = classes[i % recipe.n_classes]
        row = []
        for s, cl in enumerate(lengths):
            a = recipe.scales[s].index(cl)
            u = used.get((s, a), 0)
            used[(s, a)] = u + 1
            row.append((s, a, u))
        plan.append(row)
    return plan


def _base_seed(recipe: Recipe, s: int, a: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(recipe.seed, spawn_key=(s, a))


def generate(recipe: Recipe, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Generate the dataset in memory: ``images`` float32 ``(N, size, size)``, ``labels`` int64 ``(N,)``.

    Example: ``images, labels = generate(SMOKE, progress=False)`` gives ``(8, 64, 64)`` and
    ``[0, 1, 2, 3, 0, 1, 2, 3]``.
    """
    from tqdm import tqdm

    n = recipe.size
    plan = base_field_plan(recipe)
    images = np.empty((len(recipe), n, n), dtype=np.float32)
    labels = np.arange(len(recipe), dtype=np.int64) % recipe.n_classes
    disable = not progress or os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")
    for i, row in enumerate(tqdm(plan, desc=f"GP {n}² {recipe.method}", unit="img", disable=disable)):
        acc = np.zeros((n, n), dtype=np.float64)
        for s, a, u in row:
            cl = recipe.scales[s][a]
            field = gp.sample_field(n, cl, 1, _base_seed(recipe, s, a), method=recipe.method,
                                    dtype=np.float64, start=u)[0]
            acc += recipe.power[s] * field
        images[i] = acc
    return images, labels


# --------------------------------------------------------------------------------------------
# on-disk format
# --------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_dataset(directory: str | Path, images: np.ndarray, labels: np.ndarray, meta: dict) -> Path:
    """Write ``images.npy`` (float32 N×H×W), ``labels.npy`` (int64 N) and ``meta.json`` atomically.

    ``meta`` (JSON-serialisable: recipe or source, ``class_names``...) is stored with
    ``format_version``, ``versions`` and ``sha256`` (of both ``.npy`` files) added. ``meta.json``
    is written last, so an interrupted write never verifies. Returns ``directory``.
    Example: ``write_dataset(tmp / "ds", images, labels, {"class_names": {0: "a"}})``.
    """
    directory = Path(directory)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    directory.mkdir(parents=True, exist_ok=True)
    meta_path = directory / "meta.json"
    if meta_path.exists():
        meta_path.unlink()                       # the old hash must never vouch for new files
    digests = {}
    for name, arr, dt in (("images.npy", images, np.float32), ("labels.npy", labels, np.int64)):
        with atomic_path(directory / name) as tmp:
            np.save(tmp, np.ascontiguousarray(arr, dtype=dt))
            digests[name] = _sha256(tmp)
    full = dict(meta)
    full.setdefault("class_names", {})
    full["class_names"] = {str(k): v for k, v in full["class_names"].items()}
    full.update(format_version=FORMAT_VERSION, shape=list(images.shape), versions=versions(),
                sha256=digests)
    write_json(meta_path, full)
    return directory


class GPDataset(Dataset):
    """A GP class dataset: ``images`` (N, H, W) float32 (possibly a memmap), ``labels`` (N,) int64.

    ``ds[i]`` is ``(tensor (1, H, W) float32, int label)``; ``class_names`` is ``{label: name}``;
    ``meta`` the stored ``meta.json`` (empty for in-memory data).

    Example
    -------
    >>> ds = GPDataset(np.zeros((2, 8, 8), np.float32), np.array([0, 1]), {0: "a", 1: "b"})
    >>> ds[1][0].shape, ds[1][1], len(ds)
    (torch.Size([1, 8, 8]), 1, 2)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, class_names: dict[int, str] | None = None,
                 meta: dict | None = None, path: Path | None = None) -> None:
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise ValueError(f"images must be (N, H, W) and labels (N,), got {images.shape} and {labels.shape}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = {int(k): str(v) for k, v in (class_names or {}).items()}
        self.meta = meta or {}
        self.path = path

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getstate__(self) -> dict:
        # DataLoader workers: send the file name, not the (memory-mapped) pixels
        state = dict(self.__dict__)
        if isinstance(self.images, np.memmap) and self.path is not None:
            state["images"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.images is None:
            self.images = np.load(Path(self.path) / "images.npy", mmap_mode="r", allow_pickle=False)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(np.array(self.images[i], dtype=np.float32, copy=True))
        return x.unsqueeze(0), int(self.labels[i])

    @property
    def recipe(self) -> Recipe | None:
        r = self.meta.get("recipe")
        try:
            return Recipe.from_dict(r) if r else None
        except (KeyError, TypeError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"GPDataset(n={len(self)}, shape={tuple(self.images.shape[1:])}, classes={self.class_names})"


def read_dataset(directory: str | Path, mmap: bool = True, verify: bool = True) -> GPDataset:
    """Load a dataset written by :func:`write_dataset`, checking both files' sha256 first.

    Raises ``CacheError`` naming the file when a file is missing, its hash differs from
    ``meta.json`` or its shape does not match. ``mmap=True`` memory-maps ``images.npy``.
    Example: ``ds = read_dataset(build_dataset(SMOKE).path)``.
    """
    directory = Path(directory)
    meta_path = directory / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CacheError(f"{meta_path}: missing") from None
    except json.JSONDecodeError as err:
        raise CacheError(f"{meta_path}: not valid JSON ({err})") from None
    expected = meta.get("sha256") or {}
    for name in ("images.npy", "labels.npy"):
        path = directory / name
        if not path.exists():
            raise CacheError(f"{path}: missing")
        if name not in expected:
            raise CacheError(f"{meta_path}: no sha256 recorded for {name}")
        if verify:
            got = _sha256(path)
            if got != expected[name]:
                raise CacheError(f"{path}: sha256 {got} does not match {expected[name]} recorded in meta.json")
    try:
        images = np.load(directory / "images.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        labels = np.load(directory / "labels.npy", allow_pickle=False)
    except ValueError as err:
        raise CacheError(f"{directory}: unreadable .npy file ({err})") from None
    if list(images.shape) != meta.get("shape") or images.dtype != np.float32 or labels.dtype != np.int64:
        raise CacheError(f"{directory / 'images.npy'}: shape/dtype {images.shape}/{images.dtype} "
                         f"does not match meta.json {meta.get('shape')}")
    names = {int(k): v for k, v in meta.get("class_names", {}).items()}
    return GPDataset(images, labels, names, meta, path=directory)


def recipe_key(recipe: Recipe) -> str:
    """16-hex-digit key of the recipe and ``FORMAT_VERSION`` (the cache folder name)."""
    blob = json.dumps({"recipe": recipe.to_dict(), "format_version": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_dataset(recipe: Recipe, cache_dir: str | Path | None = None, progress: bool = True,
                  directory: str | Path | None = None) -> GPDataset:
    """Generate the dataset of ``recipe`` or reuse its verified cache.

    The dataset lives in ``directory`` if given, else ``<cache_dir or data_dir()/"gp">/<recipe_key>``.
    A cached copy is used only if its ``meta.json`` holds the same recipe and format version and
    both files match their sha256; otherwise (corrupted, truncated, mismatched) it is regenerated
    with a warning. Example: ``ds = build_dataset(SMOKE, progress=False)``.
    """
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    if directory is None:
        root = Path(cache_dir) if cache_dir is not None else data_dir() / "gp"
        directory = root / recipe_key(recipe)
    directory = Path(directory)
    if (directory / "meta.json").exists():
        try:
            ds = read_dataset(directory)
            if ds.meta.get("recipe") == recipe.to_dict() and ds.meta.get("format_version") == FORMAT_VERSION:
                return ds
            reason = "it holds a different recipe or format version"
        except CacheError as err:
            reason = str(err)
        warnings.warn(f"regenerating the GP dataset in {directory}: {reason}", stacklevel=2)
    images, labels = generate(recipe, progress=progress)
    meta = {"source": "generated", "recipe": recipe.to_dict(), "recipe_key": recipe_key(recipe),
            "class_names": recipe.class_names, "classes": [list(c) for c in recipe.classes],
            "order": "interleaved: label = index % n_classes"}
    write_dataset(directory, images, labels, meta)
    return read_dataset(directory)


# --------------------------------------------------------------------------------------------
# CLI: backdrop-repro generate
# --------------------------------------------------------------------------------------------
def _cmd_generate(args: argparse.Namespace) -> None:
    rec = split_recipe(args.profile, args.split)
    changes = {}
    if args.method:
        changes["method"] = args.method
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.per_class is not None:
        changes["per_class"] = args.per_class
    if changes:
        rec = rec.replace(**changes)
    ds = build_dataset(rec, directory=args.out, progress=True)
    print(f"{len(ds)} images {tuple(ds.images.shape[1:])}, classes {ds.class_names} -> {ds.path}")


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro generate [--profile P] [--split train|val|test] [--method ...] [--out DIR]``."""
    p = subparsers.add_parser("generate", help="generate (or reuse) a multi-scale GP class dataset",
                              description="Generate one split of a profile's GP crosses dataset into the "
                                          "data cache (or --out), reusing a verified cached copy.")
    p.add_argument("--profile", choices=profiles.names(), default=profiles.DEFAULT)
    p.add_argument("--split", choices=SPLITS, default="train")
    p.add_argument("--method", choices=gp.METHODS, default=None, help="override the recipe's sampler")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    p.add_argument("--per-class", type=int, default=None, help="override samples per class")
    p.add_argument("--out", type=Path, default=None, help="dataset folder (default: cache/gp/<recipe key>)")
    p.set_defaults(func=_cmd_generate)
