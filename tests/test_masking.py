"""The backdrop masking layer (``backdrop_repro.masking``): identity forward, exactly-masked gradient backward;
mask shapes must be integers, a 0-d tensor is one line, ``torch.func.grad`` goes through the mask. The pinned
masks: ``test_masking_pins.py``."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from backdrop_repro.masking import BackdropFunction, BackdropMask, backdrop, backdrop_mask, draw_mask, keep_probability
from backdrop_repro.models import TwoScaleCNN


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_forward_is_bit_identical_and_no_copy():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    y = BackdropMask(0.5, generator=gen())(x)
    assert torch.equal(y, x)
    assert y.data_ptr() == x.data_ptr()  # a view, not a copy


def test_gradient_is_upstream_times_normalised_mask_exactly():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    layer = BackdropMask(0.4, generator=gen(1))
    y = layer(x)
    upstream = torch.randn_like(x)
    y.backward(upstream)
    keep = layer.last_mask
    assert keep.shape == (1, 1, 8, 8)
    assert set(keep.unique().tolist()) == {0.0, 1.0}
    expected = upstream * (keep / keep.mean())
    assert torch.equal(x.grad, expected)


def test_realized_normalisation_gives_mask_mean_one():
    for seed in range(20):
        keep, scaled = draw_mask((4, 5, 16, 16), 0.7, generator=gen(seed))
        assert scaled.mean().item() == pytest.approx(1.0, abs=1e-6)
        assert torch.equal(scaled > 0, keep > 0)


def test_expected_normalisation_is_unbiased_on_average():
    # Mean over many draws of the masked gradient -> the unmasked gradient. Each cell's average of
    # Bernoulli(0.7)/0.7 over 4000 draws has std sqrt(0.3/0.7/4000) = 0.0104; 6 sigma = 0.062.
    x = torch.randn(1, 1, 6, 6, requires_grad=True)
    upstream = torch.randn(1, 1, 6, 6)
    layer = BackdropMask(0.3, normalization="expected", generator=gen(2))
    acc = torch.zeros_like(x)
    n = 4000
    for _ in range(n):
        x.grad = None
        layer(x).backward(upstream)
        acc += x.grad
    ratio = acc / n / upstream
    assert (ratio - 1).abs().max().item() < 0.062


def test_none_normalisation_is_plain_zero_one_mask():
    keep, scaled = draw_mask((3, 10), 0.5, dims=(1,), normalization="none", generator=gen(3))
    assert keep.shape == (1, 10)
    assert torch.equal(keep, scaled)


def test_mask_shape_is_explicit_not_trailing_broadcast():
    # The original code's pitfall: a mask meant for dim 1 of a [1, 4, 4] tensor masked dim 2.
    keep, _ = draw_mask((1, 4, 4), 0.5, dims=(1,), generator=gen(4))
    assert keep.shape == (1, 4, 1)
    x = torch.ones(1, 4, 4, requires_grad=True)
    layer = BackdropMask(0.5, dims=(1,), generator=gen(4))
    layer(x).sum().backward()
    # whole rows (dim 1) are kept or blocked; within a row the gradient is constant along dim 2
    assert torch.equal(x.grad, x.grad[:, :, :1].expand_as(x.grad))


def test_per_sample_mask_over_dim0():
    x = torch.randn(10, 3, requires_grad=True)
    layer = BackdropMask(0.5, dims=(0,), generator=gen(5))
    layer(x).sum().backward()
    keep = layer.last_mask.view(-1)
    assert layer.last_mask.shape == (10, 1)
    blocked = keep == 0
    assert (x.grad[blocked] == 0).all()
    assert torch.allclose(x.grad[~blocked], torch.full_like(x.grad[~blocked], 10 / keep.sum().item()))


def test_never_all_zero_mask():
    # p = 0.999 on 4 cells: P(some cell kept by chance) = 1 - 0.999^4 = 0.004, so in 50 draws the
    # fallback keeps exactly one cell almost every time, and that cell is not always the same.
    ones, where = 0, set()
    for seed in range(50):
        keep, scaled = draw_mask((1, 1, 2, 2), 0.999, generator=gen(seed))
        assert keep.sum().item() >= 1
        ones += int(keep.sum().item() == 1)
        where.add(int(keep.view(-1).argmax()))
        assert scaled.sum().item() == pytest.approx(4.0)
    assert ones >= 48 and len(where) > 1


@pytest.mark.parametrize("normalization, value", [("realized", 16.0), ("expected", 16.0), ("none", 1.0)])
def test_pinned_mode_keeps_exactly_one_cell(normalization, value):
    x = torch.ones(1, 2, 4, 4, requires_grad=True)
    layer = BackdropMask(0.7, pinned=(2, 1), normalization=normalization, generator=gen(0))
    layer(x).sum().backward()
    assert int((layer.last_mask != 0).sum()) == 1 and layer.last_mask[0, 0, 2, 1] == 1
    for c in range(2):                                       # every channel: the one cell only
        assert x.grad[0, c].nonzero().tolist() == [[2, 1]]
    # pinned masks are deterministic: "expected" is the realized mean (1 of 16 cells), not 1/(1-p)
    assert x.grad[0, 0, 2, 1].item() == pytest.approx(value)


def test_kept_fraction_matches_one_minus_mask_prob():
    """mask_prob is the probability of *blocking*: over 200 draws of a 32×32 grid at p = 0.3 the
    kept fraction is 0.7 within 5 binomial standard errors (sqrt(0.21 / 204800) = 0.001)."""
    p, draws = 0.3, 200
    kept = sum(float(draw_mask((1, 1, 32, 32), p, generator=gen(s))[0].mean()) for s in range(draws)) / draws
    se = math.sqrt(p * (1 - p) / (draws * 1024))
    assert abs(kept - (1 - p)) < 5 * se
    # the gradient is blocked exactly where the mask is 0
    x = torch.ones(1, 1, 32, 32, requires_grad=True)
    layer = BackdropMask(0.9, generator=gen(1))
    layer(x).sum().backward()
    assert torch.equal(x.grad == 0, layer.last_mask.expand_as(x) == 0)
    assert 0.05 < float(layer.last_mask.mean()) < 0.15


@pytest.mark.parametrize("p, grid", [(0.95, (4, 4)), (0.5, (2, 1)), (0.3, (6, 6))])
def test_expected_normalisation_is_unbiased_with_the_fallback(p, grid):
    """E[scaled] = 1 in every cell, fallback included (before the fix, p = 0.95 on 4×4 gave 1.55).

    Tolerances from the number of draws n: the per-draw mean of scaled is K / (G q) with K the
    kept count (Binomial(G, 1-p), 0 replaced by 1), whose exact variance gives a 5 sigma band for
    the mean over n draws; each cell is 0 or 1/q (variance 1/q - 1): a 5 sigma band per cell."""
    cells = grid[0] * grid[1]
    q = keep_probability(p, cells)
    assert q == pytest.approx((1 - p) + p ** cells / cells)
    ek = cells * (1 - p) + p ** cells                                  # E[K]
    ek2 = cells * p * (1 - p) + (cells * (1 - p)) ** 2 + p ** cells     # E[K^2]
    assert ek / (cells * q) == pytest.approx(1.0)
    n = 3000
    sd_mean = math.sqrt((ek2 - ek ** 2) / (cells * q) ** 2 / n)
    acc, total = torch.zeros(grid), 0.0
    g = gen(3)
    for _ in range(n):
        scaled = draw_mask((1, 1) + grid, p, normalization="expected", generator=g)[1][0, 0]
        acc += scaled
    mean = acc / n
    assert abs(float(mean.mean()) - 1) < 5 * sd_mean, (float(mean.mean()), sd_mean)
    assert (mean - 1).abs().max().item() < 5 * math.sqrt((1 / q - 1) / n)
    if p == 0.95:                                            # the old 1/(1-p) gave 1.55: > 20 sigma off
        assert q / (1 - p) - 1 > 20 * sd_mean


def test_zero_size_masked_dim_passes_through():
    for shape, dims in [((2, 3, 0, 4), (-2, -1)), ((0, 5), (0,)), ((2, 0, 3), (1,))]:
        x = torch.randn(shape, requires_grad=True)
        layer = BackdropMask(0.5, dims=dims, generator=gen(0))
        y = layer(x)
        assert y.shape == x.shape
        (y * 2).sum().backward()
        assert x.grad.shape == x.shape
        keep, scaled = draw_mask(shape, 0.5, dims=dims, normalization="expected")
        assert keep.numel() == 0 and scaled.numel() == 0


def test_inplace_op_after_the_mask():
    """conv -> mask -> ReLU(inplace=True): works, gradient equal to the out-of-place network's
    gradient times the mask, and the mask's output shares the conv output's memory."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 3, 3, padding=1)
    x = torch.randn(2, 1, 8, 8)
    grads = {}
    for inplace in (True, False):
        conv.zero_grad()
        layer = BackdropMask(0.5, generator=gen(4))
        h = conv(x)
        y = layer(h)
        assert y.data_ptr() == h.data_ptr()
        out = nn.ReLU(inplace=inplace)(y)
        (out * torch.arange(64.0).view(8, 8)).sum().backward()
        grads[inplace] = conv.weight.grad.clone()
    assert torch.allclose(grads[True], grads[False])
    # reference: the gradient of the pre-activation is upstream * relu' * mask
    conv.zero_grad()
    h = conv(x).detach().requires_grad_(True)
    (torch.relu(h) * torch.arange(64.0).view(8, 8)).sum().backward()
    mask = layer.last_mask / layer.last_mask.mean()
    ref = torch.autograd.grad(conv(x), conv.weight, h.grad * mask)[0]
    assert torch.allclose(grads[True], ref, atol=1e-5)
    # an in-place op on a tensor autograd saved is still caught, exactly as without the mask
    z = torch.randn(1, 1, 4, 4, requires_grad=True)
    r = torch.sigmoid(z)                                     # saves its output r
    nn.ReLU(inplace=True)(BackdropMask(0.5, generator=gen(5))(r))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        r.sum().backward()


