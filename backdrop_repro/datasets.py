"""Class recipes (crosses of correlation lengths), the on-disk format and the torch Dataset.

A :class:`Recipe` names one correlation length per scale for every class; a class sample is
``Σ_s power_s · S_s`` with each base field ``S_s`` a standardised GP sample (:mod:`.gp`) used
exactly once in the whole dataset. Samples are interleaved one per class in turn (label
``i % n_classes``), as in the paper's pickle.

On disk (one folder per dataset; :mod:`backdrop_repro.dataset_files`, re-exported here):
``images.npy`` (float32 ``N × H × W``, memory-mappable), ``labels.npy`` (int64 ``N``) and ``meta.json`` (recipe or source, class names, versions and the
sha256 of both ``.npy`` files). Every write is atomic, writers hold the folder's lock
(:func:`backdrop_repro.paths.folder_lock`) and every read hashes the very bytes it hands back
(one open file per ``.npy``: hashed, then parsed or memory-mapped from the same descriptor), so a
concurrent writer can make a read fail (``CacheError``) but never return another dataset's
pixels. Destinations and the memory/disk a dataset needs are checked before anything is
generated (:func:`check_resources`); orphaned temporary files are removed on the next build.

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
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import gp, profiles
from .dataset_files import (FORMAT_VERSION, CacheError, GPDataset, _read_meta, _sha256,  # noqa: F401
                            read_dataset, write_dataset)
from .paths import available_memory, check_writable_dir, clean_orphans, data_dir, folder_lock, free_disk

__all__ = [
    "Recipe", "PAPER", "SMOKE", "SPLITS", "split_recipe", "FORMAT_VERSION", "CacheError", "GPDataset",
    "class_spectrum", "base_field_plan", "generate", "write_dataset", "read_dataset",
    "build_dataset", "recipe_key", "add_cli", "estimate_bytes", "check_resources", "ResourceError",
]

#: every correlation length must satisfy size >= MIN_SIZE_PER_LENGTH * length
MIN_SIZE_PER_LENGTH = 1.5


#: a dataset may use at most this fraction of the available memory (it is generated in memory)
MEMORY_FRACTION = 0.8


class ResourceError(ValueError):
    """A dataset would need more memory or disk than is available (raised before generating)."""


def _is_int(x: Any) -> bool:
    """An integer of any kind (``int``, ``np.int64``...), not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _is_real(x: Any) -> bool:
    """A real number of any kind (``float``, ``np.float32``, ``np.int64``...), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


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

        if not _is_int(self.size) or self.size < 8:
            raise bad("size", "an integer >= 8 (pixels)", self.size)
        try:
            if isinstance(self.scales, str) or any(isinstance(s, str) for s in self.scales) or \
                    not all(_is_real(v) for s in self.scales for v in s):
                raise TypeError
            scales = tuple(tuple(float(v) for v in s) for s in self.scales)
        except TypeError:
            raise bad("scales", "a sequence of sequences of correlation lengths (real numbers, px)",
                      self.scales) from None
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
            if isinstance(self.power, str) or not all(_is_real(p) for p in self.power):
                raise TypeError
            power = tuple(float(p) for p in self.power)
        except TypeError:
            raise bad("power", "a sequence of weights, one per scale", self.power) from None
        if len(power) != len(scales):
            raise ValueError(f"Recipe.power must have one weight per scale ({len(scales)}), got {len(power)}: "
                             f"{self.power!r}")
        if any(not np.isfinite(p) or p <= 0 for p in power):
            raise bad("power", "positive finite weights", self.power)
        if not _is_int(self.per_class) or self.per_class < 1:
            raise bad("per_class", "an integer >= 1", self.per_class)
        if not _is_int(self.seed) or self.seed < 0:
            raise bad("seed", "a non-negative integer", self.seed)
        if not isinstance(self.method, str) or self.method not in gp.METHODS:
            raise bad("method", f"one of {gp.METHODS}", self.method)
        if self.method == "fft" and self.size < longest / gp.FFT_MAX_LENGTH_RATIO:
            raise ValueError(f"Recipe.size must be >= {1 / gp.FFT_MAX_LENGTH_RATIO:g} × the longest correlation "
                             f"length ({longest:g} px) for method 'fft' (a longer length is not resolved on "
                             f"the periodic grid, see gp.FFT_MAX_LENGTH_RATIO), got {self.size}")
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
    if not _is_int(label) or not 0 <= label < recipe.n_classes:
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


def estimate_bytes(recipe: Recipe) -> int:
    """Bytes of the dataset's images: ``N × size × size × 4`` (float32; labels are negligible).

    Example: ``estimate_bytes(SMOKE) == 8 * 64 * 64 * 4``.
    """
    return len(recipe) * recipe.size * recipe.size * 4


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} PB"  # pragma: no cover


def check_resources(recipe: Recipe, directory: str | Path | None = None) -> int:
    """Refuse (``ResourceError``, one line) a dataset that cannot fit, before generating it.

    Memory: the images are generated in memory, so :func:`estimate_bytes` must stay below
    ``MEMORY_FRACTION`` (80 %) of :func:`backdrop_repro.paths.available_memory` (skipped where
    that is unknown). Disk (if ``directory`` is given): the estimate must fit in the free space
    of its file system. Returns the estimate. Example: ``check_resources(SMOKE)`` -> ``131072``.
    """
    need = estimate_bytes(recipe)
    what = (f"{len(recipe)} images of {recipe.size}×{recipe.size} float32 "
            f"({recipe.n_classes} classes × per_class {recipe.per_class}) need {_fmt_bytes(need)}")
    avail = available_memory()
    if avail is not None and need > MEMORY_FRACTION * avail:
        raise ResourceError(f"{what} of memory, more than {MEMORY_FRACTION:.0%} of the {_fmt_bytes(avail)} "
                            "available; lower --per-class (per_class) or the image size")
    if directory is not None:
        free = free_disk(directory)
        if need > free:
            raise ResourceError(f"{what} of disk, but {directory} has only {_fmt_bytes(free)} free; "
                                "free some space, choose another --out or lower --per-class")
    return need


def generate(recipe: Recipe, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Generate the dataset in memory: ``images`` float32 ``(N, size, size)``, ``labels`` int64 ``(N,)``.

    Refuses (``ResourceError``) a dataset larger than the available memory allows, before
    computing anything (:func:`check_resources`).
    Example: ``images, labels = generate(SMOKE, progress=False)`` gives ``(8, 64, 64)`` and
    ``[0, 1, 2, 3, 0, 1, 2, 3]``.
    """
    from tqdm import tqdm

    check_resources(recipe)
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


