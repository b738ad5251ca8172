"""Backdrop masking: identity in the forward pass, a random 0/1 mask on the gradient backward.

A backdrop mask is "dropout along the backward pass". The forward value is untouched, so the
loss is always computed on the whole input; only the gradient that flows back through the mask
is multiplied by a random keep-mask ``m`` (1 = kept, 0 = blocked), renormalised so that the
gradient keeps its scale::

    forward:   y = x
    backward:  dL/dx = dL/dy * m / s,   s = mean(m) ("realized", the authors' choice)
                                        s = E[m_i] ("expected": unbiased, E[m_i / s] = 1)
                                        s = 1 ("none")

``E[m_i]`` is the exact keep probability of a cell, never-all-zero fallback included: with
``G`` cells each kept with probability ``1 - p`` and, when all are blocked (probability
``p^G``), one cell kept uniformly at random, ``E[m_i] = (1 - p) + p^G / G``. (Dividing by
``1 - p`` alone overshoots by ``1 + p^G / (G (1 - p))``: 1.55 at p = 0.95 on a 4×4 grid.)
"realized" makes the mask's mean exactly 1 in every draw, and it is unbiased per cell too: the
cells are exchangeable and ``mean(m) > 0`` always, so ``E[m_i / mean(m)] = 1`` for every cell
(``Σ_i m_i / mean(m) = G`` in every draw); it changes the variance, not the mean. A
``pinned`` mask is not random: it keeps one cell of ``G``, so "expected" and "realized" both
scale it by ``G`` (mean 1), and "none" leaves it 0/1.

The mask has the size of ``x`` along the masked ``dims`` and size 1 along every other dim, so
one mask is shared by every index of the unmasked dims. The default ``dims=(-2, -1)`` masks the
(H, W) cells of an NCHW feature map with **one spatial mask shared by the whole batch and every
channel** (the authors' choice: every sample of a step sees the same kept cells); per-sample masking
for non-decomposable losses uses ``dims=(0,)``, and ``dims=(0, -2, -1)`` draws one spatial mask per sample.

The mask's meaning lives here and only here: the draw (:func:`draw_mask`, with the never-all-zero
fallback), the keep probability (:func:`keep_probability`), the normalisation and the
backward-only product. Two functional forms:

* :func:`backdrop_mask` ``(x, mask_prob, ...)`` draws the mask itself and applies it; it returns
  the output and the 0/1 mask drawn (None when it draws none). It is to :class:`BackdropMask`
  what ``torch.nn.functional.dropout`` is to ``nn.Dropout``: the layer keeps the arguments,
  calls it in ``forward`` and stores the mask drawn in ``last_mask``.
* :func:`backdrop` ``(x, mask)`` applies a mask drawn beforehand (e.g. by :func:`draw_mask`).

Example
-------
>>> import torch
>>> from backdrop_repro.masking import BackdropMask
>>> layer = BackdropMask(mask_prob=0.5, dims=(-2, -1), generator=torch.Generator().manual_seed(0))
>>> x = torch.ones(1, 1, 4, 4, requires_grad=True)
>>> y = layer(x)
>>> torch.equal(y, x)                 # forward is the identity
True
>>> y.sum().backward()
>>> bool(((x.grad == 0) | (x.grad == x.grad.max())).all())   # gradient is 0 or 1/mean(mask)
True
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from .checks import is_int, is_real

NORMALIZATIONS = ("realized", "expected", "none")

__all__ = ["BackdropMask", "BackdropFunction", "backdrop", "backdrop_mask", "draw_mask", "keep_probability",
           "NORMALIZATIONS"]


class BackdropFunction(torch.autograd.Function):
    """Autograd function ``y = x`` whose backward multiplies the gradient by ``mask``.

    ``mask`` must broadcast against ``x`` and already carry its normalisation.
    The forward returns ``x.detach()``: the same memory (no copy of the data) but not an
    autograd view, so an in-place op on the output (``nn.ReLU(inplace=True)``) is allowed and
    behaves as after ``nn.Identity``: it also changes ``x``'s values (shared version counter, so
    autograd still refuses if ``x`` was saved for a backward pass).
    """

    @staticmethod
    def forward(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.detach()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        # the separate context makes the function usable under torch.func.grad / jacrev (not vmap)
        ctx.save_for_backward(inputs[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def backdrop(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Functional backdrop with a given mask: return ``x`` unchanged; its gradient is multiplied by ``mask``.

    The mask is drawn beforehand; :func:`backdrop_mask` draws it itself.

    Parameters
    ----------
    x : Tensor of any shape.
    mask : Tensor broadcastable to ``x`` (already normalised, e.g. from :func:`draw_mask`).
        It is cast to ``x``'s dtype and device.

    Example
    -------
    >>> x = torch.arange(4.0, requires_grad=True)
    >>> backdrop(x, torch.tensor([0.0, 2.0, 0.0, 2.0])).sum().backward()
    >>> x.grad
    tensor([0., 2., 0., 2.])
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    try:
        torch.broadcast_shapes(mask.shape, x.shape)
    except RuntimeError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to x of shape {tuple(x.shape)}") from None
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x
    return BackdropFunction.apply(x, mask.to(device=x.device, dtype=x.dtype))


def backdrop_mask(
    x: torch.Tensor,
    mask_prob: float,
    dims: Sequence[int] = (-2, -1),
    normalization: str = "realized",
    generator: Optional[torch.Generator] = None,
    pinned: Optional[Sequence[int]] = None,
    training: bool = True,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Functional backdrop mask (``F.dropout``-style): draw a mask and apply it to ``x``'s gradient.

    Parameters
    ----------
    x : the tensor to mask; returned unchanged (it shares ``x``'s memory, see :class:`BackdropFunction`).
    mask_prob, dims, normalization, generator, pinned : as in :func:`draw_mask`.
    training : False: return ``x`` and draw nothing (as ``F.dropout(training=False)``).

    Returns
    -------
    (y, keep) : ``y`` is ``x`` in the forward pass; its gradient is ``x``'s times the normalised
    mask. ``keep`` is the 0/1 mask drawn (shape as in :func:`draw_mask`, on the CPU), or None
    when none is drawn: ``training`` False, ``mask_prob == 0`` with no ``pinned`` cell, gradients
    disabled or ``x`` not requiring one; the generator is then left untouched and ``y`` is ``x``.

    Example
    -------
    >>> x = torch.ones(1, 1, 2, 2, requires_grad=True)
    >>> y, keep = backdrop_mask(x, 0.5, generator=torch.Generator().manual_seed(0))
    >>> y.sum().backward()
    >>> torch.equal(x.grad, keep / keep.mean())
    True
    """
    mask_prob = _check_prob(mask_prob)
    pinned = _check_pinned(pinned)
    if not training or (mask_prob == 0 and pinned is None) or not (torch.is_grad_enabled() and x.requires_grad):
        return x, None
    if x.ndim == 0:
        raise ValueError(f"a backdrop mask over dims {tuple(dims)} needs a tensor with the masked dims, got a 0-d "
                         "tensor (a scalar has no cells to mask)")
    keep, scaled = draw_mask(x.shape, mask_prob, dims, normalization, generator, pinned)
    return BackdropFunction.apply(x, scaled.to(device=x.device, dtype=x.dtype)), keep


