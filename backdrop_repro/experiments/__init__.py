"""The package's experiments, one subpackage each, all judged by :mod:`backdrop_repro.report`.

* :mod:`.gp_sweep` : run the 2-scale CNNs with and without backdrop on the multi-scale GP classes.
* :mod:`.nondecomposable` : per-sample backdrop for a non-decomposable (AUC) loss.

``from backdrop_repro import experiments; experiments.run_sweep(...)`` works: the GP sweep's
public functions are available here.
"""
from .gp_sweep import *  # noqa: F401,F403
from .gp_sweep import __all__  # noqa: F401
