"""The package's experiments, each in its own module, all judged by :mod:`backdrop_repro.report`.

* :mod:`.gp_sweep` : 2-scale CNNs with and without backdrop on the multi-scale GP classes.
* :mod:`.nondecomposable` : per-sample backdrop for a non-decomposable (AUC) loss.

``from backdrop_repro import experiments; experiments.run_sweep(...)`` keeps working: the GP
sweep's public functions are re-exported here.
"""
from .gp_sweep import *  # noqa: F401,F403
from .gp_sweep import __all__  # noqa: F401
