"""Pinned masks: the masks every formulation draws, the generator calls they make and the input
gradients they give, for fixed seeds, as the code drew them when this test was written.

A study that resumes across sessions must draw the same masks from the same generator state, so
any change to how a mask is drawn (``masking.py``) or applied (``models.py``) must leave these
numbers alone. The hashes are of the 0/1 masks' bytes and of the generator's state after the
draws (its consumption); the gradient sums are compared to about 5 significant digits (float32
sums of another CPU may differ in the last bits). The layer's gradients are exact (upstream times
the normalised mask), so they are hashed too.
"""
import hashlib

import pytest
import torch

from backdrop_repro.masking import BackdropMask
from backdrop_repro.models import TwoScaleCNN


def _sha(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _model_pins(impl, stem, normalization, steps=6):
    gen = torch.Generator().manual_seed(11)
    net = TwoScaleCNN(width=4, n_fine=1, n_coarse=2, fine_prob=0.5, coarse_prob=0.9, init_seed=2, init="he",
                      normalization=normalization, generator=gen, impl=impl, stem=stem)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    masks, sums = [], []
    for _ in range(steps):
        xi = x.clone().requires_grad_(True)
        net(xi).square().sum().backward()
        masks += [net.fine_mask.last_mask, net.coarse_mask.last_mask]
        sums.append(float(xi.grad.sum()))
        sums.append(float(xi.grad.abs().sum()))
    return _sha(masks), _sha([gen.get_state()]), sums


MODEL_PINS = {   # (impl, stem, normalization): (masks, generator state, input-gradient sum and |sum| per step)
    ("conv", "im2col", "realized"): ("4b0ba085acf08f60", "e0d8820cc84c6cca",
                                     [-0.9958826, 6.073935, -0.1953099, 3.588802, -0.614002, 7.115884,
                                      -0.4744148, 6.339206, -0.4549277, 7.400734, 0.2460481, 3.852391]),
    ("conv", "im2col", "expected"): ("4b0ba085acf08f60", "e0d8820cc84c6cca",
                                     [-0.8840451, 5.391832, -0.1849349, 3.398165, -0.508713, 5.895653,
                                      -0.4492138, 6.002468, -0.4711459, 7.66457, 0.2038558, 3.191783]),
    ("blocked", "im2col", "realized"): ("4b0ba085acf08f60", "e0d8820cc84c6cca",
                                        [-0.9958829, 6.073935, -0.1953099, 3.588803, -0.6140021, 7.115885,
                                         -0.4744149, 6.339208, -0.4549278, 7.400736, 0.2460482, 3.852392]),
    ("blocked", "im2col", "expected"): ("4b0ba085acf08f60", "e0d8820cc84c6cca",
                                        [-0.8840451, 5.391833, -0.184935, 3.398166, -0.508713, 5.895653,
                                         -0.4492138, 6.002469, -0.471146, 7.664571, 0.2038559, 3.191783]),
}


@pytest.mark.parametrize("impl,stem,normalization", sorted(MODEL_PINS))
def test_model_masks_and_gradients_are_pinned(impl, stem, normalization):
    masks, state, sums = _model_pins(impl, stem, normalization)
    want_masks, want_state, want_sums = MODEL_PINS[impl, stem, normalization]
    assert masks == want_masks and state == want_state
    assert sums == pytest.approx(want_sums, rel=1e-5, abs=1e-5)


LAYER_CASES = {
    "hw-realized": dict(mask_prob=0.5, dims=(-2, -1), normalization="realized"),
    "hw-expected": dict(mask_prob=0.95, dims=(-2, -1), normalization="expected"),
    "sample-none": dict(mask_prob=0.3, dims=(0,), normalization="none"),
    "channel-hw": dict(mask_prob=0.7, dims=(1, 3), normalization="realized"),
    "pinned": dict(mask_prob=0.0, dims=(-2, -1), normalization="expected", pinned=(1, 2)),
}


def _layer_pins(case, steps=8):
    gen = torch.Generator().manual_seed(5)
    layer = BackdropMask(generator=gen, **LAYER_CASES[case])
    x = torch.randn(3, 2, 2, 3, generator=torch.Generator().manual_seed(4))
    upstream = torch.randn(3, 2, 2, 3, generator=torch.Generator().manual_seed(6))
    masks, grads = [], []
    for _ in range(steps):
        xi = x.clone().requires_grad_(True)
        layer(xi).backward(upstream)
        masks.append(layer.last_mask)
        grads.append(xi.grad)
    return _sha(masks), _sha(grads), _sha([gen.get_state()])


LAYER_PINS = {    # case: (masks, input gradients, generator state)
    "hw-realized": ("8fefa08f69ed21a9", "a4f51f1f8b57a1bf", "a5aa60bcf9eaec17"),
    "hw-expected": ("d013b4557b14b3a8", "3b2e790728d756c4", "6a7981d3bba4793d"),
    "sample-none": ("bad7d179785ae57b", "70d4c65b1e9a5f50", "775d1473b5e5f4e7"),
    "channel-hw": ("abd37af0ec4e1bd0", "474c0952710c609e", "a5aa60bcf9eaec17"),
    "pinned": ("26e63f72f4824e51", "70b8e47bcc2b924a", "cf858a4fddc33c48"),
}


@pytest.mark.parametrize("case", sorted(LAYER_PINS))
def test_layer_masks_and_gradients_are_pinned(case):
    assert _layer_pins(case) == LAYER_PINS[case]
