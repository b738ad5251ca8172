"""backdrop-repro: reproducibility package for *Backdrop: Stochastic Backpropagation*.

Golkar & Cranmer, arXiv:1806.01337. The core idea lives in :mod:`backdrop_repro.masking`.
"""
from .masking import BackdropMask, backdrop, draw_mask

__version__ = "0.1.0"
__all__ = ["BackdropMask", "backdrop", "draw_mask", "__version__"]
