"""Small helpers behind the backdrop-demo notebook: input gradients and masks in input space."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def input_gradient(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    """|dL/dx| of ``L = net(x).sum()`` for one image ``x`` of shape ``(1, 1, H, W)``.

    The network stays in whatever mode it is in (``train()`` draws masks). Returns ``(H, W)``.
    Example: ``g = input_gradient(TwoScaleCNN(width=8, fine_prob=0.3), torch.randn(1, 1, 256, 256))``.
    """
    if x.ndim != 4 or x.shape[:2] != (1, 1):
        raise ValueError(f"x must have shape (1, 1, H, W), got {tuple(x.shape)}")
    x = x.detach().clone().requires_grad_(True)
    net(x).sum().backward()
    return x.grad[0, 0].abs().numpy()


def mask_in_input_space(mask: torch.Tensor, size: int) -> np.ndarray:
    """Blow a ``(1, 1, g, g)`` (or ``(g, g)``) 0/1 mask up to ``(size, size)`` input pixels.

    Each grid cell covers ``size // g`` pixels (the receptive-field stride of a k2/s2 stack).
    Example: ``mask_in_input_space(torch.eye(2), 4)`` -> a 4x4 block-diagonal array.
    """
    m = mask.reshape(mask.shape[-2:]).numpy()
    if size % m.shape[0] or size % m.shape[1]:
        raise ValueError(f"size {size} must be a multiple of the mask grid {m.shape}")
    return np.kron(m, np.ones((size // m.shape[0], size // m.shape[1])))


def fraction_outside(grad: np.ndarray, keep: np.ndarray) -> float:
    """Share of the total |gradient| that lies where ``keep == 0`` (0 for perfectly crisp masks)."""
    total = float(grad.sum())
    return float(grad[keep == 0].sum()) / total if total > 0 else 0.0