def recipe_key(recipe: Recipe) -> str:
    """16-hex-digit key of the recipe and ``FORMAT_VERSION`` (the cache folder name)."""
    blob = json.dumps({"recipe": recipe.to_dict(), "format_version": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _existing(directory: Path, recipe: Recipe, explicit: bool) -> tuple[GPDataset | None, str | None]:
    """The verified dataset of ``recipe`` in ``directory``, or why it must be (re)generated.

    A folder chosen by the caller (``explicit``) that holds something else (another recipe,
    another source, a ``meta.json`` that is not a dataset's) is refused with ``ValueError``.
    """
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        return None, None
    try:
        meta = _read_meta(directory)
    except CacheError as err:
        if explicit:
            raise ValueError(f"{meta_path} is not a backdrop-repro dataset's ({err}); choose an empty "
                             "folder for --out or delete that file") from None
        return None, str(err)
    if meta.get("recipe") != recipe.to_dict() or meta.get("source", "generated") != "generated":
        if explicit:
            key = meta.get("recipe_key") or meta.get("source") or "unknown"
            raise ValueError(f"{directory} holds another dataset (recipe {key}, asked for "
                             f"{recipe_key(recipe)}); choose another folder for --out or delete it first")
        return None, "it holds a different recipe"
    if meta.get("format_version") != FORMAT_VERSION:
        return None, f"format version {meta.get('format_version')} is not {FORMAT_VERSION}"
    try:
        return read_dataset(directory), None
    except CacheError as err:
        return None, str(err)


def build_dataset(recipe: Recipe, cache_dir: str | Path | None = None, progress: bool = True,
                  directory: str | Path | None = None) -> GPDataset:
    """Generate the dataset of ``recipe`` or reuse its verified cache.

    The dataset lives in ``directory`` if given, else ``<cache_dir or data_dir()/"gp">/<recipe_key>``.
    Before generating anything: the folder must be writable (``NotADirectoryError``,
    ``PermissionError``), a ``directory`` given by the caller must not hold another dataset
    (``ValueError``), and the data must fit in memory and on disk (:class:`ResourceError`).
    The folder is locked while it is checked and written (concurrent builds wait), and
    orphaned temporary files are removed. A cached copy is used only if its ``meta.json`` holds
    the same recipe and format version and both files match their sha256; otherwise
    (corrupted, truncated, mismatched) it is regenerated with a warning.
    Example: ``ds = build_dataset(SMOKE, progress=False)``.
    """
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    explicit = directory is not None
    if directory is None:
        root = Path(cache_dir) if cache_dir is not None else data_dir() / "gp"
        directory = root / recipe_key(recipe)
    directory = check_writable_dir(Path(directory), "--out" if explicit else "dataset folder")
    with folder_lock(directory):
        clean_orphans(directory, None)
        ds, reason = _existing(directory, recipe, explicit)
        if ds is not None:
            return ds
        check_resources(recipe, directory)
        if reason:
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
