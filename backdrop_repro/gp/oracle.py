"""Likelihood classifier for the GP classes: Gaussian class likelihoods computed by FFT.

It is exact (the Bayes-optimal classifier) only in one case: single-scale ``method="fft"``
data, i.e. periodic stationary Gaussian fields standardised once, classified with
``mode="scale_free"``, fixed amplitudes and no window (:func:`is_exact`; the default of
:func:`oracle_for_recipe` there). Everywhere else (the two-scale crosses of separately
standardised scales, windowed ``matched``/``faithful`` data, ``mode="gaussian"``) it is an
approximation: a strong reference classifier, not a ceiling; a network may beat it.

A class ``c`` of FFT-generated data is a stationary Gaussian field on the periodic ``n x n``
grid whose covariance is circulant: the unitary 2-D DFT ``X / n`` (``X = FFT2(x)``) diagonalises
it, with eigenvalues ``S_c`` = the class power spectrum (``E|X|^2 / n^2 = S_c``, the convention of
:func:`backdrop_repro.gp.se_spectrum`; for a cross of scales ``S_c = sum_s power_s^2 S_s``).
Hence the exact log-density, with ``N = n^2``::

    log p(x | c) = -1/2 sum_k |X_k|^2 / (N S_c,k) - 1/2 sum_k log S_c,k - N/2 log(2 pi)

The generators standardise every sample (mean 0, std 1). The mean is the ``k = 0`` coefficient,
independent of the others for a circulant covariance, so removing it just drops that term. The
division by the sample's std keeps only the direction of the field; the exact density of the
direction ``u = x / |x|`` of a Gaussian ``x`` (the "angular central Gaussian") is::

    log p(u | c) = -1/2 sum_{k != 0} log S_c,k - (M/2) log( sum_{k != 0} |X_k|^2 / S_c,k ) + const

with ``M`` the number of mean-free frequencies used. ``mode="scale_free"`` uses this (exact for
a standardised single Gaussian field); ``mode="gaussian"`` the plain Gaussian density without
``k = 0``, which ignores the division by the std (exact only for unstandardised data). On
crosses neither is exact and their accuracies can differ by several points, in either
direction; which scores higher is an empirical question, not a property of the method.

Practical details, all shared by every class so they cannot favour one:

* each scale's spectrum is first "standardised" (``k = 0`` removed, unit mean again:
  :func:`standardised_spectrum`), because the generators standardise each scale's field before
  the weighted sum; for 140 px blobs on a 256 px image ``k = 0`` holds much of the power;
* a white-noise ``floor`` (1e-6 of the mean level) is added, and frequencies where every class
  is below it (float32 rounding noise only) are dropped;
* ``window="hann"`` tapers non-periodic data (the ``matched``/``faithful`` generators produce
  windows of a stationary field whose edges would leak power along the frequency axes) and uses
  the exactly corresponding expected periodogram (Whittle approximation);
* ``amplitudes="profile"`` (not the default) fits the relative amplitude of the two scales per
  sample, an approximate way to absorb the per-scale standardisation.

Why crosses are not exact: each scale is standardised by its own sample std before the
weighted sum, so a sample is not a Gaussian field (nor the direction of one) with the summed
spectrum; the per-scale normalisations are random and not observed.

Example
-------
>>> import numpy as np
>>> f = np.fft.fftfreq(16)
>>> k2 = f[:, None] ** 2 + f[None, :] ** 2
>>> spectra = [np.exp(-k2 * (2 * np.pi * l) ** 2 / 2) for l in (1.0, 3.0)]
>>> spectra = [s / s.mean() for s in spectra]
>>> oracle = SpectralOracle(spectra)
>>> x = np.random.default_rng(0).standard_normal((2, 16, 16))
>>> oracle.log_likelihood(x).shape
(2, 2)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..checks import is_real

__all__ = ["SpectralOracle", "oracle_for_recipe", "recipe_components", "standardised_spectrum",
           "is_exact", "MODES", "AMPLITUDES"]

MODES = ("scale_free", "gaussian")
AMPLITUDES = ("fixed", "profile")
WINDOWS = (None, "hann")


class SpectralOracle:
    """Classify fields by Gaussian class likelihoods computed in Fourier space.

    The likelihoods are exact for periodic stationary Gaussian fields with the given spectra
    (``mode="gaussian"``) or for such fields standardised once (``mode="scale_free"``); for
    other data (crosses of separately standardised scales, non-periodic windows) they are an
    approximation. See the module docstring and :func:`is_exact`.

    Parameters
    ----------
    spectra : sequence of ``(n, n)`` positive power spectra on the ``numpy.fft.fftfreq(n)``
        grid, one per class in label order (``E|FFT2(x)|^2 / n^2``).
    mode : ``"scale_free"`` (likelihood of a standardised sample, default) or ``"gaussian"``.
    priors : optional class prior probabilities (default uniform).
    floor : white-noise power added to every class spectrum (relative to the mean spectrum
        level), default ``1e-6``. The squared-exponential spectra fall to (numerically) zero at
        high frequency, where the data holds only float32 rounding noise; without a floor the
        likelihood would divide that noise by ~0 and classify on rounding artefacts. The floor is
        the same for every class, so frequencies where all classes are below it carry no weight.

    Example
    -------
    >>> flat = np.ones((8, 8))
    >>> SpectralOracle([flat, 2 * flat], mode="gaussian").predict(np.zeros((1, 8, 8)))
    array([0])
    """

    def __init__(self, spectra: Sequence[np.ndarray] | np.ndarray, mode: str = "scale_free",
                 priors: Sequence[float] | None = None, floor: float = 1e-6,
                 amplitudes: str = "fixed", ratios: Sequence[float] | None = None,
                 window: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if amplitudes not in AMPLITUDES:
            raise ValueError(f"amplitudes must be one of {AMPLITUDES}, got {amplitudes!r}")
        try:
            s = np.asarray([np.asarray(sp, dtype=np.float64) for sp in spectra])
        except ValueError:
            raise ValueError("spectra must be >= 2 square (n, n) arrays of one shape") from None
        if s.ndim == 3:
            s = s[:, None]
        if s.ndim != 4 or s.shape[0] < 2 or s.shape[2] != s.shape[3]:
            raise ValueError(f"spectra must be >= 2 square (n, n) or (scales, n, n) arrays of one shape, got shape {s.shape}")
        if amplitudes == "profile" and (s.shape[1] != 2 or mode != "scale_free"):
            raise ValueError("amplitudes='profile' needs 2 components per class, shape (C, 2, n, n), and mode='scale_free'")
        if not (is_real(floor) and floor >= 0):
            raise ValueError(f"floor must be a float >= 0, got {floor!r}")
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
        self.window = window
        self._w = None
        if window == "hann":
            n = s.shape[2]
            h = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
            w = np.outer(h, h)
            w /= np.sqrt((w * w).mean())                        # mean(w^2) = 1
            auto = np.fft.ifft2(np.abs(np.fft.fft2(w)) ** 2).real  # circular autocorrelation
            cov = np.fft.ifft2(s).real                          # periodic covariances
            s = np.clip(np.fft.fft2(cov * auto).real / (n * n), 0.0, None)
            self._w = w
        total = s.sum(axis=1)
        keep = np.ones(s.shape[2:], dtype=bool)
        keep[0, 0] = False
        eps = floor * total.mean(axis=(1, 2))                     # (C,)
        if floor > 0:
            # frequencies where every class is below the floor hold only rounding noise in the
            # data: they carry no information and would distort the scale-free likelihood
            keep &= (total > eps[:, None, None]).any(axis=0)
        if not np.all(total[:, keep] + eps[:, None] > 0):
            raise ValueError("spectra must be strictly positive outside k = 0 (or use floor > 0)")
        self.mode, self.amplitudes, self.floor = mode, amplitudes, float(floor)
        self.n = s.shape[2]
        self._keep = keep
        self._components = s
        self._eps = eps
        self.ratios = np.asarray(ratios if ratios is not None else np.exp(np.linspace(-3, 3, 25)), dtype=np.float64)
        if amplitudes == "profile" and (self.ratios.ndim != 1 or np.any(self.ratios <= 0)):
            raise ValueError(f"ratios must be positive numbers, got {ratios!r}")
        if priors is None:
            self._logprior = np.zeros(s.shape[0])
        else:
            p = np.asarray(priors, dtype=np.float64)
            if p.shape != (s.shape[0],) or np.any(p <= 0):
                raise ValueError(f"priors must be {s.shape[0]} positive numbers, got {priors!r}")
            self._logprior = np.log(p / p.sum())

    def _spectrum(self, c: int, ratio: float = 1.0) -> np.ndarray:
        comp = self._components[c]
        tot = comp[0] + ratio * comp[1:].sum(axis=0) if len(comp) > 1 else comp[0]
        return tot + self._eps[c]

    @property
    def n_classes(self) -> int:
        return self._components.shape[0]

    def _power(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (self.n, self.n):
            raise ValueError(f"x must have shape (count, {self.n}, {self.n}), got {x.shape}")
        return x

    def log_likelihood(self, x: np.ndarray, chunk: int = 16) -> np.ndarray:
        """Log-likelihood (up to a constant shared by the classes) of each sample: ``(count, C)``.

        ``x`` : ``(count, n, n)`` or ``(n, n)`` real fields. With ``amplitudes="profile"`` the
        relative amplitude of the two scales is fitted per sample and class (maximum over
        ``ratios``), which absorbs the per-scale standardisation of the generators.
        """
        x = self._power(x)
        m = int(self._keep.sum())
        ratios = self.ratios if self.amplitudes == "profile" else np.ones(1)
        out = np.full((x.shape[0], self.n_classes), -np.inf)
        for i0 in range(0, x.shape[0], chunk):              # bounded memory at 1024^2
            xs = x[i0:i0 + chunk].astype(np.float64)
            if self._w is not None:
                xs = (xs - xs.mean(axis=(1, 2), keepdims=True)) * self._w
            p = (np.abs(np.fft.fft2(xs)) ** 2 / (self.n * self.n))[:, self._keep]
            for c in range(self.n_classes):
                for r in ratios:
                    spec = self._spectrum(c, r)
                    spec = spec[self._keep]
                    logdet = np.log(spec).sum()
                    q = p @ (1.0 / spec)
                    if self.mode == "gaussian":
                        ll = -0.5 * q - 0.5 * logdet
                    else:
                        ll = -0.5 * m * np.log(q) - 0.5 * logdet
                    out[i0:i0 + chunk, c] = np.maximum(out[i0:i0 + chunk, c], ll)
        return out

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """Class posterior probabilities ``(count, C)`` (rows sum to 1)."""
        ll = self.log_likelihood(x) + self._logprior[None]
        ll -= ll.max(axis=1, keepdims=True)
        p = np.exp(ll)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Most probable class of each sample, ``(count,)`` int64."""
        return np.argmax(self.log_likelihood(x) + self._logprior[None], axis=1).astype(np.int64)

    def evaluate(self, x: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Accuracy and mean cross-entropy (nats) of the posterior on labelled samples."""
        labels = np.asarray(labels, dtype=np.int64)
        post = self.posterior(x)
        if labels.shape != (post.shape[0],):
            raise ValueError(f"labels must have shape ({post.shape[0]},), got {labels.shape}")
        acc = float(np.mean(post.argmax(axis=1) == labels))
        loss = float(-np.mean(np.log(np.clip(post[np.arange(len(labels)), labels], 1e-300, None))))
        return {"accuracy": acc, "loss": loss}


def standardised_spectrum(spectrum: np.ndarray) -> np.ndarray:
    """Expected spectrum of a field after standardisation: ``k = 0`` removed, unit mean again.

    Removing the mean zeroes the ``k = 0`` coefficient, and dividing by the std rescales the
    rest so that ``mean(|X|^2) / n^2 = 1``. For long correlation lengths (e.g. 140 px on a 256 px
    image) ``k = 0`` holds much of the power, so this correction matters.

    Example
    -------
    >>> s = standardised_spectrum(np.ones((4, 4)))
    >>> float(s[0, 0]), round(float(s.mean()), 6)
    (0.0, 1.0)
    """
    s = np.array(spectrum, dtype=np.float64)
    s[0, 0] = 0.0
    return s / s.mean()


def recipe_components(recipe) -> np.ndarray:
    """Per-class, per-scale spectra ``(C, S, n, n)``: ``power_s^2 * standardised_spectrum(S_s)``.

    ``S_s`` is :func:`backdrop_repro.gp.se_spectrum` for ``method="fft"`` recipes, else
    :func:`backdrop_repro.gp.matched_spectrum` (the generators standardise each scale's field
    before the weighted sum). Example: ``recipe_components(datasets.SMOKE).shape == (4, 2, 64, 64)``.
    """
    from . import fields as gp

    fn = gp.se_spectrum if recipe.method == "fft" else gp.matched_spectrum
    cache: dict[float, np.ndarray] = {}
    out = []
    for lengths in recipe.classes:
        comps = []
        for p, cl in zip(recipe.power, lengths):
            if cl not in cache:
                cache[cl] = standardised_spectrum(fn(recipe.size, cl))
            comps.append(p * p * cache[cl])
        out.append(comps)
    return np.asarray(out)


def is_exact(recipe, mode: str = "auto", amplitudes: str = "fixed", window: str | None = "auto") -> bool:
    """Whether ``oracle_for_recipe(recipe, mode, amplitudes=..., window=...)`` is the exact
    (Bayes-optimal) classifier of the recipe's data, up to the negligible white-noise floor.

    True only for single-scale ``method="fft"`` recipes (one standardised periodic Gaussian
    field per sample) classified with ``mode="scale_free"`` (what ``"auto"`` picks there),
    fixed amplitudes and no window. False for two-scale crosses (each scale is standardised
    separately: not a Gaussian field with the summed spectrum) and for ``matched``/``faithful``
    data (non-periodic windows, matched spectra), whatever the options.

    Example
    -------
    >>> from backdrop_repro.data.recipes import Recipe, SMOKE
    >>> is_exact(Recipe(size=64, scales=((2.0, 3.0),), power=(1.0,), per_class=2, method="fft")), is_exact(SMOKE)
    (True, False)
    """
    if mode not in MODES + ("auto",):
        raise ValueError(f"mode must be 'auto' or one of {MODES}, got {mode!r}")
    single_fft = getattr(recipe, "method", None) == "fft" and len(recipe.scales) == 1
    if mode == "auto":
        mode = "scale_free" if single_fft else "gaussian"
    if window == "auto":
        window = None if recipe.method == "fft" else "hann"
    return bool(single_fft and mode == "scale_free" and window is None
                and (amplitudes == "fixed" or len(recipe.scales) != 2))


def oracle_for_recipe(recipe, mode: str = "auto", floor: float = 1e-6,
                      amplitudes: str = "fixed", window: str | None = "auto") -> SpectralOracle:
    """The likelihood classifier of a :class:`backdrop_repro.data.recipes.Recipe` (spectra from
    :func:`recipe_components`).

    ``mode="auto"`` (default) is ``"scale_free"`` where that is exact (single-scale ``fft``
    recipes, :func:`is_exact`) and ``"gaussian"`` otherwise (its accuracy on the crosses is
    what the committed results report). ``amplitudes="fixed"`` (default) uses the recipe's
    weights; ``"profile"`` fits the relative amplitude of two scales per sample (approximate).
    ``window="auto"``: none for ``fft`` data, ``"hann"`` for non-periodic matched/faithful
    data (a Whittle approximation built on the matched spectra). Exact only where
    :func:`is_exact` says so. Example: ``oracle_for_recipe(datasets.SMOKE).predict(images)``.
    """
    if mode == "auto":
        mode = "scale_free" if is_exact(recipe) else "gaussian"
    comps = recipe_components(recipe)
    if amplitudes == "profile" and comps.shape[1] != 2:
        amplitudes = "fixed"
    if window == "auto":
        window = None if recipe.method == "fft" else "hann"
    return SpectralOracle(comps, mode=mode, floor=floor, amplitudes=amplitudes, window=window)
