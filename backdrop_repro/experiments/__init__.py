"""The package's experiments, each in its own module, all judged by :mod:`backdrop_repro.report`.

* :mod:`.gp_sweep` : run the 2-scale CNNs with and without backdrop on the multi-scale GP classes.
* :mod:`.gp_report` : ``run_sweep``, the sweep's tables, verdict and reproduction check.
* :mod:`.gp_models` : trained networks for figures; :mod:`.launch` : submitit; :mod:`.gp_cli` : the command.
* :mod:`.nondecomposable` : per-sample backdrop for a non-decomposable (AUC) loss.

``from backdrop_repro import experiments; experiments.run_sweep(...)`` works: the GP sweep's
public functions are re-exported here.
"""
from .gp_models import ensure_models, load_model  # noqa: F401
from .gp_report import (compare_with_reference, reproduction_table, results_table, run_sweep, summarize,  # noqa: F401
                        verdict, write_tables)
from .gp_sweep import *  # noqa: F401,F403
from .gp_sweep import __all__ as _sweep_all

__all__ = list(_sweep_all) + ["compare_with_reference", "ensure_models", "load_model", "reproduction_table",
                              "results_table", "run_sweep", "summarize", "verdict", "write_tables"]
