"""Non-decomposable losses: a pairwise ROC-AUC surrogate trained with per-sample backdrop.

* :mod:`.run` : settings (``NDConfig``), training, the experiment and its results;
* :mod:`.data` : the digits data and the scorer; :mod:`.fidelity` : the gradient diagnostic;
* :mod:`.report` : tables, comparisons and the verdict.
"""
from .run import *  # noqa: F401,F403
from .run import __all__  # noqa: F401