def test_numpy_scalars_are_accepted():
    layer = BackdropMask(np.float32(0.5), dims=(np.int64(-2), np.int64(-1)), generator=gen(6))
    assert layer.mask_prob == 0.5 and layer.dims == (-2, -1) and type(layer.dims[0]) is int
    assert BackdropMask(np.float64(0.25)).mask_prob == 0.25 and BackdropMask(np.int64(0)).mask_prob == 0.0
    pinned = BackdropMask(0.0, pinned=(np.int64(1), np.int32(2)))
    assert pinned.pinned == (1, 2)
    keep, _ = draw_mask((1, 1, 4, 4), np.float32(0.3), dims=[np.int64(2), np.int64(3)], generator=gen(6))
    assert keep.shape == (1, 1, 4, 4)
    for bad in (True, np.bool_(True), "0.5", None):
        with pytest.raises(ValueError, match="mask_prob"):
            BackdropMask(bad)
    with pytest.raises(ValueError, match="pinned"):
        BackdropMask(0.0, pinned=(1.5, 2))


def test_same_seed_same_mask_and_different_seed_differs():
    a, _ = draw_mask((1, 1, 32, 32), 0.5, generator=gen(7))
    b, _ = draw_mask((1, 1, 32, 32), 0.5, generator=gen(7))
    c, _ = draw_mask((1, 1, 32, 32), 0.5, generator=gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_nested_coarse_times_fine_masks_zero_outside_kept_coarse_cells():
    torch.manual_seed(0)
    net = TwoScaleCNN(width=16, fine_prob=0.3, coarse_prob=0.5, generator=gen(9))
    x = torch.randn(1, 1, 512, 512, requires_grad=True)
    net(x).sum().backward()
    coarse = net.coarse_mask.last_mask[0, 0]  # 2x2 grid, 256 px cells
    fine = net.fine_mask.last_mask[0, 0]  # 16x16 grid, 32 px cells
    g = x.grad[0, 0].abs()
    up_coarse = coarse.repeat_interleave(256, 0).repeat_interleave(256, 1)
    up_fine = fine.repeat_interleave(32, 0).repeat_interleave(32, 1)
    kept = up_coarse * up_fine
    # The k5/p2 stem widens each cell's input footprint by 2 px: blocked cells are exactly zero
    # except within 2 px of a kept cell.
    near_kept = torch.nn.functional.max_pool2d(kept[None, None], 5, stride=1, padding=2)[0, 0]
    assert (g[near_kept == 0] == 0).all()
    assert (near_kept == 0).float().mean() > 0.3  # a substantial area is blocked
    assert (g[kept > 0] > 0).float().mean() > 0.9


def test_identity_in_eval_no_grad_and_zero_prob():
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    layer = BackdropMask(0.5, generator=gen())
    layer.eval()
    layer(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    assert layer.last_mask is None
    layer.train()
    with torch.no_grad():
        y = layer(x)
    assert torch.equal(y, x) and layer.last_mask is None
    x.grad = None
    BackdropMask(0.0)(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes(dtype):
    x = torch.randn(2, 2, 4, 4, dtype=dtype, requires_grad=True)
    layer = BackdropMask(0.5, generator=gen(11))
    y = layer(x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype
    expected = (layer.last_mask / layer.last_mask.mean()).to(dtype).expand_as(x)
    assert torch.equal(x.grad, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda():
    x = torch.randn(2, 2, 4, 4, device="cuda", requires_grad=True)
    layer = BackdropMask(0.5, generator=gen(12))
    layer(x).sum().backward()
    assert x.grad.device.type == "cuda"
    assert torch.equal(x.grad.cpu(), (layer.last_mask / layer.last_mask.mean()).expand(2, 2, 4, 4))


def test_inside_sequential_and_functional_form():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), BackdropMask(0.5, generator=gen(13)), nn.ReLU())
    x = torch.randn(1, 1, 8, 8)
    out = net(x)
    assert out.shape == (1, 3, 8, 8)
    assert torch.equal(out, torch.relu(net[0](x)))               # forward untouched
    out.sum().backward()
    # the conv weight gradient only sums over the kept cells, scaled by 1 / mean(mask)
    mask = (net[1].last_mask / net[1].last_mask.mean()).expand(1, 3, 8, 8)
    pre = net[0](x)
    expected = torch.autograd.grad(pre, net[0].weight, (pre > 0).float() * mask, retain_graph=True)[0]
    assert torch.allclose(net[0].weight.grad, expected, atol=1e-6)
    unmasked = torch.autograd.grad(pre, net[0].weight, (pre > 0).float())[0]
    assert not torch.allclose(net[0].weight.grad, unmasked, atol=1e-3)
    z = torch.arange(4.0, requires_grad=True)
    backdrop(z, torch.tensor([0.0, 2.0, 0.0, 2.0])).sum().backward()
    assert z.grad.tolist() == [0.0, 2.0, 0.0, 2.0]
    assert BackdropFunction.apply(z, torch.ones(4)) is not z


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(mask_prob=1.0), "mask_prob"),
        (dict(mask_prob=-0.1), "mask_prob"),
        (dict(mask_prob="0.5"), "mask_prob"),
        (dict(mask_prob=True), "mask_prob"),
        (dict(mask_prob=0.5, dims=(True,)), "dims"),
        (dict(mask_prob=0.5, dims=()), "dims"),
        (dict(mask_prob=0.5, dims=(1, 1)), "dims"),
        (dict(mask_prob=0.5, dims=(1.5,)), "dims"),
        (dict(mask_prob=0.5, normalization="mean"), "normalization"),
    ],
)
def test_bad_arguments_raise_valueerror_naming_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BackdropMask(**kwargs)


