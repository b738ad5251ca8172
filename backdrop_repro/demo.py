"""Helpers behind the backdrop-demo notebook: input gradients, masks in input space, and the
Monte-Carlo view of backdrop (many masked gradients average to the full one).

The Monte-Carlo helpers use one fact of the k2/s2 demo network: its backward is *linear in the
masks*. Split the gradient of the stem filter (the first conv) into one contribution ``G[c]`` per
fine-grid cell ``c``; a backdrop step with normalised masks ``s`` then gives exactly
``sum_c s[c] G[c]`` (fine and coarse factors multiplied). One ordinary backward pass therefore
yields the gradient of *every* possible mask draw, and thousands of draws cost nothing.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import profiles
from .masking import draw_mask, keep_probability

__all__ = ["input_gradient", "mask_in_input_space", "fraction_outside", "stem_cell_gradients",
           "combine", "expected_scale", "monte_carlo", "clipping_effect", "adam_progress", "scale_budget"]


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


# --------------------------------------------------------------------------------------------
# Monte-Carlo view
# --------------------------------------------------------------------------------------------
def stem_cell_gradients(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Per fine-cell contributions ``G`` of ``dL/d(stem weight, stem bias)``, ``L = net(x).sum()``.

    ``net`` is a k2 :class:`~backdrop_repro.models.TwoScaleCNN`, ``x`` one image ``(1, 1, H, W)``.
    Returns float64 ``(g, g, P)``: ``g`` = fine grid side, ``P`` = number of stem parameters.
    ``G.sum((0, 1))`` is the unmasked gradient; a backdrop step with normalised masks gives
    ``combine(G, fine, coarse)`` exactly (the k2/s2 layers map each cell to its own block).
    The network's mode and gradients are left as they were (``.grad`` set to None).
    Example: ``stem_cell_gradients(TwoScaleCNN(width=4), torch.randn(1, 1, 256, 256)).shape == (8, 8, 104)``.
    """
    if getattr(net, "kernel", None) != 2:
        raise ValueError("net must be a TwoScaleCNN with kernel=2 (non-overlapping cells)")
    if x.ndim != 4 or x.shape[:2] != (1, 1):
        raise ValueError(f"x must have shape (1, 1, H, W), got {tuple(x.shape)}")
    stem = net.fine_features[0]
    seen = {}

    def hook(module, inputs, out):
        out.retain_grad()
        seen["a"] = out

    handle = stem.register_forward_hook(hook)
    was_training = net.training
    try:
        net.eval()
        net(x.detach()).sum().backward()
    finally:
        handle.remove()
        net.train(was_training)
        net.zero_grad(set_to_none=True)
    delta = seen["a"].grad[0].double()                               # (C, H/2, W/2)
    c, h2, w2 = delta.shape
    g = x.shape[-1] // 2 ** (1 + net.n_fine)
    b = h2 // g
    patches = F.unfold(x.detach().double(), stem.kernel_size, padding=stem.padding, stride=stem.stride)[0]
    d = delta.reshape(c, g, b, g, b)
    gw = torch.einsum("oyaxb,kyaxb->yxok", d, patches.reshape(-1, g, b, g, b)).reshape(g, g, -1)
    gb = d.sum(dim=(2, 4)).permute(1, 2, 0)
    return torch.cat([gw, gb], dim=-1).numpy()


