"""Moved to :mod:`backdrop_repro.experiments.nondecomposable` (this shim goes once cli.py imports it there)."""
from .experiments.nondecomposable import *  # noqa: F401,F403
from .experiments.nondecomposable import __all__, add_cli  # noqa: F401
