"""The spectral-energy reference network (the learnability map's and the confirm study's second model).

One convolution (``channels`` filters of ``kernel`` x ``kernel`` px, circular padding), squared,
averaged over the image, log, BatchNorm, linear::

    x (N, 1, n, n) -> conv -> y (N, C, n, n) -> mean(y**2) over pixels (N, C) -> log -> BN -> Linear -> logits

It is the smallest trainable model with the likelihood classifier's form: that classifier's
log-likelihood of a standardised Gaussian field is a weighted sum of the periodogram
``|X(k)|^2`` (:mod:`backdrop_repro.gp.oracle`), and each channel here is the periodogram
weighted by a learned filter's power response ``|G(k)|^2`` (Parseval)::

    mean_pixels(y_c**2) = sum_k |G_c(k)|^2 |X(k)|^2 / n^4   (+ the bias terms at k = 0)

``impl="fft"`` (default) computes exactly that sum from ``rfft2(x)`` (about ten times faster on a
CPU than the 7 x 7 convolution at 256²); ``impl="conv"`` runs the convolution itself. Both give the
same outputs and gradients to float32 rounding (``tests/test_learnability.py``). Circular
padding matches the periodic ``fft`` fields; the 2-scale CNN's receptive field is what differs.

Example
-------
>>> import torch
>>> net = SpectralEnergyNet(n_classes=2, channels=4, kernel=3, init_seed=0)
>>> net(torch.randn(5, 1, 32, 32)).shape
torch.Size([5, 2])
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["SpectralEnergyNet", "SPECTRAL_IMPLS"]

#: how the filtered energies are computed (same function)
SPECTRAL_IMPLS = ("fft", "conv")


class SpectralEnergyNet(nn.Module):
    """Log filtered energies -> BatchNorm -> linear (module docstring).

    Parameters: ``n_classes``; ``channels`` and ``kernel`` (odd) of the one convolution; ``eps``
    added to the energies before the log; ``init_seed`` (parameters initialised from it under a
    forked RNG); ``impl`` one of :data:`SPECTRAL_IMPLS`. Input ``(N, 1, n, n)``, output logits.
    """

    def __init__(self, n_classes: int = 2, channels: int = 16, kernel: int = 7, eps: float = 1e-6,
                 init_seed: Optional[int] = None, impl: str = "fft") -> None:
        super().__init__()
        for name, v in (("n_classes", n_classes), ("channels", channels), ("kernel", kernel)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (centred filter), got {kernel!r}")
        if impl not in SPECTRAL_IMPLS:
            raise ValueError(f"impl must be one of {SPECTRAL_IMPLS}, got {impl!r}")
        with torch.random.fork_rng(devices=[], enabled=init_seed is not None):
            if init_seed is not None:
                torch.manual_seed(int(init_seed))
            self.conv = nn.Conv2d(1, channels, kernel, padding=kernel // 2, padding_mode="circular")
            self.norm = nn.BatchNorm1d(channels)
            self.head = nn.Linear(channels, n_classes)
        self.eps, self.impl, self.kernel = float(eps), impl, kernel

    def energies(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, channels)``: the mean over pixels of each filter's squared (circular) response."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (N, 1, H, W), got {tuple(x.shape)}")
        if self.impl == "conv":
            return self.conv(x).pow(2).mean(dim=(-2, -1))
        n, _, h, w = x.shape
        if h < self.kernel or w < self.kernel:
            raise ValueError(f"images must be at least {self.kernel} px on a side, got {h}x{w}")
        c = self.kernel // 2
        # y[i] = sum_a w[a] x[i + a - c] (cross-correlation): the filter sits at offsets (a - c) mod n
        idx = (torch.arange(self.kernel, device=x.device) - c) % torch.tensor([h, w], device=x.device)[:, None]
        g = torch.zeros((self.conv.out_channels, h, w), dtype=x.dtype, device=x.device)
        g[:, idx[0][:, None], idx[1][None, :]] = self.conv.weight[:, 0]
        gk = torch.fft.rfft2(g)                                   # (C, h, w//2+1)
        xk = torch.fft.rfft2(x[:, 0])                             # (N, h, w//2+1)
        pix = h * w
        weight = torch.full((w // 2 + 1,), 2.0, dtype=x.dtype, device=x.device)   # rfft2 holds half the plane
        weight[0] = 1.0
        if w % 2 == 0:
            weight[-1] = 1.0
        p = ((xk.real ** 2 + xk.imag ** 2) * weight).reshape(n, -1)              # (N, K) weighted periodogram
        q = (gk.real ** 2 + gk.imag ** 2).reshape(gk.shape[0], -1)               # (C, K) filter power
        total = p @ q.t()                                                         # sum_k |X|^2 |G|^2
        y0 = xk[:, None, 0, 0] * gk[None, :, 0, 0].conj() + self.conv.bias[None] * pix   # k = 0 with the bias
        total = total - p[:, :1] * q[None, :, 0] + (y0.real ** 2 + y0.imag ** 2)
        return total / pix ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.log(self.energies(x) + self.eps)))