def test_bad_arguments_at_call_time():
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    with pytest.raises(ValueError, match="dims"):
        BackdropMask(0.5, dims=(4,))(x)
    with pytest.raises(ValueError, match="dims"):
        BackdropMask(0.5, dims=(-1, 3))(x)  # the same dim twice
    with pytest.raises(ValueError, match="pinned"):
        BackdropMask(0.0, pinned=(4, 0))(x)
    with pytest.raises(ValueError, match="pinned"):
        BackdropMask(0.0, pinned=(1,))(x)
    with pytest.raises(ValueError, match="mask"):
        backdrop(x, torch.ones(3))


def test_functional_form_draws_the_layers_mask():
    """``backdrop_mask`` is ``BackdropMask.forward``: the same draws from the same generator, the
    same gradient; it returns the 0/1 mask, or None (generator untouched) when it draws none."""
    x = torch.randn(2, 3, 4, 4)
    layer = BackdropMask(0.6, normalization="expected", generator=gen(21))
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    layer(xa).sum().backward()
    g = gen(21)
    y, keep = backdrop_mask(xb, 0.6, normalization="expected", generator=g)
    assert torch.equal(y, xb) and torch.equal(keep, layer.last_mask)
    y.sum().backward()
    assert torch.equal(xa.grad, xb.grad)
    assert torch.equal(g.get_state(), layer.generator.get_state())
    state = g.get_state()
    for kwargs, inp in [(dict(training=False), xb), (dict(mask_prob=0.0), xb), (dict(), x)]:
        args = dict(mask_prob=0.6, generator=g) | kwargs
        out, none = backdrop_mask(inp, **args)
        assert out is inp and none is None
    with torch.no_grad():
        assert backdrop_mask(xb, 0.6, generator=g)[1] is None
    assert torch.equal(g.get_state(), state)


