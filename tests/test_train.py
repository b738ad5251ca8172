"""Training loop (``backdrop_repro.train``): determinism, no-backdrop == mask_prob 0 (bitwise), exact resume,
errors: bad labels refused before a step, a missing device in one line, a full disk while checkpointing
naming the file, a planted checkpoint refused and never executed. The device logic: ``test_train_device.py``."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from backdrop_repro import cli
from backdrop_repro.models import TwoScaleCNN
from backdrop_repro.train import TrainConfig, as_tensors, evaluate, train
from helpers import one_line_error

SIZE = 32


def toy_data(n_per_class=8, seed=0):
    """Two classes: smooth (box-blurred) vs rough white noise, standardised, (N, 32, 32)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2 * n_per_class, SIZE, SIZE))
    k = np.ones(5) / 5
    for i in range(n_per_class):
        x[i] = np.apply_along_axis(lambda r: np.convolve(np.tile(r, 3), k, "same")[SIZE:2 * SIZE], 1, x[i])
        x[i] = np.apply_along_axis(lambda r: np.convolve(np.tile(r, 3), k, "same")[SIZE:2 * SIZE], 0, x[i])
    x = (x - x.mean(axis=(1, 2), keepdims=True)) / x.std(axis=(1, 2), keepdims=True)
    y = np.repeat([0, 1], n_per_class)
    return x.astype(np.float32), y


def net(fine=0.0, coarse=0.0, seed=0):
    return TwoScaleCNN(width=4, n_classes=2, fine_prob=fine, coarse_prob=coarse, n_fine=1, n_coarse=2,
                       init_seed=seed, generator=torch.Generator().manual_seed(seed + 100))


CFG = TrainConfig(epochs=4, batch_size=4, lr=3e-3, seed=0)
METRICS = ("train_loss", "train_eval_loss", "train_accuracy", "test_loss", "test_accuracy")


def metrics(history):
    return [[h.get(k) for k in METRICS] for h in history]


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_same_params(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert torch.equal(p, q)


def test_no_backdrop_equals_mask_prob_zero_bitwise():
    data, test = toy_data(), toy_data(seed=1)
    plain = net()
    plain.fine_mask, plain.coarse_mask = nn.Identity(), nn.Identity()   # no mask layers at all
    zero = net(0.0, 0.0)
    out_a = train(plain, data, test, CFG, progress=False)
    out_b = train(zero, data, test, CFG, progress=False)
    assert metrics(out_a["history"]) == metrics(out_b["history"])
    assert_same_params(params(plain), params(zero))
    # and a real mask changes the training (the comparison above is not vacuous)
    masked = net(0.5, 0.5)
    train(masked, data, test, CFG, progress=False)
    assert not all(torch.equal(p, q) for p, q in zip(params(masked), params(zero)))


def test_same_seed_same_run_other_seed_other_order():
    data, test = toy_data(), toy_data(seed=1)
    a, b = net(0.5, 0.5), net(0.5, 0.5)
    ha = train(a, data, test, CFG, progress=False)["history"]
    hb = train(b, data, test, CFG, progress=False)["history"]
    assert metrics(ha) == metrics(hb)
    assert_same_params(params(a), params(b))
    c = net(0.5, 0.5)
    hc = train(c, data, test, TrainConfig(epochs=4, batch_size=4, lr=3e-3, seed=1), progress=False)["history"]
    assert metrics(hc) != metrics(ha)


@pytest.mark.parametrize("probs", [(0.0, 0.0), (0.5, 0.75)])
def test_killed_run_resumes_to_identical_result(tmp_path, probs):
    data, test = toy_data(), toy_data(seed=1)
    cfg = TrainConfig(epochs=5, batch_size=4, lr=3e-3, seed=2, eval_every=2)
    ref_model = net(*probs)
    ref = train(ref_model, data, test, cfg, checkpoint=tmp_path / "ref.pt", progress=False)

    class Killed(Exception):
        pass

    def kill_after_3(rec):
        if rec["epoch"] == 3:
            raise Killed

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Killed):
        train(net(*probs), data, test, cfg, checkpoint=ckpt, progress=False, callback=kill_after_3)
    assert ckpt.exists()
    fresh = net(*probs)           # a new process: fresh model and mask generator
    out = train(fresh, data, test, cfg, checkpoint=ckpt, resume=True, progress=False)
    assert out["epochs_run"] == 2
    assert metrics(out["history"]) == metrics(ref["history"])
    assert out["final"] == ref["final"]
    assert_same_params(params(fresh), params(ref_model))
    # resuming a finished run trains nothing and returns the same result
    again = train(net(*probs), data, test, cfg, checkpoint=ckpt, resume=True, progress=False)
    assert again["epochs_run"] == 0 and metrics(again["history"]) == metrics(ref["history"])