def _check_prob(mask_prob: float) -> float:
    if isinstance(mask_prob, torch.Tensor) and mask_prob.numel() == 1 and not mask_prob.dtype.is_complex \
            and mask_prob.dtype != torch.bool:
        mask_prob = mask_prob.item()
    if not is_real(mask_prob):
        raise ValueError(f"mask_prob must be a real number in [0, 1), got {mask_prob!r}")
    mask_prob = float(mask_prob)
    if not 0.0 <= mask_prob < 1.0:
        raise ValueError(f"mask_prob must be in [0, 1) (probability of blocking a cell), got {mask_prob}")
    return mask_prob


def _check_dims(dims: Any) -> tuple[int, ...]:
    if is_int(dims):
        dims = (dims,)
    try:
        dims = tuple(dims)
    except TypeError:
        raise ValueError(f"dims must be a non-empty sequence of distinct ints, got {dims!r}") from None
    if not dims or not all(is_int(d) for d in dims):
        raise ValueError(f"dims must be a non-empty sequence of distinct ints, got {dims!r}")
    out = tuple(int(d) for d in dims)
    if len(set(out)) != len(out):
        raise ValueError(f"dims must not contain duplicates, got {out!r}")
    return out


def _check_pinned(pinned: Any) -> Optional[tuple[int, ...]]:
    if pinned is None:
        return None
    if is_int(pinned):
        pinned = (pinned,)
    try:
        pinned = tuple(pinned)
    except TypeError:
        raise ValueError(f"pinned must be None or one integer index per masked dim, got {pinned!r}") from None
    if not all(is_int(i) for i in pinned):
        raise ValueError(f"pinned must be None or one integer index per masked dim, got {pinned!r}")
    return tuple(int(i) for i in pinned)