def combine(G: np.ndarray, fine: np.ndarray, coarse: Optional[np.ndarray] = None) -> np.ndarray:
    """The stem gradient ``(P,)`` of one backdrop step: ``sum_c fine[c] coarse[c] G[c]``.

    ``fine``: normalised fine mask ``(g, g)``; ``coarse``: normalised coarse mask ``(k, k)`` with
    ``k`` dividing ``g`` (each coarse cell covers a block of fine cells), or None.
    Example: ``combine(G, np.ones(G.shape[:2]))`` is ``G.sum((0, 1))``.
    """
    w = np.asarray(fine, dtype=np.float64).reshape(G.shape[:2])
    if coarse is not None:
        c = np.asarray(coarse, dtype=np.float64)
        c = c.reshape(c.shape[-2:])
        if G.shape[0] % c.shape[0]:
            raise ValueError(f"coarse grid {c.shape} must divide the fine grid {G.shape[:2]}")
        w = w * np.kron(c, np.ones((G.shape[0] // c.shape[0],) * 2))
    return np.einsum("yx,yxp->p", w, G)


def expected_scale(mask_prob: float, cells: int, normalization: str) -> float:
    """Exact mean of one cell's gradient factor ``s`` under :func:`~backdrop_repro.masking.draw_mask`.

    A cell is kept with probability ``q = (1 - p) + p**n / n`` on ``n`` cells
    (:func:`~backdrop_repro.masking.keep_probability`): the never-all-zero fallback keeps one
    cell when all ``n`` come out blocked. ``realized`` (``m / mean(m)``):
    exactly 1 (the cells are exchangeable and ``mean(m) > 0``). ``expected`` (``m / q``, the
    library's): exactly 1. ``naive`` (``m / (1 - p)``, the usual dropout factor, not a library
    option): ``q / (1 - p) = 1 + p**n / (n (1 - p))``, biased upward where the fallback
    triggers often (high ``p``, few cells). ``none``: ``q``.
    Example: ``expected_scale(0.95, 4, "naive")`` is about 5.07.
    """
    if normalization in ("realized", "expected"):
        return 1.0
    if normalization not in ("naive", "none"):
        raise ValueError(f"normalization must be 'realized', 'expected', 'naive' or 'none', got {normalization!r}")
    kept = keep_probability(mask_prob, cells)
    return kept / (1 - mask_prob) if normalization == "naive" else kept


def monte_carlo(G: np.ndarray, coarse_grid: int, fine_prob: float, coarse_prob: float,
                normalization: str = "realized", draws: int = 1000, seed: int = 0) -> dict:
    """Average ``draws`` backdrop gradients (masks from :func:`~backdrop_repro.masking.draw_mask`).

    ``normalization``: one of the library's (``realized``, ``expected``, ``none``) or ``naive``
    (the 0/1 mask divided by ``1 - p``, ignoring the never-all-zero fallback).

    Returns ``grads`` ``(draws, P)`` (every step's gradient), ``full`` ``(P,)``, ``error``
    ``(draws,)``: ``|mean of the first N - full| / |full|`` for N = 1..draws, and ``bias``:
    ``<mean, full> / |full|² - 1`` of the average over all draws (0 for an unbiased estimator,
    up to Monte-Carlo noise). Example: ``monte_carlo(G, 2, 0.3, 0.95, "expected", 500)``.
    """
    gen = torch.Generator().manual_seed(seed)
    g = G.shape[0]
    full = G.sum(axis=(0, 1))
    grads = np.empty((draws, full.size))
    lib = "none" if normalization == "naive" else normalization

    def draw(cells: int, p: float) -> np.ndarray:
        scaled = draw_mask((cells, cells), p, dims=(0, 1), normalization=lib, generator=gen)[1].numpy()
        return scaled / (1 - p) if normalization == "naive" else scaled

    for t in range(draws):
        grads[t] = combine(G, draw(g, fine_prob), draw(coarse_grid, coarse_prob))
    running = np.cumsum(grads, axis=0) / np.arange(1, draws + 1)[:, None]
    nf = np.linalg.norm(full)
    error = np.linalg.norm(running - full, axis=1) / nf
    bias = float(running[-1] @ full / nf ** 2 - 1)
    return {"grads": grads, "full": full, "error": error, "bias": bias}


def clipping_effect(grads: np.ndarray, full: np.ndarray, max_norm: float) -> dict:
    """What ``clip_grad_norm_(max_norm)`` applied *after* the backdrop rescale does on average.

    Returns ``clipped`` (share of steps whose norm exceeds ``max_norm``), ``norm_ratio`` (mean
    ``|g| / |full|``) and ``bias`` (``<mean clipped g, full> / |full|² - 1``).
    Example: ``clipping_effect(mc["grads"], mc["full"], np.linalg.norm(mc["full"]))``.
    """
    norms = np.linalg.norm(grads, axis=1)
    factor = np.minimum(1.0, max_norm / np.maximum(norms, 1e-300))
    mean = (grads * factor[:, None]).mean(0)
    nf = np.linalg.norm(full)
    return {"clipped": float((norms > max_norm).mean()), "norm_ratio": float(norms.mean() / nf),
            "bias": float(mean @ full / nf ** 2 - 1)}


def adam_progress(grads: np.ndarray, full: np.ndarray, lr: float = 1e-3) -> float:
    """Adam fed ``grads`` (one per step) vs Adam fed ``full`` every step: displacement ratio.

    Both start at 0 with ``torch.optim.Adam(lr)``; returns ``<d, d_full> / |d_full|²`` for the
    displacements after ``len(grads)`` steps (1 = same progress; Adam is invariant to a constant
    per-coordinate scale, so ``16 * full`` gives 1). Example: ``adam_progress(16 * G, G)``.
    """
    def run(stream):
        p = torch.zeros(full.size, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([p], lr=lr)
        for g in stream:
            p.grad = torch.as_tensor(g, dtype=torch.float64)
            opt.step()
        return p.detach().numpy()

    d = run(grads)
    d_full = run([full] * len(grads))
    return float(d @ d_full / (d_full @ d_full))


def scale_budget(profile: str, fine_prob: float, coarse_prob: float) -> dict:
    """How much of each scale one training step sees, for the profile's GP training data.

    Counts are rough: one independent realisation ("blob") per ``ℓ²`` pixels, ``ℓ`` the geometric
    mean of a scale's lengths. The mask grids are those of the sweep's network (its ``n_fine``/
    ``n_coarse`` if the profile sets them, else :meth:`TwoScaleCNN.for_scales`). Returns a dict
    with ``size``, ``small``/``large`` (ℓ px), ``fine_grid``/``coarse_grid`` (cells per side),
    ``small_blobs``/``large_blobs`` (per image), ``small_per_cell``/``large_per_cell``,
    ``fine_kept``/``coarse_kept`` (expected kept cells per step) and ``small_seen``/``large_seen``.
    Example: ``scale_budget("default", 0.3, 0.95)["coarse_grid"] == 4``.
    """
    from .data.recipes import split_recipe
    from .models import TwoScaleCNN

    p = profiles.get(profile)
    rec = split_recipe(p, "train")
    small = math.exp(np.mean(np.log(rec.scales[0])))
    large = math.exp(np.mean(np.log(rec.scales[1])))
    sw = p.sweep
    if sw.n_fine is not None and sw.n_coarse is not None:
        net = TwoScaleCNN(width=1, n_fine=sw.n_fine, n_coarse=sw.n_coarse)
        net.image_size = rec.size
    else:
        net = TwoScaleCNN.for_scales(rec.size, rec.scales[0], rec.scales[1], width=1, fine_prob=fine_prob,
                                     coarse_prob=coarse_prob)
    (fg, _), (cg, _) = net.cells
    out = {"size": rec.size, "small": small, "large": large, "fine_grid": fg, "coarse_grid": cg,
           "small_blobs": (rec.size / small) ** 2, "large_blobs": (rec.size / large) ** 2}
    out["small_per_cell"] = out["small_blobs"] / fg ** 2
    out["large_per_cell"] = out["large_blobs"] / cg ** 2
    out["fine_kept"] = fg ** 2 * keep_probability(fine_prob, fg ** 2)              # with the fallback
    out["coarse_kept"] = cg ** 2 * keep_probability(coarse_prob, cg ** 2)
    out["small_seen"] = out["fine_kept"] * out["small_per_cell"]
    out["large_seen"] = out["coarse_kept"] * out["large_per_cell"]
    return out
