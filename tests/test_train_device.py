"""CPU-side checks of the training loop's device logic (precision flags, bf16 autocast, channels_last).

No GPU is needed: ``_precision`` is driven with a fake CUDA device (it only reads ``.type``) to
check that it sets and then restores the global TF32/cuDNN flags; bf16 and channels_last run on
the CPU.
"""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from backdrop_repro import train as tr
from backdrop_repro.models import TwoScaleCNN
from backdrop_repro.train import TrainConfig, train

FAKE_CUDA = SimpleNamespace(type="cuda")


def flags():
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)


@pytest.fixture
def restore_flags():
    saved = flags()
    yield saved
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark) = saved


def data(n=8, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, size, size)).astype(np.float32), np.arange(n) % 4


def net(seed=0, fine=0.3, coarse=0.5):
    return TwoScaleCNN(width=4, fine_prob=fine, coarse_prob=coarse, n_fine=1, n_coarse=2, init_seed=seed,
                       generator=torch.Generator().manual_seed(seed + 1))


@pytest.mark.parametrize("precision,tf32", [("tf32", True), ("fp32", False), ("bf16", False)])
def test_precision_on_cuda_sets_flags_and_restores_them(restore_flags, precision, tf32):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not tf32
    torch.backends.cudnn.benchmark = False
    before = flags()
    with tr._precision(precision, FAKE_CUDA) as autocast:
        assert flags() == (tf32, tf32, True)
        assert callable(autocast)
    assert flags() == before


def test_precision_restores_flags_after_an_error(restore_flags):
    torch.backends.cudnn.benchmark = False
    before = flags()
    with pytest.raises(RuntimeError, match="boom"):
        with tr._precision("tf32", FAKE_CUDA):
            raise RuntimeError("boom")
    assert flags() == before


def test_precision_on_cpu_leaves_flags_alone(restore_flags):
    before = flags()
    with tr._precision("tf32", torch.device("cpu")) as autocast:
        assert flags() == before
        with autocast():                       # tf32 on a CPU: plain fp32, no autocast
            assert not torch.is_autocast_enabled("cpu")
    with tr._precision("bf16", torch.device("cpu")) as autocast:
        with autocast():
            assert torch.is_autocast_enabled("cpu")
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert flags() == before


def test_bogus_precision_is_a_one_line_error_naming_the_argument():
    with pytest.raises(ValueError) as err:
        TrainConfig(precision="bogus")
    msg = str(err.value)
    assert "\n" not in msg and "precision" in msg and "bogus" in msg
    assert all(p in msg for p in ("fp32", "tf32", "bf16"))


def test_bf16_autocast_on_cpu_trains_with_finite_losses():
    x, y = data()
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, precision="bf16", eval_every=1)
    model = net()
    out = train(model, (x, y), (x, y), cfg, progress=False)
    assert [h["epoch"] for h in out["history"]] == [1, 2]
    for h in out["history"]:
        for k in ("train_loss", "train_eval_loss", "test_loss"):
            assert math.isfinite(h[k]), (k, h)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())  # fp32 weights


def test_channels_last_gives_the_same_predictions_as_nchw():
    x, y = data()
    a, b = net(fine=0.0, coarse=0.0), net(fine=0.0, coarse=0.0)
    b.to(memory_format=torch.channels_last)
    xt = torch.from_numpy(x)[:, None]
    with torch.no_grad():
        torch.testing.assert_close(b(xt.contiguous(memory_format=torch.channels_last)), a(xt), rtol=1e-4, atol=1e-5)
    # and after training with masks on (same seeds, same mask draws): same weights within rounding
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3)
    na, nb = net(), net()
    ha = train(na, (x, y), (x, y), cfg, progress=False)["history"]
    hb = train(nb, (x, y), (x, y), TrainConfig(**{**cfg.to_dict(), "channels_last": True}), progress=False)["history"]
    assert nb.fine_features[0].weight.is_contiguous(memory_format=torch.channels_last)
    for p, q in zip(na.parameters(), nb.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4)
    assert [h["test_accuracy"] for h in ha] == [h["test_accuracy"] for h in hb]
    for u, v in zip(ha, hb):
        assert u["train_loss"] == pytest.approx(v["train_loss"], rel=1e-4, abs=1e-5)
