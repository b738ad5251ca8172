"""Bayes-optimal classifier for periodic, stationary Gaussian fields (exact likelihood by FFT).

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

with ``M = N - 1`` (the mean-free dimensions). ``mode="scale_free"`` (default) uses this,
``mode="gaussian"`` the plain Gaussian density without ``k = 0``. Both are exact for data drawn
as one Gaussian field then standardised; for crosses of separately standardised scales and for
the paper-faithful (non-periodic, enveloped) construction they are close approximations, so the
oracle there is a near-optimal reference rather than a strict ceiling.

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

__all__ = ["SpectralOracle", "oracle_for_recipe", "oracle_accuracy", "MODES"]

MODES = ("scale_free", "gaussian")


class SpectralOracle:
    """Classify periodic stationary Gaussian fields by their exact class likelihoods.

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

    def __init__(self, spectra: Sequence[np.ndarray], mode: str = "scale_free",
                 priors: Sequence[float] | None = None, floor: float = 1e-6) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        try:
            s = np.asarray([np.asarray(sp, dtype=np.float64) for sp in spectra])
        except ValueError:
            raise ValueError("spectra must be >= 2 square (n, n) arrays of one shape") from None
        if s.ndim != 3 or s.shape[0] < 2 or s.shape[1] != s.shape[2]:
            raise ValueError(f"spectra must be >= 2 square (n, n) arrays of one shape, got shape {s.shape}")
        if not (isinstance(floor, (int, float)) and floor >= 0):
            raise ValueError(f"floor must be a float >= 0, got {floor!r}")
        s = s + floor * s.mean(axis=(1, 2), keepdims=True)
        self.floor = float(floor)
        keep = np.ones(s.shape[1:], dtype=bool)
        keep[0, 0] = False
        if not np.all(s[:, keep] > 0):
            raise ValueError("spectra must be strictly positive outside k = 0")
        self.mode = mode
        self.n = s.shape[1]
        self._keep = keep
        self._inv = 1.0 / np.where(keep, s, 1.0)           # (C, n, n), k = 0 unused
        self._logdet = np.log(s[:, keep]).sum(axis=1)      # (C,)
        if priors is None:
            self._logprior = np.zeros(s.shape[0])
        else:
            p = np.asarray(priors, dtype=np.float64)
            if p.shape != (s.shape[0],) or np.any(p <= 0):
                raise ValueError(f"priors must be {s.shape[0]} positive numbers, got {priors!r}")
            self._logprior = np.log(p / p.sum())

    @property
    def n_classes(self) -> int:
        return self._inv.shape[0]

    def quadratic(self, x: np.ndarray) -> np.ndarray:
        """``sum_{k != 0} |X_k|^2 / (N S_c,k)`` for each sample and class: ``(count, C)``."""
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (self.n, self.n):
            raise ValueError(f"x must have shape (count, {self.n}, {self.n}), got {x.shape}")
        out = np.empty((x.shape[0], self.n_classes))
        for i in range(x.shape[0]):                       # one FFT at a time: bounded memory
            p = np.abs(np.fft.fft2(x[i].astype(np.float64))) ** 2 / x[i].size
            p[0, 0] = 0.0
            out[i] = np.einsum("kl,ckl->c", p, self._inv)
        return out

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """Log-likelihood (up to a constant shared by the classes) of each sample: ``(count, C)``.

        ``x`` : ``(count, n, n)`` or ``(n, n)`` real fields.
        """
        q = self.quadratic(x)
        m = self.n * self.n - 1
        if self.mode == "gaussian":
            return -0.5 * q - 0.5 * self._logdet[None]
        return -0.5 * m * np.log(q) - 0.5 * self._logdet[None]

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


def oracle_for_recipe(recipe, mode: str = "scale_free", floor: float = 1e-6) -> SpectralOracle:
    """The oracle of a :class:`backdrop_repro.datasets.Recipe` (class spectra from the recipe).

    Exact for ``method="fft"`` recipes (up to the per-scale standardisation), an approximation
    built on the matched spectra otherwise. Example: ``oracle_for_recipe(datasets.SMOKE)``.
    """
    from . import datasets

    return SpectralOracle([datasets.class_spectrum(recipe, c) for c in range(len(recipe.classes))],
                          mode=mode, floor=floor)


def oracle_accuracy(recipe, images: np.ndarray, labels: np.ndarray, mode: str = "scale_free") -> dict[str, float]:
    """``oracle_for_recipe(recipe, mode).evaluate(images, labels)``: ``{"accuracy", "loss"}``."""
    return oracle_for_recipe(recipe, mode).evaluate(images, labels)
