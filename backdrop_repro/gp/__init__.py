"""Gaussian random fields of the multi-scale GP task: samplers, spectra, statistics, and the
spectral likelihood classifier.

* :mod:`.fields` : the FFT sampler, ``sample_field`` dispatch, spectra and statistics;
* :mod:`.faithful` : the paper-faithful patch construction (``sample_faithful``, ``patch_geometry``);
* :mod:`.oracle` : the spectral likelihood classifier (the reference accuracy of the task);
* :mod:`._common` : argument checks, seeding (``child_seeds``) and ``standardize``.

The samplers' public names are available here: ``from backdrop_repro import gp; gp.sample_field(...)``.
"""
from .fields import *  # noqa: F401,F403
from .fields import __all__  # noqa: F401
from .faithful import LARGE_UPSCALE, PATCH_POINTS  # noqa: F401  (constants of the faithful construction)
