"""The GP sweep: 2-scale CNNs with and without backdrop on the multi-scale GP classes.

Data flow: :mod:`.plan` (``RunSpec``, its key, the grid and the studies) → :mod:`.run` (the one
runner: each run through the run core, :mod:`..core`, which writes its keyed record; launcher
``local`` or ``submitit``, :mod:`..launchers`) → records ``results/<profile>/gp_runs/<key>.json`` →
:mod:`.report` (reads records only: summaries, judged comparisons, reproduction check). :mod:`.models` loads
trained networks for figures; :mod:`.cli` is the ``sweep`` command.

The public names of :mod:`.plan`, :mod:`.run`, :mod:`.report` and :mod:`.models` are available here.
"""
from .models import ensure_models, load_model
from .plan import (CONFIGS, STUDIES, RunSpec, collect, find_record, load_sweep, plan_grid, plan_runs, plan_studies,
                   read_record, runs_dir, select_best)
from .report import (ReproductionError, check_reproduction, compare_with_reference, design_of, summarize, verdict,
                     write_tables)
from .run import build_model, load_data, run_one, run_sweep, scale_metrics

__all__ = ["CONFIGS", "STUDIES", "RunSpec", "plan_grid", "plan_studies", "plan_runs", "select_best", "collect",
           "load_sweep", "runs_dir", "read_record", "find_record", "run_sweep", "run_one",
           "build_model", "load_data", "summarize", "verdict", "write_tables",
           "compare_with_reference", "ensure_models", "load_model", "ReproductionError",
           "check_reproduction", "design_of", "scale_metrics"]
