"""The 2-scale CNN: mask placement by receptive field, shapes, FLOP count, bad arguments."""
import pytest
import torch
from torch import nn

from backdrop_repro.models import IMPLS, TwoScaleCNN, cell_layers, conv_flops


def test_default_is_the_authors_demo_network():
    net = TwoScaleCNN()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == \
        [(1, 64, 5, 2)] + [(64, 64, 2, 2)] * 7
    assert TwoScaleCNN(image_size=1024).cells == ((32, 32), (4, 4))     # the demo's 1024² inputs
    assert net.receptive_fields == (35, 259)
    assert net.fine_mask.mask_prob == 0.0 and net.coarse_mask.mask_prob == 0.0


def test_for_scales_places_masks_by_blob_size():
    assert cell_layers((9.5, 10.0)) == 5 and cell_layers((80.0, 140.0)) == 8
    assert TwoScaleCNN.for_scales(1024, width=4, fine_prob=0.3, coarse_prob=0.95).cells == ((32, 32), (4, 4))
    net = TwoScaleCNN.for_scales(256, width=4, fine_prob=0.0, coarse_prob=0.0)
    assert net.cells == ((8, 8), (2, 2))           # coarse capped: at least 2 x 2 cells
    fine_rf, coarse_rf = net.receptive_fields
    assert 2 * 10 <= fine_rf <= 4 * 10 and coarse_rf >= 80
    with pytest.raises(ValueError, match="too small"):
        TwoScaleCNN.for_scales(32, width=4, fine_prob=0.0, coarse_prob=0.0)


def test_for_scales_requires_the_mask_probabilities():
    # no silent default: `for_scales(256)` once built a network with both masks off
    with pytest.raises(TypeError, match="fine_prob"):
        TwoScaleCNN.for_scales(256, width=4)
    with pytest.raises(TypeError, match="coarse_prob"):
        TwoScaleCNN.for_scales(256, width=4, fine_prob=0.3)
    net = TwoScaleCNN.for_scales(256, width=4, fine_prob=0.3, coarse_prob=0.95)
    assert (net.fine_mask.mask_prob, net.coarse_mask.mask_prob) == (0.3, 0.95)