# ------------------------------------------------------------------ mask shapes, 0-d tensors, torch.func.grad
@pytest.mark.parametrize("shape", [(1, 1, 4.5, 4), (1, 1, True, 4), (1, 1, -4, 4), (1, 1, "4", 4)])
def test_mask_shapes_must_be_integers(shape):
    with pytest.raises(ValueError, match="shape must be a sequence of ints >= 0"):
        draw_mask(shape, 0.5, (-2, -1), generator=torch.Generator().manual_seed(0))
    assert draw_mask((1, 1, np.int64(4), 4), 0.5, (-2, -1), generator=torch.Generator().manual_seed(0))[0].shape \
        == (1, 1, 4, 4)


def test_backdrop_mask_on_a_0d_tensor_is_one_line():
    with pytest.raises(ValueError, match="0-d tensor"):
        BackdropMask(0.5, dims=(0,))(torch.tensor(1.0, requires_grad=True))


def test_torch_func_grad_goes_through_the_mask():
    x = torch.ones(6)
    g = torch.func.grad(lambda t: BackdropMask(0.5, dims=(0,), generator=torch.Generator().manual_seed(0))(t).sum())(x)
    x.requires_grad_(True)
    BackdropMask(0.5, dims=(0,), generator=torch.Generator().manual_seed(0))(x).sum().backward()
    assert torch.equal(g, x.grad) and (g == 0).any() and (g > 1).any()


def test_default_dims_share_one_spatial_mask_across_batch_and_channels():
    # what the docstrings and the README say of the default dims=(-2, -1) and normalization="realized"
    layer = BackdropMask(0.5, generator=torch.Generator().manual_seed(3))
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    layer(x).backward(torch.ones_like(x))
    m = layer.last_mask
    assert m.shape == (1, 1, 8, 8)
    assert torch.equal(x.grad, x.grad[:1, :1].expand_as(x.grad))          # the same cells for every sample and channel
    assert torch.allclose(x.grad[0, 0], m[0, 0] / m.mean())                 # kept cells x 1/realised mean, others 0