class _Ticks:
    """A clock that advances one second per reading: training time becomes a count of readings."""
    def __init__(self):
        self.t = 0.0

    def perf_counter(self):
        self.t += 1.0
        return self.t


def test_a_resumed_run_states_its_whole_training_time(tmp_path, monkeypatch):
    """The record's wall time is the run's, not the last call's: the time of the epochs a checkpoint
    brings back is kept in it (readings: start, one per epoch's checkpoint, end)."""
    from backdrop_repro import train as train_mod

    monkeypatch.setattr(train_mod, "time", _Ticks())
    data, test = toy_data(), toy_data(seed=1)
    cfg = TrainConfig(epochs=5, batch_size=4, lr=3e-3, seed=2, eval_every=2)
    ref = train(net(), data, test, cfg, checkpoint=tmp_path / "ref.pt", progress=False)
    assert ref["wall_time_s"] == 6.0

    def kill_after_3(rec):
        if rec["epoch"] == 3:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train(net(), data, test, cfg, checkpoint=ckpt, progress=False, callback=kill_after_3)
    assert torch.load(ckpt, weights_only=True)["elapsed_s"] == 3.0
    out = train(net(), data, test, cfg, checkpoint=ckpt, resume=True, progress=False)
    assert out["epochs_run"] == 2 and out["wall_time_s"] == 6.0 == ref["wall_time_s"]
    done = train(net(), data, test, cfg, checkpoint=ckpt, resume=True, progress=False)
    assert done["epochs_run"] == 0 and done["wall_time_s"] == 5.0 + 1.0    # the finished run's time, plus this look


def test_a_checkpoint_without_its_training_time_is_discarded(tmp_path):
    """Written before checkpoints kept the time: resuming it would state a wrong wall time, so it goes."""
    data, test = toy_data(), toy_data(seed=1)
    cfg = TrainConfig(epochs=3, batch_size=4, lr=3e-3, seed=2)
    ckpt = tmp_path / "old.pt"
    train(net(), data, test, cfg, checkpoint=ckpt, progress=False)
    state = torch.load(ckpt, weights_only=True)
    del state["elapsed_s"]
    torch.save(state, ckpt)
    with pytest.warns(RuntimeWarning, match="old.pt does not hold the training time"):
        out = train(net(), data, test, cfg, checkpoint=ckpt, resume=True, progress=False)
    assert out["epochs_run"] == 3 and "elapsed_s" in torch.load(ckpt, weights_only=True)


def test_learns_an_easy_task_and_history_schema():
    data, test = toy_data(16), toy_data(16, seed=1)
    out = train(net(), data, test, TrainConfig(epochs=12, batch_size=4, lr=1e-2, eval_every=3), progress=False)
    h = out["history"]
    assert [r["epoch"] for r in h] == list(range(1, 13))
    assert [r["epoch"] for r in h if "test_accuracy" in r] == [3, 6, 9, 12]
    assert out["final"]["test_accuracy"] >= 0.9
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    x, y = as_tensors(test)

    class Always(torch.nn.Module):        # predicts class 1 with logits (0, 2): loss log(1 + e^-2) on class 1
        def forward(self, xb):
            return torch.tensor([0.0, 2.0]).expand(len(xb), 2)
    res = evaluate(Always(), x, y, batch_size=5)
    share = float((y == 1).float().mean())
    assert res["accuracy"] == pytest.approx(share)
    assert res["loss"] == pytest.approx(share * np.log1p(np.exp(-2.0)) + (1 - share) * np.log1p(np.exp(2.0)))


