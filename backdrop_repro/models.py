"""The 2-scale CNN with backdrop masks placed by receptive field.

The authors' demo network (for 1024x1024 inputs) is the default configuration::

    Conv(1->w, k5, s2, p2) + ReLU                      512^2
    4 x [Conv(w->w, k, s2) + ReLU]                     32^2   -> fine mask  (small blobs)
    3 x [Conv(w->w, k, s2) + ReLU]                     4^2    -> coarse mask (large blobs)
    global average pool -> Linear(w -> n_classes)

With ``kernel=2`` (stride 2, no overlap) every cell of a mask's grid sees a disjoint square
patch of the input, so the masks are crisp in input space; with ``kernel=3`` neighbouring cells
overlap and the masks "bleed" into each other.

Formulations (``impl``; the same parameters, so the same ``init_seed`` gives the same network):

* ``"conv"`` (default): ``nn.Conv2d`` layers (oneDNN on a CPU, cuDNN on a GPU), the reference.
  Every committed run record but ``paper-cpu``'s was trained with it; it alone supports ``kernel=3``.
* ``"blocked"`` (``paper-cpu``): the k2/s2 convolutions as copy-free GEMMs, a CPU-speed option
  that lives apart in :mod:`backdrop_repro.formulations` (its docstring; ``tests/test_models.py``
  checks its outputs and every gradient against ``"conv"``).

:meth:`TwoScaleCNN.for_scales` places the two masks for other image sizes and correlation
lengths (its mask probabilities are required: no silent default): a mask's cell (the stride of the layer it follows) is the power of two nearest to
``2.5 x`` the correlation length of its scale (32 px for the paper's small blobs of 9.5-10 px,
256 px for the large blobs of 80-140 px, which is the demo network), and the coarse grid keeps
at least 2 x 2 cells.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, cast

import torch
from torch import nn

from .checks import check_int, is_real
from .formulations import features_blocked
from .masking import BackdropMask

__all__ = ["TwoScaleCNN", "cell_layers", "conv_flops", "IMPLS", "STEMS"]

#: formulations of the network (see the module docstring); ``"conv"`` is the default
IMPLS = ("conv", "blocked")
#: stems of the ``"blocked"`` formulation (a run's key records it)
STEMS = ("im2col",)


def _conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    if kernel not in (2, 3):
        raise ValueError(f"kernel must be 2 or 3, got {kernel!r}")
    return nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2 if kernel == 3 else 0)


def cell_layers(cl: float | Sequence[float], factor: float = 2.5) -> int:
    """Number of stride-2 layers (stem included) whose stride best matches blobs of length ``cl``.

    The cell size ``2 ** layers`` is the power of two nearest to ``factor * cl`` (geometric
    mean of ``cl`` when several lengths share a scale).

    Example
    -------
    >>> cell_layers((9.5, 10.0)), cell_layers((80.0, 140.0))   # 32 px and 256 px cells
    (5, 8)
    """
    many = isinstance(cl, (tuple, list)) or (hasattr(cl, "ndim") and getattr(cl, "ndim") == 1)
    values: list[Any] = list(cast(Sequence[float], cl)) if many else [cl]
    if not values or any(not (is_real(c) and c > 0 and math.isfinite(c)) for c in values):
        raise ValueError(f"cl must be a positive correlation length in pixels, or a sequence of them, got {cl!r}")
    cls = [float(c) for c in values]
    g = math.exp(sum(math.log(c) for c in cls) / len(cls))
    return max(1, round(math.log2(factor * g)))


class TwoScaleCNN(nn.Module):
    """2-scale CNN: features -> fine mask -> more features -> coarse mask -> pool -> linear.

    Parameters
    ----------
    width : channels of every conv layer (64 in the paper).
    n_classes : outputs of the linear head (4 for the GP task).
    fine_prob, coarse_prob : mask probabilities (0 = that mask is off; both 0 = the
        no-backdrop baseline with the identical network and parameters).
    n_fine, n_coarse : number of k/s2 convs before the fine mask (after the k5 stem) and
        between the fine and the coarse mask.
    kernel : 2 (crisp masks) or 3 (overlapping receptive fields).
    normalization, generator : passed to both :class:`BackdropMask` layers.
    init_seed : if given, the parameters are initialised from this seed (run under a forked
        global RNG so the caller's RNG state is untouched).
    init : ``"torch"`` (PyTorch's default initialisers, default) or ``"he"`` (He-normal conv
        weights for ReLU, zero biases: keeps the activations' scale through the 5-9 layers, so
        training leaves the initial loss plateau much sooner).
    impl : ``"conv"`` (default) or ``"blocked"`` (module docstring): how the k2/s2 convolutions
        are computed; the parameters and their initialisation do not depend on it.
    stem : ``"im2col"``: the stem of ``impl="blocked"`` (one choice left; a run's key records it).
    image_size : side of the square inputs the mask grids (:attr:`cells`) are stated for (None:
        unknown, and :attr:`cells` says so; :meth:`for_scales` sets it). The network itself takes
        any size divisible as below.

    Input ``(N, 1, H, W)`` with H, W divisible by ``2 ** (1 + n_fine + n_coarse)``;
    output ``(N, n_classes)`` logits.

    Example
    -------
    >>> net = TwoScaleCNN(width=8, fine_prob=0.3, coarse_prob=0.95)
    >>> net(torch.zeros(2, 1, 256, 256)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        width: int = 64,
        n_classes: int = 4,
        fine_prob: float = 0.0,
        coarse_prob: float = 0.0,
        n_fine: int = 4,
        n_coarse: int = 3,
        kernel: int = 2,
        normalization: str = "realized",
        generator: Optional[torch.Generator] = None,
        init_seed: Optional[int] = None,
        init: str = "torch",
        impl: str = "conv",
        stem: str = "im2col",
        image_size: Optional[int] = None,
    ) -> None:
        super().__init__()
        if init not in ("torch", "he"):
            raise ValueError(f"init must be 'torch' or 'he', got {init!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if impl != "conv" and kernel != 2:
            raise ValueError(f"impl {impl!r} needs kernel=2 (non-overlapping convolutions), got kernel={kernel!r}")
        width, n_classes, n_coarse = (check_int(name, v, low=1) for name, v in
                                      (("width", width), ("n_classes", n_classes), ("n_coarse", n_coarse)))
        n_fine = check_int("n_fine", n_fine, low=0)
        kernel = check_int("kernel", kernel, low=1)
        if init_seed is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(init_seed))
                self._build(width, n_classes, fine_prob, coarse_prob, n_fine, n_coarse, kernel, normalization, generator)
                self._init(init)
        else:
            self._build(width, n_classes, fine_prob, coarse_prob, n_fine, n_coarse, kernel, normalization, generator)
            self._init(init)
        self.width, self.n_classes, self.kernel = width, n_classes, kernel
        self.n_fine, self.n_coarse = n_fine, n_coarse
        self.downsample = 2 ** (1 + n_fine + n_coarse)
        self.impl, self.stem = impl, stem
        self.image_size = None if image_size is None else check_int("image_size", image_size, low=1)

    def _build(self, width, n_classes, fine_prob, coarse_prob, n_fine, n_coarse, kernel, normalization, generator):
        layers: list[nn.Module] = [nn.Conv2d(1, width, 5, stride=2, padding=2), nn.ReLU()]
        for _ in range(n_fine):
            layers += [_conv(width, width, kernel), nn.ReLU()]
        self.fine_features = nn.Sequential(*layers)
        self.fine_mask = BackdropMask(fine_prob, dims=(-2, -1), normalization=normalization, generator=generator)
        layers = []
        for _ in range(n_coarse):
            layers += [_conv(width, width, kernel), nn.ReLU()]
        self.coarse_features = nn.Sequential(*layers)
        self.coarse_mask = BackdropMask(coarse_prob, dims=(-2, -1), normalization=normalization, generator=generator)
        self.head = nn.Linear(width, n_classes)

    def _init(self, init: str) -> None:
        if init == "he":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    @classmethod
    def for_scales(
        cls,
        size: int,
        small_cl: float | Sequence[float] = (9.5, 10.0),
        large_cl: float | Sequence[float] = (80.0, 140.0),
        min_coarse_grid: int = 2,
        *,
        fine_prob: float,
        coarse_prob: float,
        **kwargs,
    ) -> "TwoScaleCNN":
        """Network for ``size x size`` images whose masks sit at the blob scales.

        The fine mask follows the layer of stride ``2 ** cell_layers(small_cl)`` and the coarse
        mask the layer of stride ``2 ** cell_layers(large_cl)``, capped so the coarse grid has
        at least ``min_coarse_grid`` cells per side. ``fine_prob`` and ``coarse_prob`` are
        **required** (keyword-only; there is no default): ``fine_prob=0.3, coarse_prob=0.95`` is the
        authors' demo setting, ``0, 0`` the no-backdrop baseline (the same network and parameters).
        Other keyword arguments go to the constructor (``width``, ``kernel``, ``init_seed``, ...).

        Example
        -------
        >>> TwoScaleCNN.for_scales(1024, fine_prob=0.3, coarse_prob=0.95).cells   # the authors' demo network
        ((32, 32), (4, 4))
        >>> TwoScaleCNN.for_scales(256, width=8, fine_prob=0.0, coarse_prob=0.0).cells
        ((8, 8), (2, 2))
        """
        if not (check_int("size", size, low=8) & (int(size) - 1) == 0):
            raise ValueError(f"size must be a power of two >= 8, got {size!r}")
        size = int(size)
        min_coarse_grid = check_int("min_coarse_grid", min_coarse_grid, low=1)
        total_max = int(math.log2(size // min_coarse_grid))
        fine = cell_layers(small_cl)
        coarse = min(cell_layers(large_cl), total_max)
        if coarse <= fine:
            raise ValueError(
                f"size {size} is too small to separate the scales {small_cl} and {large_cl} "
                f"(fine cell 2**{fine}, coarse cell 2**{coarse}); use a larger size")
        net = cls(n_fine=fine - 1, n_coarse=coarse - fine, fine_prob=fine_prob, coarse_prob=coarse_prob, **kwargs)
        net.image_size = size
        return net

    @property
    def cells(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Mask grids ``((fine_h, fine_w), (coarse_h, coarse_w))`` for ``image_size`` inputs; a
        ``ValueError`` when the network does not know its input size (no size is assumed)."""
        size = self.image_size
        if size is None:
            raise ValueError("cells needs the input size: build the network with image_size=<side> (or "
                             "TwoScaleCNN.for_scales(size, ...)), or set net.image_size")
        if size % self.downsample:
            raise ValueError(f"image_size must be a multiple of {self.downsample} (2 ** (1 + n_fine + n_coarse)), "
                             f"got {size!r}")
        f = size // 2 ** (1 + self.n_fine)
        c = size // self.downsample
        return (f, f), (c, c)

    @property
    def receptive_fields(self) -> tuple[int, int]:
        """Receptive field in input pixels of one fine-grid cell and one coarse-grid cell."""
        r, jump = 5, 2
        for _ in range(self.n_fine):
            r, jump = r + (self.kernel - 1) * jump, jump * 2
        fine = r
        for _ in range(self.n_coarse):
            r, jump = r + (self.kernel - 1) * jump, jump * 2
        return fine, r

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The masked coarse feature map ``(N, width, H/downsample, W/downsample)``."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (N, 1, H, W), got {tuple(x.shape)}")
        if x.shape[-1] % self.downsample or x.shape[-2] % self.downsample:
            raise ValueError(f"x's H and W must be multiples of {self.downsample}, got {tuple(x.shape[-2:])}")
        if self.impl == "blocked":
            return features_blocked(self, x)
        h = self.fine_mask(self.fine_features(x))
        return self.coarse_mask(self.coarse_features(h))

    def k2_convs(self) -> list[nn.Conv2d]:
        """The k/s2 convolutions after the stem, in order (the GEMMs of ``impl="blocked"``)."""
        convs = [m for m in self.fine_features if isinstance(m, nn.Conv2d)][1:]
        return convs + [m for m in self.coarse_features if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(-2, -1)))


def conv_flops(model: TwoScaleCNN, size: int, backward: bool = True) -> float:
    """Floating-point operations (2 per multiply-add) of one ``size x size`` sample.

    Counts the convolutions and the head; the backward pass costs twice the forward of every
    layer except the stem (whose input needs no gradient), which costs once more.

    Example
    -------
    >>> round(conv_flops(TwoScaleCNN(), 1024) / 1e9, 1)     # GFLOP per sample, fwd + bwd
    10.3
    """
    flops_fwd, stem = 0.0, 0.0
    h = size
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            h = (h + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            f = 2.0 * h * h * m.in_channels * m.out_channels * k
            if m.in_channels == 1:
                stem = f
            flops_fwd += f
        elif isinstance(m, nn.Linear):
            flops_fwd += 2.0 * m.in_features * m.out_features
    if not backward:
        return flops_fwd
    return 3 * flops_fwd - stem
