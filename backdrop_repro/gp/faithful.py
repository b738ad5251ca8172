"""The paper-faithful GP construction (the original generator; :mod:`.fields` dispatches to it).

Large scales (``cl >= 50``): an SE field of length ``cl/8`` on a ``(n/8)²`` grid, upscaled ×8
by cubic-spline interpolation (:func:`_faithful_large`). Small scales (``cl < 50``):
``int(6 (n/e)²)`` patches — a 50×50 SE field of length ``min(8, cl)``, upscaled by
``cl/min(8, cl)``, times the envelope ``exp(-23((u-½)² + (v-½)²))`` — added at uniform random
positions on a torus, then cropped to ``n × n`` (:func:`_faithful_small`). Patches come from a
cached exact factorisation of the 2500-point covariance (Kronecker-factored: the SE kernel is
separable) instead of the original's fresh approximate solve per patch.

:func:`patch_geometry` gives the patch sizes, :func:`patch_demo` the stages for pictures, and
:func:`grid_length` the unit-square convention of the GP grids. The exact spectrum of this
construction is :func:`backdrop_repro.gp.matched_spectrum` (it uses :func:`patch_lag_cov_1d`
and :func:`large_effective_length` from here). Its public names are available from :mod:`backdrop_repro.gp`.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from ._common import as_seedseq, check_cl, check_count, check_dtype, check_n, child_seeds, standardize

__all__ = ["LARGE_SCALE_MIN", "grid_length", "patch_geometry", "patch_demo", "sample_faithful", "patch_lag_cov_1d",
           "large_effective_length"]

#: correlation lengths (px) at and above which the original used the upscaled-grid construction
LARGE_SCALE_MIN = 50.0
#: side of the GP patch (grid points) of the small-scale construction
PATCH_POINTS = 50
#: longest correlation length (grid units) used on the patch grid; longer lengths are upscaled
PATCH_MAX_LENGTH = 8.0
#: the envelope is exp(-ENVELOPE_RATE ((u-½)² + (v-½)²)), u, v in [0, 1] across the patch
ENVELOPE_RATE = 23.0
#: patches per (canvas / effective patch size)²; effective patch size = 30 px × upscale
PATCH_DENSITY = 6.0
PATCH_EFFECTIVE_PX = 30.0
#: upscaling factor of the large-scale construction
LARGE_UPSCALE = 8


def grid_length(length: float, m: int) -> float:
    """Kernel length in grid units of a GP of length ``length`` on ``linspace(0, 1, m)`` (÷ m).

    The GP grids of the construction live on the unit square with kernel length ``length/m``:
    in grid units that is ``length (m-1)/m`` (7.84 for the 50-point patch at length 8). Inferred
    from the reference statistics: it gives the reference's effective length (7.7 px at cl 10)
    where ``length`` grid units would give 7.86 px (gradient ratio 3.5 % low, high-k bins 10 % low).
    Example: ``grid_length(8.0, 50) == 7.84``.
    """
    return length * (m - 1) / m


#: eigenvalues below this fraction of the largest are dropped from the exact factorisations
#: (they carry less than 1e-13 of the variance; the SE kernel matrix is numerically singular)
EIG_RTOL = 1e-13


def _factor_psd(k: np.ndarray) -> np.ndarray:
    """``L`` (m × r) with ``L Lᵀ == k`` to ~1e-13 relative: eigendecomposition, tiny modes dropped."""
    w, v = np.linalg.eigh(k)
    keep = w > EIG_RTOL * w.max()
    return v[:, keep] * np.sqrt(w[keep])


def _se_matrix_1d(m: int, length: float) -> np.ndarray:
    i = np.arange(m, dtype=np.float64)
    return np.exp(-((i[:, None] - i[None, :]) ** 2) / (2 * length * length))


@functools.lru_cache(maxsize=32)
def _zoom_matrix(m: int, factor: float) -> np.ndarray:
    """``A`` (round(m·factor) × m): ``A @ v == scipy.ndimage.zoom(v, factor, order=3, mode='mirror')``."""
    cols = [ndimage.zoom(np.eye(m)[j], factor, order=3, mode="mirror") for j in range(m)]
    return np.stack(cols, axis=1)


def patch_geometry(cl: float) -> dict:
    """Geometry of the small-scale construction for length ``cl`` px (at 1024², the original's).

    Returns ``dict(grid_length, upscale, patch_px, effective_px)``: the patch GP length in grid
    units ``min(8, cl)``, the upscaling factor ``cl / min(8, cl)``, the upscaled patch side in
    px (``round(50·upscale)``, as ``scipy.ndimage.zoom`` rounds) and ``e = 30·upscale``.
    Example: ``patch_geometry(10.0)["patch_px"] == 62``.
    """
    cl = check_cl(cl)
    grid_length = min(PATCH_MAX_LENGTH, cl)
    upscale = cl / grid_length
    return {"grid_length": grid_length, "upscale": upscale,
            "patch_px": int(round(PATCH_POINTS * upscale)), "effective_px": PATCH_EFFECTIVE_PX * upscale}


@functools.lru_cache(maxsize=16)
def _patch_factor(cl: float) -> np.ndarray:
    """``F`` (P × r): an enveloped, upscaled patch is ``F Z Fᵀ`` with ``Z`` (r × r) iid N(0, 1).

    The 2500-point patch covariance is ``K₁ ⊗ K₁`` (the SE kernel is separable), so its exact
    factor is ``L₁ ⊗ L₁`` with ``L₁ L₁ᵀ = K₁``: sampling ``(L₁ ⊗ L₁) vec(Z) = vec(L₁ Z L₁ᵀ)``.
    Upscaling (``A``) and the separable envelope (``e``) fold into ``F = diag(e) A L₁``.
    """
    g = patch_geometry(cl)
    l1 = _factor_psd(_se_matrix_1d(PATCH_POINTS, grid_length(g["grid_length"], PATCH_POINTS)))
    a = _zoom_matrix(PATCH_POINTS, g["upscale"]) if g["upscale"] != 1.0 else np.eye(PATCH_POINTS)
    p = a.shape[0]
    u = np.arange(p) / (p - 1)
    env = np.exp(-ENVELOPE_RATE * (u - 0.5) ** 2)
    return env[:, None] * (a @ l1)


@functools.lru_cache(maxsize=16)
def patch_lag_cov_1d(cl: float) -> np.ndarray:
    """``c(d) = Σ_i M[i, i+d]`` for d = -(P-1)..P-1, ``M = F Fᵀ`` (see :func:`matched_spectrum`)."""
    f = _patch_factor(cl)
    m = f @ f.T
    p = m.shape[0]
    return np.array([np.trace(m, offset=d) for d in range(-(p - 1), p)])


def _patch_count(n: int, cl: float) -> int:
    e = patch_geometry(cl)["effective_px"]
    return max(1, int(PATCH_DENSITY * (n / e) ** 2))


def _faithful_small(n: int, cl: float, rng: np.random.Generator, periodic: bool = False) -> np.ndarray:
    f = _patch_factor(cl)
    p, r = f.shape
    count = _patch_count(n, cl)
    z = rng.standard_normal((count, r, r))
    patches = f @ z @ f.T                                   # (count, P, P)
    t = n if periodic else n + p - 1                         # torus size
    pos = rng.integers(0, t, size=(count, 2))
    reps = -(-(t + p) // t)                                  # canvas big enough for any overhang
    canvas = np.zeros((reps * t, reps * t))
    for (y, x), patch in zip(pos, patches):
        canvas[y:y + p, x:x + p] += patch
    canvas = canvas.reshape(reps, t, reps, t).sum(axis=(0, 2))   # toroidal wrap
    return canvas[:n, :n]


def large_effective_length(n: int, cl: float) -> float:
    """Length in px of the zoomed field: ``grid_length(cl/8, n/8)`` × the zoom stretch
    ``(n-1)/(n/8-1)``, which simplifies to ``cl (n-1)/n``."""
    return cl * (n - 1) / n


@functools.lru_cache(maxsize=8)
def _large_factors(n: int, cl: float) -> tuple[np.ndarray, np.ndarray]:
    m = n // LARGE_UPSCALE
    l1 = _factor_psd(_se_matrix_1d(m, grid_length(cl / LARGE_UPSCALE, m)))
    return l1, _zoom_matrix(m, float(LARGE_UPSCALE))


def _faithful_large(n: int, cl: float, rng: np.random.Generator) -> np.ndarray:
    l1, a = _large_factors(n, cl)
    z = rng.standard_normal((l1.shape[1], l1.shape[1]))
    coarse = l1 @ z @ l1.T                                   # exact SE field on the (n/8)² grid
    return a @ coarse @ a.T                                  # cubic-spline zoom ×8


def patch_demo(cl: float, n: int, seed: int = 0, partial: tuple[int, ...] = (20, 200)) -> dict[str, np.ndarray]:
    """The stages of the small-scale construction, for pictures (``cl < 50``).

    Returns ``patch`` (50×50 GP draw), ``upscaled`` (P×P), ``envelope`` (P×P), ``enveloped``
    (P×P) and, on an ``n × n`` periodic canvas, ``canvas_<k>`` after the first ``k`` patches of
    ``partial`` and ``final`` after all ``int(6 (n/e)²)`` of them (standardised). Uses the
    same cached factorisation as :func:`sample_faithful`, but not its random stream.

    Example
    -------
    >>> st = patch_demo(10.0, 128)
    >>> st["patch"].shape, st["upscaled"].shape, st["final"].shape
    ((50, 50), (62, 62), (128, 128))
    """
    cl = check_cl(cl)
    n = check_n(n)
    if cl >= LARGE_SCALE_MIN:
        raise ValueError(f"cl must be < {LARGE_SCALE_MIN:g} (the patch construction), got {cl}")
    rng = np.random.Generator(np.random.PCG64(as_seedseq(seed)))
    g = patch_geometry(cl)
    l1 = _factor_psd(_se_matrix_1d(PATCH_POINTS, grid_length(g["grid_length"], PATCH_POINTS)))
    a = _zoom_matrix(PATCH_POINTS, g["upscale"]) if g["upscale"] != 1.0 else np.eye(PATCH_POINTS)
    z = rng.standard_normal((l1.shape[1], l1.shape[1]))
    patch = l1 @ z @ l1.T
    up = a @ patch @ a.T
    p = up.shape[0]
    u = np.arange(p) / (p - 1)
    e1 = np.exp(-ENVELOPE_RATE * (u - 0.5) ** 2)
    env = np.multiply.outer(e1, e1)
    out = {"patch": patch, "upscaled": up, "envelope": env, "enveloped": up * env}
    f = _patch_factor(cl)
    count = _patch_count(n, cl)
    reps = -(-(n + p) // n)
    canvas = np.zeros((reps * n, reps * n))
    marks = set(k for k in partial if k < count)
    for k in range(count):
        zk = rng.standard_normal((f.shape[1], f.shape[1]))
        y, x = rng.integers(0, n, size=2)
        canvas[y:y + p, x:x + p] += f @ zk @ f.T
        if k + 1 in marks:
            out[f"canvas_{k + 1}"] = canvas.reshape(reps, n, reps, n).sum(axis=(0, 2))
    out["final"] = standardize(canvas.reshape(reps, n, reps, n).sum(axis=(0, 2)))
    out["count"] = np.array(count)
    return out


def sample_faithful(n: int, cl: float, count: int, seed: int | np.random.SeedSequence,
                    dtype=np.float32, start: int = 0, periodic: bool = False,
                    large_min: float = LARGE_SCALE_MIN) -> np.ndarray:
    """The original (paper) construction, ``(count, n, n)``, each sample standardised.

    ``cl >= large_min``: SE field of length ``cl/8`` on the ``(n/8)²`` grid, cubic zoom ×8
    (``n`` must be a multiple of 8 and ``n/8 >= 4``); never periodic. ``cl < large_min``:
    ``int(6 (n/e)²)`` enveloped, upscaled 50×50 patches at uniform positions on a torus, cropped
    to ``n × n``. The torus is ``n + P - 1`` px wide (P = patch side) unless ``periodic``: the
    result is then a window of a stationary field, not periodic — which is what the reference
    statistics of the original show (their spectra carry the same edge-leakage tail as the
    non-periodic large scales; a torus of exactly ``n`` misses bins 16-19 at cl 10 by 25-45 %).
    ``periodic=True`` wraps on the ``n`` torus instead. Both GP draws use exact cached
    factorisations (eigendecompositions) of the kernel matrices; a 1024² sample takes about
    0.1 s (small scales; 0.01 s large). Sample ``i`` depends only on ``(seed, start + i)``.

    Example
    -------
    >>> x = sample_faithful(128, 6.0, count=1, seed=0)
    >>> x.shape, round(float(x.std()), 4)
    ((1, 128, 128), 1.0)
    """
    n = check_n(n)
    cl = check_cl(cl)
    count = check_count(count)
    dt = check_dtype(dtype)
    large = cl >= large_min
    if large and (n % LARGE_UPSCALE or n // LARGE_UPSCALE < 4):
        raise ValueError(f"n must be a multiple of {LARGE_UPSCALE} and >= {4 * LARGE_UPSCALE} for the "
                         f"large-scale construction (cl >= {large_min}), got {n}")
    out = np.empty((count, n, n), dtype=dt)
    for i, ss in enumerate(child_seeds(seed, start, count)):
        rng = np.random.Generator(np.random.PCG64(ss))
        field = _faithful_large(n, cl, rng) if large else _faithful_small(n, cl, rng, periodic)
        out[i] = standardize(field)
    return out
