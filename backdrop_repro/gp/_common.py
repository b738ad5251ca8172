"""Shared low-level helpers of the GP samplers (:mod:`.fields`, :mod:`.faithful`).

Argument validation, seeding and per-sample standardisation. Imports only
:mod:`backdrop_repro.checks` from the package, so both sampler modules can use it without an
import cycle; :mod:`.fields` exports the public names (:func:`child_seeds`, :func:`standardize`); the argument
checks (:func:`check_n`, :func:`check_cl`, :func:`check_count`, :func:`check_dtype`) and :func:`as_seedseq` are
shared by the two sampler modules.

Reproducibility: sample ``i`` of a draw is generated with its own ``numpy.random.Generator``
seeded by the ``i``-th child of ``SeedSequence(seed)`` (:func:`child_seeds`), so drawing 3 or
300 samples gives the same sample 0.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..checks import is_int, is_real

__all__ = ["child_seeds", "standardize", "check_n", "check_cl", "check_count", "check_dtype", "as_seedseq"]


# --------------------------------------------------------------------------------------------
# validation and seeding
# --------------------------------------------------------------------------------------------
def check_n(n: int, name: str = "n") -> int:
    """``int(n)`` for a grid size ``n >= 2``, else ``ValueError`` naming ``name``. Example: ``check_n(np.int64(8)) == 8``."""
    if not is_int(n) or n < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {n!r}")
    return int(n)


def check_cl(cl: float, name: str = "cl") -> float:
    """``float(cl)`` for a positive finite correlation length in pixels (a 0-d array too), else
    ``ValueError`` naming ``name``. Example: ``check_cl(np.array(2.5)) == 2.5``."""
    if isinstance(cl, np.ndarray) and cl.ndim == 0:
        cl = cl[()]
    if not is_real(cl):
        raise ValueError(f"{name} must be a positive finite number of pixels, got {cl!r}")
    try:
        value = float(cl)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number of pixels, got {cl!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number of pixels, got {cl!r}")
    return value


def check_count(count: int) -> int:
    """``int(count)`` for a number of samples ``>= 0``, else ``ValueError``. Example: ``check_count(0) == 0``."""
    if not is_int(count) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    return int(count)


def check_dtype(dtype) -> np.dtype:
    """``np.dtype(dtype)`` if it is float32 or float64, else ``ValueError``. Example: ``check_dtype("float32")``."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def as_seedseq(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    """``seed`` as a ``SeedSequence`` (one given is returned as it is). Example: ``as_seedseq(0).entropy == 0``."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a numpy SeedSequence, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def child_seeds(seed: int | np.random.SeedSequence, start: int, count: int) -> Iterator[np.random.SeedSequence]:
    """Children ``start .. start+count-1`` of ``SeedSequence(seed)``, as ``.spawn`` would give them.

    Child ``i`` is ``SeedSequence(entropy, spawn_key=parent.spawn_key + (i,))``, so it does not
    depend on how many children are drawn. Example: ``next(child_seeds(0, 5, 1))`` is the sixth
    child of ``SeedSequence(0)``.
    """
    ss = as_seedseq(seed)
    if not is_int(start) or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start!r}")
    for i in range(int(start), int(start) + count):
        yield np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (i,),
                                     pool_size=ss.pool_size)


def standardize(x: np.ndarray) -> np.ndarray:
    """Standardise each ``(..., H, W)`` sample to mean 0, std 1 over its last two axes (in place
    when ``x`` is a float array). Example: ``standardize(np.random.default_rng(0).random((2, 8, 8)))``.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    x -= mean
    std = np.sqrt((x * x).mean(axis=(-2, -1), keepdims=True))
    x /= np.where(std > 0, std, 1).astype(x.dtype)
    return x
