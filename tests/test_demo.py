"""The Monte-Carlo helpers behind backdrop-demo: exact linearity in the masks, unbiasedness."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backdrop_repro import demo
from backdrop_repro.models import TwoScaleCNN


def _net_and_image(size=128, width=4, seed=0):
    net = TwoScaleCNN(width=width, fine_prob=0.3, coarse_prob=0.75, n_fine=2, n_coarse=2, kernel=2,
                      generator=torch.Generator().manual_seed(seed), init_seed=seed)
    x = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(seed + 1))
    return net, x


def _stem_grad(net):
    stem = net.fine_features[0]
    return torch.cat([stem.weight.grad.reshape(-1), stem.bias.grad]).double().numpy()


def test_cell_gradients_sum_to_the_full_gradient_and_predict_a_masked_step():
    net, x = _net_and_image()
    G = demo.stem_cell_gradients(net, x)
    assert G.shape == (16, 16, 4 * 25 + 4) and net.training and net.fine_features[0].weight.grad is None
    net.eval()(x).sum().backward()
    full = _stem_grad(net)
    assert np.allclose(G.sum((0, 1)), full, rtol=1e-4, atol=1e-6 * np.abs(full).max())
    net.zero_grad()
    net.train()(x).sum().backward()                      # one real backdrop step
    f, c = net.fine_mask.last_mask, net.coarse_mask.last_mask
    pred = demo.combine(G, (f / f.mean()).numpy(), (c / c.mean()).numpy())
    real = _stem_grad(net)
    assert np.allclose(pred, real, rtol=1e-4, atol=1e-6 * np.abs(real).max())


def test_cell_gradients_need_the_k2_network():
    net = TwoScaleCNN(width=2, kernel=3)
    with pytest.raises(ValueError, match="kernel=2"):
        demo.stem_cell_gradients(net, torch.zeros(1, 1, 256, 256))


def test_expected_scale():
    assert demo.expected_scale(0.95, 4, "realized") == demo.expected_scale(0.95, 4, "expected") == 1.0
    assert demo.expected_scale(0.95, 4, "naive") == pytest.approx(1 + 0.95 ** 4 / (4 * 0.05))
    assert demo.expected_scale(0.5, 2, "none") == pytest.approx(0.5 + 0.25 / 2)
    with pytest.raises(ValueError, match="normalization"):
        demo.expected_scale(0.5, 2, "bogus")


@pytest.mark.parametrize("norm, expected_bias", [("realized", 0.0), ("expected", 0.0), ("naive", 0.95 ** 4 / (4 * 0.05))])
def test_monte_carlo_average_of_masked_gradients(norm, expected_bias):
    rng = np.random.default_rng(0)
    G = rng.standard_normal((4, 4, 6))
    r = demo.monte_carlo(G, 2, 0.0, 0.95, norm, draws=2000, seed=1)
    assert r["grads"].shape == (2000, 6) and r["error"].shape == (2000,)
    assert r["bias"] == pytest.approx(expected_bias, abs=0.05 + 0.05 * expected_bias)


def test_clipping_and_adam_helpers():
    full = np.array([1.0, -2.0, 0.5])
    c = demo.clipping_effect(np.stack([2 * full, 0 * full]), full, np.linalg.norm(full))
    assert c["clipped"] == 0.5 and c["norm_ratio"] == pytest.approx(1.0) and c["bias"] == pytest.approx(-0.5)
    assert demo.adam_progress(np.array([16 * full] * 50), full) == pytest.approx(1.0, abs=1e-3)
    noisy = np.array([full * 4 if i % 4 == 0 else 0 * full for i in range(200)])   # mean = full, noisy
    assert demo.adam_progress(noisy, full) < 0.8


def test_scale_budget_reads_the_profile_table():
    b = demo.scale_budget("default", 0.3, 0.95)
    assert (b["size"], b["fine_grid"], b["coarse_grid"]) == (256, 32, 4)
    assert b["small_blobs"] > 100 * b["large_blobs"]
    assert b["coarse_kept"] == pytest.approx(16 * 0.05 + 0.95 ** 16)
