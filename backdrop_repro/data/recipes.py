"""Class recipes: crosses of correlation lengths, the named recipes and their spectra.

A :class:`Recipe` names one correlation length per scale for every class; a class sample is
``Σ_s power_s · S_s`` with each base field ``S_s`` a standardised GP sample (:mod:`backdrop_repro.gp`).
:data:`PAPER` and :data:`SMOKE` are fixed recipes, :func:`split_recipe` the recipe of one split
of a profile's data, :func:`class_spectrum` the spectrum of a class (for the likelihood
classifier). Generating, caching and reading datasets is :mod:`.datasets`, which re-exports
every name here.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import gp
from ..checks import is_int, is_real

__all__ = ["Recipe", "PAPER", "SMOKE", "SPLITS", "split_recipe", "class_spectrum", "MIN_SIZE_PER_LENGTH"]

#: every correlation length must satisfy size >= MIN_SIZE_PER_LENGTH * length
MIN_SIZE_PER_LENGTH = 1.5


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

        if not is_int(self.size) or self.size < 8:
            raise bad("size", "an integer >= 8 (pixels)", self.size)
        try:
            if isinstance(self.scales, str) or any(isinstance(s, str) for s in self.scales) or \
                    not all(is_real(v) for s in self.scales for v in s):
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
            if isinstance(self.power, str) or not all(is_real(p) for p in self.power):
                raise TypeError
            power = tuple(float(p) for p in self.power)
        except TypeError:
            raise bad("power", "a sequence of weights, one per scale", self.power) from None
        if len(power) != len(scales):
            raise ValueError(f"Recipe.power must have one weight per scale ({len(scales)}), got {len(power)}: "
                             f"{self.power!r}")
        if any(not np.isfinite(p) or p <= 0 for p in power):
            raise bad("power", "positive finite weights", self.power)
        if not is_int(self.per_class) or self.per_class < 1:
            raise bad("per_class", "an integer >= 1", self.per_class)
        if not is_int(self.seed) or self.seed < 0:
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


def split_recipe(data: Any, split: str = "train", per_class: int | None = None,
                 method: str | None = None, run_seed: int | None = None) -> Recipe:
    """The :class:`Recipe` of one split of a profile's data.

    ``data`` is a profile's data section (:class:`~backdrop_repro.profiles.DataSection`) or the
    resolved profile holding it (its ``.data``); a profile's name is looked up at a front door
    (``profiles.get``), never here. ``split`` is ``"train"``, ``"val"`` or ``"test"`` (independent
    seeds); ``per_class`` and ``method`` override the profile's (data-size curve, robustness row);
    ``run_seed`` picks the run's own training/validation sets when the profile has ``per_seed_data``.
    Example: ``split_recipe(profiles.get("default"), "test").per_class == 250``.
    """
    if isinstance(data, str):
        raise TypeError(f"split_recipe takes a profile's data section or the resolved profile, not its name "
                        f"{data!r}: pass profiles.get({data!r})")
    d = getattr(data, "data", data)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n = {"train": d.per_class, "val": d.val_per_class, "test": d.test_per_class}[split]
    seed = d.split_seed(split, run_seed)
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
    if not is_int(label) or not 0 <= label < recipe.n_classes:
        raise ValueError(f"label must be an integer in [0, {recipe.n_classes}), got {label!r}")
    lengths = recipe.classes[int(label)]
    return np.asarray(sum(p * p * _length_spectrum(recipe.size, cl, recipe.method) for p, cl in zip(recipe.power, lengths)))
