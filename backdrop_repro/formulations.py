"""GEMM formulations of :class:`~backdrop_repro.models.TwoScaleCNN` that no profile uses, and the
layout helpers they share with the ``"blocked"`` formulation (which ``paper-cpu`` uses and
``models.py`` keeps).

* :func:`features_s2d` is ``impl="s2d"``: NHWC maps, each k2/s2 convolution as space-to-depth (a
  view and one copy into ``(pixels, 4 x width)`` rows) and one ``addmm``, ReLU in place. It
  trained ``tests/data/formulation-s2d/`` and is a row of ``bench/bench_train.py``.
* :func:`blocked_conv_stem` is ``stem="conv"`` of ``impl="blocked"``: ``nn.Conv2d``, then one
  copy into the quadtree row order (``bench/bench_train.py``: slower than the im2col stem at
  width 64, the paper's network; docs/performance.md).

Both are reached through ``TwoScaleCNN(impl=..., stem=...)``; the masks are drawn by
:mod:`backdrop_repro.masking` (``BackdropMask.apply_to`` with the map's logical NCHW shape), so
every formulation draws the same masks from the same generator state.

Example
-------
>>> import torch
>>> t = torch.arange(16.0).reshape(1, 4, 4)
>>> to_blocked(t, 1).reshape(-1)[:4]          # the 2 x 2 children of the top-left output pixel
tensor([0., 1., 4., 5.])
"""
from __future__ import annotations

import torch
from torch import nn

from .masking import BackdropMask

__all__ = ["features_s2d", "blocked_conv_stem", "to_blocked", "gemm_weight", "mask_nhwc", "check_hw_mask"]


def gemm_weight(conv: nn.Conv2d) -> torch.Tensor:
    """``(kh * kw * cin, cout)`` matrix of a conv's weight, rows ordered ``(di, dj, c)``."""
    return conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.out_channels)


def to_blocked(t: torch.Tensor, levels: int) -> torch.Tensor:
    """View ``(N, H, W, *rest)`` as ``(N, H >> L, W >> L, i_bit(L-1), j_bit(L-1), ..., i_bit0, j_bit0, *rest)``."""
    n, h, w, *rest = t.shape
    if levels == 0:
        return t
    two = [2] * levels
    v = t.reshape(n, h >> levels, *two, w >> levels, *two, *rest)
    perm = [0, 1, levels + 2]
    for k in range(levels):
        perm += [2 + k, levels + 3 + k]
    perm += list(range(2 * levels + 3, v.ndim))
    return v.permute(perm)


def check_hw_mask(mask: BackdropMask) -> None:
    """The GEMM formulations lay out masks over the H, W of an NCHW map only."""
    if tuple(mask.dims) != (-2, -1):
        raise ValueError(f"impl 'blocked'/'s2d' support masks over dims (-2, -1) only, got {mask.dims}")


def mask_nhwc(mask: BackdropMask, h: torch.Tensor) -> torch.Tensor:
    """``mask`` applied to an NHWC map ``h`` exactly as it masks the NCHW map ``(N, C, H, W)``."""
    check_hw_mask(mask)
    n, hh, ww, c = h.shape
    return mask.apply_to(h, shape=(n, c, hh, ww), arrange=lambda s: s.reshape(hh, ww, 1))


def features_s2d(net, x: torch.Tensor) -> torch.Tensor:
    """The masked coarse feature map of ``net`` (a ``TwoScaleCNN``, ``kernel=2``) by space-to-depth + GEMM."""
    stem = net.fine_features[0]
    h = torch.relu_(stem(x.contiguous(memory_format=torch.channels_last))).permute(0, 2, 3, 1)
    if net.n_fine == 0:
        h = mask_nhwc(net.fine_mask, h)
    for i, conv in enumerate(net._k2_convs()):
        n, hh, ww, c = h.shape
        rows = h.reshape(n, hh // 2, 2, ww // 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, 4 * c)
        h = torch.addmm(conv.bias, rows, gemm_weight(conv)).relu_().view(n, hh // 2, ww // 2, -1)
        if i == net.n_fine - 1:
            h = mask_nhwc(net.fine_mask, h)
    return mask_nhwc(net.coarse_mask, h).permute(0, 3, 1, 2)


def blocked_conv_stem(stem: nn.Conv2d, x: torch.Tensor, levels: int) -> torch.Tensor:
    """The stem's ReLU output as rows ``(N * H/2 * W/2, C)`` in quadtree order of ``levels``: ``nn.Conv2d`` + one copy."""
    y = stem(x.contiguous(memory_format=torch.channels_last)).permute(0, 2, 3, 1)
    return to_blocked(y, levels).reshape(-1, stem.out_channels).relu_()
