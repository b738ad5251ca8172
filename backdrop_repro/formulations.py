"""CPU-speed options of :class:`~backdrop_repro.models.TwoScaleCNN`, opt-in and apart from the model.

Nothing here changes what the network computes; each option is chosen by measurement
(``python bench/bench_train.py --formulations`` prints which formulation leads on the CPU at hand):

* ``impl="blocked"`` (the ``paper-cpu`` profile): the k2/s2 convolutions as plain GEMMs with no
  layout copy. The stem writes its output rows in a hierarchical (quadtree) order ``(n, i_top,
  j_top, i_bit(L-1), j_bit(L-1), ..., i_bit0, j_bit0)`` (the 5 x 5 patches of the image gathered
  in that order with a column of ones, so the bias rides in the GEMM), so the 2 x 2 children of
  every output pixel of every later layer are 4 adjacent rows: the input of each k2/s2 layer is a
  *view* ``(pixels, 4 x width)`` of the previous ReLU's output, and each GEMM's output (and its
  input gradient) is already in the next layer's order. The masks are drawn by
  :func:`~backdrop_repro.masking.draw_mask` for the map's logical NCHW shape (the same generator
  calls and ``last_mask`` as ``impl="conv"``) and reordered to the rows (:func:`mask_rows`).
  Measured: ahead of ``nn.Conv2d`` in NHWC at width 64 (the paper's network) on the development
  CPU (1.27-1.30x) and on an earlier AMD CPU; behind it at width 16 and on an AMD Zen 3
  (``docs/performance.md``).
* :func:`keep_freed_memory` (``paper-cpu`` too): glibc keeps freed memory between steps, so the
  1024² maps are not page-faulted in again at every step (the largest single gain at width 64).

``tests/test_models.py`` checks the outputs, every parameter's gradient and the input gradient of
each formulation against the reference ``impl="conv"`` network, and the same masks drawn.

Example
-------
>>> import torch
>>> t = torch.arange(16.0).reshape(1, 4, 4)
>>> to_blocked(t, 1).reshape(-1)[:4]          # the 2 x 2 children of the top-left output pixel
tensor([0., 1., 4., 5.])
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .masking import BackdropMask, backdrop, draw_mask

__all__ = ["features_blocked", "mask_rows", "to_blocked", "gemm_weight", "keep_freed_memory"]


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


def mask_rows(mask: BackdropMask, h: torch.Tensor, n: int, gh: int, gw: int, levels: int) -> torch.Tensor:
    """``mask`` applied to rows ``h`` ``(N * gh * gw, C)`` of a ``gh x gw`` grid in quadtree order of
    ``levels``, exactly as ``mask`` masks the NCHW map ``(N, C, gh, gw)``: the same checks and draw,
    the same ``last_mask``, the gradient of each row times its cell's normalised mask."""
    if tuple(mask.dims) != (-2, -1):
        raise ValueError(f"impl 'blocked' supports masks over dims (-2, -1) only, got {mask.dims}")
    if not mask.active or not (torch.is_grad_enabled() and h.requires_grad):
        return h
    keep, scaled = draw_mask((n, h.shape[-1], gh, gw), mask.mask_prob, mask.dims, mask.normalization,
                             mask.generator, mask.pinned)
    mask.last_mask = keep
    rows = h.view(n, gh * gw, -1)
    per_row = to_blocked(scaled.reshape(1, gh, gw), levels).reshape(1, gh * gw, 1)
    return backdrop(rows, per_row).view(h.shape)


def features_blocked(net: Any, x: torch.Tensor) -> torch.Tensor:
    """The masked coarse feature map ``(N, width, H/downsample, W/downsample)`` of ``net`` (a
    ``TwoScaleCNN`` with ``kernel=2``) by the copy-free blocked formulation (module docstring)."""
    n, _, hgt, wid = x.shape
    levels = net.n_fine + net.n_coarse
    hs, ws = hgt // 2, wid // 2
    th, tw = hs >> levels, ws >> levels
    stem = net.fine_features[0]
    k, p = stem.kernel_size[0], stem.padding[0]
    xp = nn.functional.pad(x.reshape(n, hgt, wid), (p, p, p, p))
    r = xp.stride(1)
    patches = xp.as_strided((n, hs, ws, k, k), (xp.stride(0), 2 * r, 2, r, 1))
    # the patches and a column of ones (the bias folded into the GEMM: no bias pass)
    rows = x.new_empty((n * hs * ws, k * k + 1))
    rows.view(n, th, tw, *[2] * (2 * levels), k * k + 1)[..., :k * k].copy_(
        to_blocked(patches, levels).reshape(n, th, tw, *[2] * (2 * levels), k * k))
    rows[:, k * k] = 1.0
    w = torch.cat([stem.weight.reshape(stem.out_channels, -1), stem.bias[:, None]], dim=1)
    h = torch.mm(rows, w.t()).relu_()
    if net.n_fine == 0:
        h = mask_rows(net.fine_mask, h, n, hs, ws, levels)
    for i, conv in enumerate(net.k2_convs()):
        h = torch.addmm(conv.bias, h.view(-1, 4 * h.shape[-1]), gemm_weight(conv)).relu_()
        if i == net.n_fine - 1:
            h = mask_rows(net.fine_mask, h, n, th << net.n_coarse, tw << net.n_coarse, net.n_coarse)
    h = mask_rows(net.coarse_mask, h, n, th, tw, 0)
    return h.view(n, th, tw, -1).permute(0, 3, 1, 2)


def keep_freed_memory(limit_bytes: int = 2 ** 31) -> bool:
    """Let glibc's malloc keep freed memory (CPU speed only: numbers are unchanged).

    A 1024² width-64 feature map is 64 MB per sample; glibc serves blocks above 32 MB with a fresh
    ``mmap`` and returns them at ``free``, so every such tensor of every step page-faults its
    memory in again (a fresh 268 MB tensor: ~120 ms to fill, 40 ms when reused, on the
    development CPU). This switches ``mmap`` off for ``malloc`` (``M_MMAP_MAX = 0``) and keeps up
    to ``limit_bytes`` of freed heap (``M_TRIM_THRESHOLD``), for the whole process. Returns False
    (and does nothing) where the C library is not glibc. Example: ``keep_freed_memory()`` -> True.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, int(limit_bytes)))