def _check_normalization(normalization: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    return normalization


def _resolve_dims(dims: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    out = []
    for d in dims:
        if not -ndim <= d < ndim:
            raise ValueError(f"dims entry {d} is out of range for a tensor with {ndim} dims (accepted: {-ndim}..{ndim - 1})")
        out.append(d % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"dims {dims} name the same dim twice for a tensor with {ndim} dims")
    return tuple(out)


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` as a tuple of ints >= 0 (a ``torch.Size``, a list of Python or numpy ints), else a
    ``ValueError``: a fractional or bool size (``4.5``, ``True``) is never truncated."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of ints >= 0, got {shape!r}") from None
    bad = [d for d in dims if not is_int(d) or d < 0]
    if bad:
        raise ValueError(f"shape must be a sequence of ints >= 0, got {tuple(dims)!r} ({bad[0]!r} is not)")
    return tuple(int(d) for d in dims)


def draw_mask(
    shape: Sequence[int],
    mask_prob: float,
    dims: Sequence[int] = (-2, -1),
    normalization: str = "realized",
    generator: Optional[torch.Generator] = None,
    pinned: Optional[Sequence[int]] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a backdrop mask for a tensor of ``shape``.

    Parameters
    ----------
    shape : shape of the tensor the mask is for, e.g. ``(N, C, H, W)``.
    mask_prob : probability of *blocking* a cell, in [0, 1).
    dims : the masked dims; the mask has ``shape[d]`` cells along them and size 1 elsewhere. The
        default ``(-2, -1)`` gives an NCHW map one ``(1, 1, H, W)`` mask, shared by the batch and the channels.
    normalization : ``"realized"`` (divide by the mean of the drawn mask, default: mean 1 in
        every draw), ``"expected"`` (divide by the exact keep probability of a cell,
        :func:`keep_probability` = ``(1 - p) + p^G / G`` for ``G`` cells: unbiased, the
        expectation of every cell of ``scaled`` is 1) or ``"none"``. With ``pinned`` the mask is
        deterministic: "realized" and "expected" both scale the kept cell by ``G``.
    generator : optional CPU ``torch.Generator`` for reproducible masks.
    pinned : optional index (one int per masked dim) of the single cell to keep.

    Returns
    -------
    (keep, scaled) : ``keep`` is the 0/1 float32 mask, ``scaled`` the normalised mask that
    multiplies the gradient; both of shape ``[shape[d] if d in dims else 1 for d]``, on the CPU.
    If every cell comes out blocked, one cell chosen uniformly at random is kept. A grid with
    no cells (a masked dim of size 0) gives empty masks.

    Example
    -------
    >>> keep, scaled = draw_mask((2, 3, 4, 4), 0.5, generator=torch.Generator().manual_seed(1))
    >>> keep.shape, float(scaled.mean())
    (torch.Size([1, 1, 4, 4]), 1.0)
    """
    mask_prob = _check_prob(mask_prob)
    normalization = _check_normalization(normalization)
    shape = _check_shape(shape)
    rdims = _resolve_dims(_check_dims(dims), len(shape))
    mshape = [shape[d] if d in rdims else 1 for d in range(len(shape))]
    grid = [shape[d] for d in rdims]
    cells = 1
    for g in grid:
        cells *= g
    pinned = _check_pinned(pinned)
    if pinned is not None:
        if len(pinned) != len(grid) or not all(0 <= i < g for i, g in zip(pinned, grid)):
            raise ValueError(f"pinned must be one index per masked dim inside the grid {tuple(grid)}, got {pinned}")
        keep = torch.zeros(grid, dtype=torch.float32)
        keep[pinned] = 1.0
    elif cells == 0:
        keep = torch.zeros(grid, dtype=torch.float32)
    else:
        keep = (torch.rand(grid, generator=generator) >= mask_prob).to(torch.float32)
        if not keep.any():
            flat = keep.view(-1)
            flat[torch.randint(flat.numel(), (1,), generator=generator)] = 1.0
    keep = keep.reshape(mshape)
    if cells == 0 or normalization == "none":
        scaled = keep.clone()
    elif normalization == "realized" or pinned is not None:
        scaled = keep / keep.mean()
    else:
        scaled = keep / keep_probability(mask_prob, cells)
    return keep, scaled


def keep_probability(mask_prob: float, cells: int) -> float:
    """Exact probability that a given cell is kept by :func:`draw_mask` (no ``pinned``).

    Each of the ``cells`` cells is kept with probability ``1 - mask_prob``; if all are blocked
    (probability ``mask_prob ** cells``) one cell chosen uniformly is kept, so
    ``P(keep) = (1 - mask_prob) + mask_prob ** cells / cells``. It is the divisor of
    ``normalization="expected"``.

    Example
    -------
    >>> round(keep_probability(0.95, 16), 4)
    0.0775
    """
    mask_prob = _check_prob(mask_prob)
    if not is_int(cells) or cells < 1:
        raise ValueError(f"cells must be an integer >= 1, got {cells!r}")
    return (1.0 - mask_prob) + mask_prob ** int(cells) / int(cells)


class BackdropMask(nn.Module):
    """A backdrop masking layer (identity forward, random gradient mask backward).

    Parameters
    ----------
    mask_prob : probability of *blocking* a cell, in [0, 1). 0 = identity (no mask drawn).
    dims : the masked dims. The default ``(-2, -1)`` masks the H, W cells of an NCHW map with
        **one mask shared by the whole batch and every channel** (shape ``(1, 1, H, W)``);
        ``(0, -2, -1)`` draws one spatial mask per sample, ``(0,)`` masks whole samples.
    normalization : how the kept cells are rescaled (see :func:`draw_mask`): ``"realized"``
        (default, the authors' choice) divides by the mean of the mask actually drawn, so the
        mask's mean is exactly 1 in every draw; ``"expected"`` divides by the keep probability
        ``(1 - p) + p^G / G`` of a cell (unbiased); ``"none"`` leaves the 0/1 mask.
    generator : optional ``torch.Generator`` (CPU) for reproducible masks.
    pinned : optional cell (one index per masked dim) to keep alone, for diagnosis.

    Notes
    -----
    A new mask is drawn at every forward pass in training mode when the input requires a
    gradient. In ``eval()`` mode, under ``torch.no_grad()`` and with ``mask_prob == 0`` (and no
    ``pinned`` cell) the layer returns its input and draws nothing. ``forward`` is
    :func:`backdrop_mask` with the layer's settings. The last drawn 0/1 mask is
    kept in ``last_mask`` (shape broadcastable to the input) for plotting. The output shares
    ``x``'s memory and may be modified in place (``nn.ReLU(inplace=True)``); an input with no
    elements (a masked dim of size 0) passes through with a gradient of the same (empty) shape.

    Example
    -------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), BackdropMask(0.5))
    >>> net(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 2, 8, 8])
    """

    def __init__(
        self,
        mask_prob: float = 0.5,
        dims: Sequence[int] = (-2, -1),
        normalization: str = "realized",
        generator: Optional[torch.Generator] = None,
        pinned: Optional[Sequence[int]] = None,
    ) -> None:
        super().__init__()
        self.mask_prob = _check_prob(mask_prob)
        self.dims = _check_dims(dims)
        self.normalization = _check_normalization(normalization)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator
        self.pinned = _check_pinned(pinned)
        self.last_mask: Optional[torch.Tensor] = None

    @property
    def active(self) -> bool:
        """True when a forward pass in training mode would draw a mask."""
        return self.training and (self.mask_prob > 0 or self.pinned is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, keep = backdrop_mask(x, self.mask_prob, self.dims, self.normalization, self.generator, self.pinned,
                                training=self.training)
        if keep is not None:
            self.last_mask = keep
        return y

    def extra_repr(self) -> str:
        s = f"mask_prob={self.mask_prob}, dims={self.dims}, normalization={self.normalization!r}"
        return s + (f", pinned={self.pinned}" if self.pinned is not None else "")
