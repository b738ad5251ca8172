"""Non-decomposable losses: a pairwise ROC-AUC surrogate trained with per-sample backdrop.

Data flow: :mod:`.data` (the digits split and the scorer) → :mod:`.run` (settings ``NDConfig``
from the profile, training, the experiment, its results JSON/CSV) → :mod:`.report` (reads a
result: selection and comparisons; the words are :mod:`backdrop_repro.render`'s) ; :mod:`.fidelity` is the
gradient diagnostic; :mod:`.cli` is the ``nondecomposable`` command.

The public names of these modules are available here (``from backdrop_repro.experiments import
nondecomposable as nd; nd.run_experiment("smoke")``).
"""
from .data import load_data, make_model, n_train
from .fidelity import fidelity_table, gradient_fidelity
from .report import comparisons, headline, select_best
from .run import (METHODS, NDConfig, banner, check_runs, describe, fidelity, get_config, read_results, results_name,
                  run_experiment, train_run, write_results)

__all__ = ["METHODS", "NDConfig", "get_config", "load_data", "make_model", "train_run", "fidelity", "run_experiment",
           "results_name", "write_results", "read_results", "check_runs",
           "comparisons", "headline", "select_best", "fidelity_table", "gradient_fidelity", "describe",
           "banner", "n_train"]
