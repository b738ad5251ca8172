"""Gaussian random fields of the multi-scale GP task: samplers, spectra, statistics, and the
spectral likelihood classifier.

* :mod:`.fields` : the FFT and matched samplers, ``sample_field`` dispatch, spectra, statistics;
* :mod:`.faithful` : the paper-faithful patch construction (``sample_faithful``, ``patch_geometry``);
* :mod:`.oracle` : the spectral likelihood classifier (the reference accuracy of the task);
* :mod:`._common` : argument checks, seeding (``child_seeds``) and ``standardize``.

The public names of the samplers are available here: ``from backdrop_repro import gp;
gp.sample_field(256, 10.0, 2, seed=0)``.
"""
from ._common import child_seeds, standardize
from .faithful import (LARGE_SCALE_MIN, LARGE_UPSCALE, PATCH_POINTS, grid_length, patch_demo, patch_geometry,
                       sample_faithful)
from .fields import (FFT_MAX_LENGTH_RATIO, METHODS, grad_ratio, matched_spectrum, radial_average, radial_spectrum,
                     window_spectrum,
                     sample_fft, sample_field, sample_matched, se_spectrum)

__all__ = ["METHODS", "LARGE_SCALE_MIN", "LARGE_UPSCALE", "PATCH_POINTS", "FFT_MAX_LENGTH_RATIO", "se_spectrum",
           "matched_spectrum", "sample_fft", "sample_faithful", "sample_matched", "sample_field", "grid_length",
           "radial_spectrum", "radial_average", "grad_ratio", "standardize", "child_seeds", "patch_geometry",
           "patch_demo", "window_spectrum"]