def test_mask_grids_match_feature_maps():
    net = TwoScaleCNN.for_scales(256, width=8, fine_prob=0.5, coarse_prob=0.5, init_seed=1, init="he",
                                 generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 1, 256, 256, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    net(x).sum().backward()
    assert x.grad.abs().sum() > 0
    assert tuple(net.fine_mask.last_mask.shape[-2:]) == net.cells[0]
    assert tuple(net.coarse_mask.last_mask.shape[-2:]) == net.cells[1]
    # kernel 2: the input gradient vanishes on the blocked coarse cells (crisp masks; the k5 stem
    # lets it bleed 3 px over a cell's edge, so look inside a 4 px margin)
    cm = net.coarse_mask.last_mask[0, 0]
    g = x.grad.abs().sum(dim=(0, 1))
    cell = 256 // cm.shape[0]
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            block = g[i * cell + 4:(i + 1) * cell - 4, j * cell + 4:(j + 1) * cell - 4]
            assert (block.sum() > 0) == bool(cm[i, j])


def test_init_seed_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a, b = TwoScaleCNN(width=4, init_seed=3), TwoScaleCNN(width=4, init_seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c = TwoScaleCNN(width=4, init_seed=4)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_conv_flops_counts_the_demo_network():
    # stem 512^2 * 64 * 25 MACs, then 4^k-shrinking k2 layers of 64 x 64 x 4 MACs per output
    fwd = 2 * (512 ** 2 * 64 * 25 + sum((256 >> i) ** 2 * 64 * 64 * 4 for i in range(7)) + 64 * 4)
    assert conv_flops(TwoScaleCNN(), 1024, backward=False) == fwd
    stem = 2 * 512 ** 2 * 64 * 25
    assert conv_flops(TwoScaleCNN(), 1024) == 3 * fwd - stem


@pytest.mark.parametrize("kw,match", [
    (dict(width=0), "width"), (dict(n_classes=1.5), "n_classes"), (dict(n_fine=-1), "n_fine"),
    (dict(kernel=4), "kernel"), (dict(fine_prob=1.0), "mask_prob"), (dict(coarse_prob=-0.1), "mask_prob"),
    (dict(init="xavier"), "init"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        TwoScaleCNN(**kw)


def test_bad_inputs():
    net = TwoScaleCNN(width=4, n_fine=1, n_coarse=1)
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 12, 12))
    with pytest.raises(ValueError, match="size"):
        TwoScaleCNN.for_scales(300, fine_prob=0.0, coarse_prob=0.0)
    with pytest.raises(ValueError, match="cl"):
        cell_layers(-1.0)


def test_masked_network_forward_is_unmasked_and_gradient_is_masked():
    """A masked TwoScaleCNN computes exactly the unmasked forward; its gradients differ from the
    unmasked ones (masks drawn) and equal them with mask_prob 0."""
    kw = dict(width=4, n_fine=1, n_coarse=2, init_seed=0)
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    plain = TwoScaleCNN(**kw)
    masked = TwoScaleCNN(fine_prob=0.5, coarse_prob=0.5, generator=torch.Generator().manual_seed(2), **kw)
    zero = TwoScaleCNN(fine_prob=0.0, coarse_prob=0.0, **kw)
    outs, grads = {}, {}
    for name, net in (("plain", plain), ("masked", masked), ("zero", zero)):
        xi = x.clone().requires_grad_(True)
        outs[name] = net(xi)
        outs[name].logsumexp(dim=1).sum().backward()
        grads[name] = xi.grad
    assert torch.equal(outs["plain"], outs["masked"]) and torch.equal(outs["plain"], outs["zero"])
    assert torch.equal(grads["plain"], grads["zero"])
    assert not torch.allclose(grads["plain"], grads["masked"])
    assert masked.coarse_mask.last_mask is not None and masked.fine_mask.last_mask is not None
    blocked = masked.coarse_mask.last_mask == 0
    assert blocked.any() and (masked.coarse_mask.last_mask == 1).any()


@pytest.mark.parametrize("impl", [i for i in IMPLS if i != "conv"])
@pytest.mark.parametrize("n_fine,n_coarse,size", [(4, 3, 256), (1, 2, 64), (0, 2, 32)])
def test_gemm_formulations_equal_conv2d(impl, n_fine, n_coarse, size):
    """Every CPU-speed formulation (``formulations.py``) = the reference nn.Conv2d(k=2, s=2) network to
    float32 rounding: outputs, every parameter's gradient and the input gradient; same masks drawn."""
    kw = dict(width=8, n_fine=n_fine, n_coarse=n_coarse, init_seed=3, init="he", fine_prob=0.5, coarse_prob=0.5)
    ref = TwoScaleCNN(generator=torch.Generator().manual_seed(7), **kw)
    net = TwoScaleCNN(generator=torch.Generator().manual_seed(7), impl=impl, **kw)
    for p, q in zip(ref.parameters(), net.parameters()):
        assert torch.equal(p, q)                       # same parameters: impl does not touch the init
    x = torch.randn(3, 1, size, size, generator=torch.Generator().manual_seed(1))
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    oa, ob = ref(xa), net(xb)
    oa.square().sum().backward()
    ob.square().sum().backward()
    torch.testing.assert_close(ob, oa, rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(ref.named_parameters(), net.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5 * float(p.grad.abs().max()), msg=name)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-4, atol=1e-5 * float(xa.grad.abs().max()))
    assert torch.equal(ref.fine_mask.last_mask, net.fine_mask.last_mask)
    assert torch.equal(ref.coarse_mask.last_mask, net.coarse_mask.last_mask)
    ref.eval(), net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), rtol=1e-5, atol=1e-5)


def test_gemm_formulations_need_kernel_2_and_known_names():
    with pytest.raises(ValueError, match="kernel=2"):
        TwoScaleCNN(width=4, kernel=3, impl="blocked")
    with pytest.raises(ValueError, match="impl"):
        TwoScaleCNN(width=4, impl="winograd")
    with pytest.raises(ValueError, match="stem"):
        TwoScaleCNN(width=4, impl="blocked", stem="conv")       # deleted: no profile used it


def test_impl_enters_the_run_key_only_when_not_the_default():
    from dataclasses import replace

    from backdrop_repro import profiles
    from backdrop_repro.experiments import gp_sweep

    base = profiles.get("smoke")
    other = replace(base, name="smoke-blocked", sweep=replace(base.sweep, impl="blocked"))
    a, b = gp_sweep.plan_grid(base, ["none"], [0])[0], gp_sweep.plan_grid(other, ["none"], [0])[0]
    assert "impl" not in a.to_dict()["model"] and b.to_dict()["model"]["impl"] == "blocked"
    assert a.key != b.key
    assert gp_sweep.build_model(b).impl == "blocked" and gp_sweep.build_model(a).impl == "conv"


def test_keep_freed_memory_is_harmless():
    import subprocess
    import sys

    code = ("import torch; from backdrop_repro.models import TwoScaleCNN; "
            "from backdrop_repro.formulations import keep_freed_memory; "
            "ok = keep_freed_memory(); net = TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0); "
            "print(ok, float(net(torch.ones(1, 1, 16, 16)).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] in ("True", "False")
    ref = TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)
    assert float(out[1]) == float(ref(torch.ones(1, 1, 16, 16)).sum())     # the numbers do not change


def test_cells_never_assume_1024_inputs():
    """Issue 39: ``TwoScaleCNN(width=4, n_fine=1, n_coarse=2).cells`` stated the grids of 1024² inputs."""
    net = TwoScaleCNN(width=4, n_fine=1, n_coarse=2)
    with pytest.raises(ValueError, match="cells needs the input size: build the network with image_size") as err:
        net.cells
    assert "\n" not in str(err.value)
    assert TwoScaleCNN(width=4, n_fine=1, n_coarse=2, image_size=64).cells == ((16, 16), (4, 4))
    net.image_size = 32
    assert net.cells == ((8, 8), (2, 2))
    net(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="image_size must be a multiple of 16"):
        TwoScaleCNN(width=4, n_fine=1, n_coarse=2, image_size=40).cells
    with pytest.raises(ValueError, match="image_size"):
        TwoScaleCNN(width=4, image_size=0)
