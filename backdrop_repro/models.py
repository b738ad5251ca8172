"""The 2-scale CNN with backdrop masks placed by receptive field.

The authors' demo network (for 1024x1024 inputs) is the default configuration::

    Conv(1->w, k5, s2, p2) + ReLU                      512^2
    4 x [Conv(w->w, k, s2) + ReLU]                     32^2   -> fine mask  (small blobs)
    3 x [Conv(w->w, k, s2) + ReLU]                     4^2    -> coarse mask (large blobs)
    global average pool -> Linear(w -> n_classes)

With ``kernel=2`` (stride 2, no overlap) every cell of a mask's grid sees a disjoint square
patch of the input, so the masks are crisp in input space; with ``kernel=3`` neighbouring cells
overlap and the masks "bleed" into each other.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .masking import BackdropMask


def _conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    if kernel not in (2, 3):
        raise ValueError(f"kernel must be 2 or 3, got {kernel!r}")
    return nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2 if kernel == 3 else 0)


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
    ) -> None:
        super().__init__()
        for name, v in (("width", width), ("n_classes", n_classes), ("n_coarse", n_coarse)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not isinstance(n_fine, int) or n_fine < 0:
            raise ValueError(f"n_fine must be an int >= 0, got {n_fine!r}")
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
        self.downsample = 2 ** (1 + n_fine + n_coarse)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The masked coarse feature map ``(N, width, H/downsample, W/downsample)``."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (N, 1, H, W), got {tuple(x.shape)}")
        h = self.fine_mask(self.fine_features(x))
        return self.coarse_mask(self.coarse_features(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(-2, -1)))
