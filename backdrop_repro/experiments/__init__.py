"""The package's experiments, each in its own module, all judged by :mod:`backdrop_repro.report`.

* :mod:`.gp_sweep` : run the 2-scale CNNs with and without backdrop on the multi-scale GP classes.
* :mod:`.gp_report` : the sweep's tables, verdict and reproduction check (and its CLI).
* :mod:`.nondecomposable` : per-sample backdrop for a non-decomposable (AUC) loss.

``from backdrop_repro import experiments; experiments.run_sweep(...)`` works: the GP sweep's
public functions are re-exported here.
"""
from .gp_report import (compare_with_reference, reproduction_table, results_table, summarize, verdict,  # noqa: F401
                        write_tables)
from .gp_sweep import *  # noqa: F401,F403
from .gp_sweep import __all__ as _sweep_all

__all__ = list(_sweep_all) + ["compare_with_reference", "reproduction_table", "results_table", "summarize",
                              "verdict", "write_tables"]
