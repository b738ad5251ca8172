"""The backdrop masking layer: identity forward, exactly-masked gradient backward."""
import pytest
import torch
from torch import nn

from backdrop_repro.masking import BackdropFunction, BackdropMask, backdrop, draw_mask
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
    # p = 0.999 on 4 cells: almost every draw blocks everything -> exactly one cell is kept.
    for seed in range(50):
        keep, scaled = draw_mask((1, 1, 2, 2), 0.999, generator=gen(seed))
        assert keep.sum().item() >= 1
        assert scaled.sum().item() == pytest.approx(4.0)


def test_pinned_mode_keeps_exactly_one_cell():
    x = torch.ones(1, 2, 4, 4, requires_grad=True)
    layer = BackdropMask(0.0, pinned=(2, 1))
    layer(x).sum().backward()
    nz = x.grad[0, 0].nonzero().tolist()
    assert nz == [[2, 1]]
    assert x.grad[0, 0, 2, 1].item() == pytest.approx(16.0)  # realized: 1 / mean = 16 cells


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
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), BackdropMask(0.5, generator=gen(13)), nn.ReLU())
    x = torch.randn(1, 1, 8, 8)
    out = net(x)
    assert out.shape == (1, 3, 8, 8)
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
