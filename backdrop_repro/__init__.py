"""backdrop-repro: reproducibility package for *Backdrop: Stochastic Backpropagation*.

Golkar & Cranmer, arXiv:1806.01337. The core idea lives in :mod:`backdrop_repro.masking`.
"""
import warnings

# tqdm.auto (imported by some dependencies) warns in Jupyter when ipywidgets is absent; the
# plain-text progress bars it falls back to are fine, and the warning would land in every
# executed notebook with an absolute path in it.
warnings.filterwarnings("ignore", message="IProgress not found")

from .masking import BackdropMask, backdrop, backdrop_mask, draw_mask  # noqa: E402
# public modules that moved into data/ and gp/: `from backdrop_repro import datasets, zenodo, oracle` keeps working
from .data import datasets, zenodo  # noqa: E402
from .gp import oracle  # noqa: E402

__version__ = "0.1.0"
__all__ = ["BackdropMask", "backdrop", "backdrop_mask", "draw_mask", "datasets", "zenodo", "oracle", "__version__"]