def test_as_tensors_shapes():
    x, y = as_tensors((np.zeros((3, 8, 8)), [0, 1, 2]))
    assert x.shape == (3, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    with pytest.raises(ValueError, match="labels"):
        as_tensors((np.zeros((3, 8, 8)), [0, 1]))
    with pytest.raises(ValueError, match="images"):
        as_tensors((np.zeros((3, 2, 8, 8)), [0, 1, 2]))


@pytest.mark.parametrize("kw,match", [
    (dict(epochs=0), "epochs"), (dict(batch_size=2.5), "batch_size"), (dict(optimizer="rmsprop"), "optimizer"),
    (dict(lr=-1.0), "lr"), (dict(weight_decay=-1.0), "weight_decay"), (dict(seed=-3), "seed"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_resume_errors(tmp_path):
    data = toy_data(2)
    with pytest.raises(ValueError, match="checkpoint"):
        train(net(), data, data, TrainConfig(epochs=1), resume=True, progress=False)
    ckpt = tmp_path / "c.pt"
    train(net(), data, data, TrainConfig(epochs=1), checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="another config"):
        train(net(), data, data, TrainConfig(epochs=2, lr=0.1), checkpoint=ckpt, resume=True, progress=False)
    with pytest.raises(ValueError, match="TrainConfig"):
        train(net(), data, data, {"epochs": 1}, progress=False)


# ------------------------------------------------------ bad labels, a missing device, a full disk, a planted checkpoint
def _tiny():
    return TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)


@pytest.mark.parametrize("labels, words", [([0.5, 1.7, 0, 1], "integer class labels"),
                                           ([0, 1, -1, 2], r"in \[0, inf\)"),
                                           ([0, 1, 2, 4], r"in \[0, 4\)")])
def test_train_refuses_bad_labels_before_a_step(labels, words):
    x = torch.zeros(4, 1, 16, 16)
    with pytest.raises(ValueError, match=words):
        train(_tiny(), (x, labels), (x, [0, 1, 2, 3]), TrainConfig(epochs=1, batch_size=2))


def test_train_refuses_a_missing_device_in_one_line(monkeypatch):
    from backdrop_repro.train import TrainConfig, train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    x, y = torch.randn(4, 1, 16, 16), torch.arange(4) % 4
    with pytest.raises(ValueError, match="no CUDA device"):
        train(torch.nn.Flatten(), (x, y), (x, y), TrainConfig(epochs=1, device="cuda"), progress=False)


def test_a_full_disk_while_checkpointing_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from backdrop_repro import train as train_mod
    from backdrop_repro.models import TwoScaleCNN

    def full(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1216 vs 1140")

    monkeypatch.setattr(train_mod.torch, "save", full)
    net = TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)
    x, y = torch.randn(8, 1, 16, 16), torch.arange(8) % 4
    with pytest.raises(train_mod.CheckpointWriteError, match="cannot write the checkpoint .*run.pt") as err:
        train_mod.train(net, (x, y), (x, y), train_mod.TrainConfig(epochs=2, batch_size=4),
                        checkpoint=tmp_path / "run.pt", progress=False)
    assert isinstance(err.value, OSError) and "\n" not in str(err.value) and "disk" in str(err.value)
    assert list(tmp_path.iterdir()) == []                     # no temp file left
    # through the CLI: one line, exit 2
    assert cli.main(["sweep", "--profile", "smoke", "--configs", "none", "--seeds", "0", "--no-studies",
                     "--jobs", "1"]) == 2
    assert "cannot write the checkpoint" in one_line_error(capsys, "sweep")


class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_malicious_checkpoint_is_refused_and_never_executed(tmp_path):
    from backdrop_repro.models import TwoScaleCNN
    from backdrop_repro.train import TrainConfig, train

    marker, ckpt = tmp_path / "pwned", tmp_path / "run.pt"
    torch.save({"epoch": 1, "model": _Planted(marker), "optimizer": {}, "generators": [], "history": [],
                "config": {}}, ckpt)
    net = TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)
    x, y = torch.randn(8, 1, 16, 16), torch.arange(8) % 4
    with pytest.warns(RuntimeWarning, match="unreadable"):
        out = train(net, (x, y), (x, y), TrainConfig(epochs=1, batch_size=4), checkpoint=ckpt, resume=True,
                    progress=False)
    assert not marker.exists()                       # nothing was executed
    assert [h["epoch"] for h in out["history"]] == [1]


# ------------------------------------------------------ a NaN image, an empty split (issue 39)
@pytest.mark.parametrize("split", ["train_data", "test_data", "val_data"])
def test_a_nan_image_in_any_split_is_refused_before_a_step(split):
    """A NaN test image scored as some class: the run reported test accuracy 0.25."""
    x, y = torch.randn(4, 1, 16, 16), torch.arange(4) % 4
    bad = x.clone()
    bad[2, 0, 3, 3] = float("nan")
    data = {"train_data": (x, y), "test_data": (x, y), "val_data": (x, y), split: (bad, y)}
    net = _tiny()
    before = params(net)
    with pytest.raises(ValueError, match=rf"{split} holds non-finite pixels .* 1 of 4 images \(the first: image 2\)") as err:
        train(net, data["train_data"], data["test_data"], TrainConfig(epochs=1, batch_size=2), progress=False,
              val_data=data["val_data"])
    assert "\n" not in str(err.value)
    assert_same_params(before, params(net))               # refused before any step


@pytest.mark.parametrize("split", ["train_data", "test_data", "val_data"])
def test_an_empty_split_is_a_value_error_not_a_zero_division(split):
    x, y = torch.randn(4, 1, 16, 16), torch.arange(4) % 4
    data = {"train_data": (x, y), "test_data": (x, y), "val_data": (x, y), split: (x[:0], y[:0])}
    with pytest.raises(ValueError, match=rf"{split} is empty \(0 images\)"):
        train(_tiny(), data["train_data"], data["test_data"], TrainConfig(epochs=1, batch_size=2), progress=False,
              val_data=data["val_data"])
    with pytest.raises(ValueError, match="x is empty"):
        evaluate(_tiny(), x[:0], y[:0])
