"""The GP sweep: 2-scale CNNs with and without backdrop on the multi-scale GP classes.

* :mod:`.plan` : ``RunSpec`` (a run and its key), the grid and the studies, run records;
* :mod:`.report` : tables, verdict, the reproduction check (reads records only);
* :mod:`.models` : trained networks for figures;
* :mod:`.launch` : submitit; :mod:`.cli` : the ``sweep`` command.
"""
from .models import ensure_models, load_model  # noqa: F401
from .plan import *  # noqa: F401,F403
from .plan import __all__ as _plan_all
from .report import (compare_with_reference, reproduction_table, results_table, run_sweep, summarize,  # noqa: F401
                     verdict, write_tables)

__all__ = list(_plan_all) + ["compare_with_reference", "ensure_models", "load_model", "reproduction_table",
                             "results_table", "run_sweep", "summarize", "verdict", "write_tables"]
