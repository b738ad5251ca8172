"""Issue 30 item 3: inputs checked at the door (class labels, mask shapes, 0-d tensors, CLI flags).
Every test here failed before its fix (silently truncated, silently wrong, or a traceback after work)."""
import json

import numpy as np
import pytest
import torch

from backdrop_repro import cli
from backdrop_repro.auc import exact_auc, pairwise_auc_loss, soft_auc
from backdrop_repro.data.files import GPDataset, write_dataset
from backdrop_repro.masking import BackdropMask, draw_mask
from backdrop_repro.models import TwoScaleCNN
from backdrop_repro.train import TrainConfig, train


@pytest.mark.parametrize("labels", [[1, -1, 1, -1], [0.5, 0, 0.5, 0], [2, 0, 2, 0]])
def test_auc_losses_refuse_labels_exact_auc_refuses(labels):
    s = torch.tensor([0.1, 0.4, 0.35, 0.8], requires_grad=True)
    y = torch.tensor(labels)
    with pytest.raises(ValueError, match="0/1"):
        exact_auc(s.detach(), y)
    with pytest.raises(ValueError, match="labels must be 0/1"):
        pairwise_auc_loss(s, y)
    with pytest.raises(ValueError, match="labels must be 0/1"):
        soft_auc(s, y)


def test_auc_losses_still_take_0_1_in_any_dtype():
    s = torch.tensor([0.1, 0.4, 0.35, 0.8])
    for y in (torch.tensor([0, 0, 1, 1]), torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([False, False, True, True])):
        assert round(1 - float(pairwise_auc_loss(s, y, tau=1e-4)), 6) == 0.75


def test_fractional_class_labels_are_refused_not_truncated(tmp_path):
    x = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"integer class labels, got \[0.5, 1.7\]"):
        write_dataset(tmp_path / "ds", x, np.array([0.5, 1.7]), {"class_names": {0: "a", 1: "b"}})
    assert not (tmp_path / "ds" / "labels.npy").exists()
    with pytest.raises(ValueError, match="integer class labels"):
        GPDataset(x, np.array([0.5, 1.7]))
    with pytest.raises(ValueError, match=r"not among the class_names keys \[0, 1\]"):
        GPDataset(x, np.array([0, 2]), {0: "a", 1: "b"})
    assert GPDataset(x, np.array([0.0, 1.0])).labels.dtype == np.int64     # integral floats: as exact_auc


def _tiny():
    return TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)


@pytest.mark.parametrize("labels, words", [([0.5, 1.7, 0, 1], "integer class labels"),
                                           ([0, 1, -1, 2], r"in \[0, inf\)"),
                                           ([0, 1, 2, 4], r"in \[0, 4\)")])
def test_train_refuses_bad_labels_before_a_step(labels, words):
    x = torch.zeros(4, 1, 16, 16)
    with pytest.raises(ValueError, match=words):
        train(_tiny(), (x, labels), (x, [0, 1, 2, 3]), TrainConfig(epochs=1, batch_size=2))


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


def _one_line(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("flags", [["--fresh"], ["--jobs", "5"], ["--device", "cuda"], ["--part", "map"]])
def test_learnability_collect_only_refuses_flags_that_cannot_apply(capsys, monkeypatch, flags):
    from backdrop_repro.experiments.learnability import cli as lcli

    monkeypatch.setattr(lcli, "write_summary", lambda *a, **k: pytest.fail("work was done first"))
    assert cli.main(["learnability", "--profile", "smoke", "--collect-only", *flags]) == 2
    assert "not with --collect-only" in _one_line(capsys, "learnability")


@pytest.mark.parametrize("flags, words", [(["--jobs", "0"], "--jobs must be an int >= 1"),
                                          (["--device", "cdua"], "is not a torch device"),
                                          (["--part", "edge"], "run `backdrop-repro learnability --profile smoke "
                                                               "--part map` first")])
def test_learnability_checks_flags_before_any_work(capsys, monkeypatch, tmp_path, flags, words):
    from backdrop_repro.experiments.learnability import cli as lcli

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))       # no map records here

    monkeypatch.setattr(lcli, "run_all", lambda *a, **k: pytest.fail("work was done first"))
    assert cli.main(["learnability", "--profile", "smoke", *flags]) == 2
    assert words in _one_line(capsys, "learnability")


@pytest.mark.parametrize("command", [["sweep", "--profile", "smoke"], ["learnability", "--profile", "smoke"]])
def test_an_unwritable_results_folder_is_refused_before_training(capsys, monkeypatch, command, tmp_path):
    from backdrop_repro.experiments.gp_sweep import cli as scli
    from backdrop_repro.experiments.learnability import cli as lcli

    monkeypatch.setattr(scli, "run_sweep", lambda *a, **k: pytest.fail("trained first"))
    monkeypatch.setattr(lcli, "run_all", lambda *a, **k: pytest.fail("trained first"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    (tmp_path / "results").write_text("a file where the results folder goes")   # root can write a 0o555 folder
    assert cli.main(command) == 2
    assert "exists and is not a folder" in _one_line(capsys, command[0])


def test_generate_out_empty_is_refused(capsys, tmp_path, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "build_dataset", lambda *a, **k: pytest.fail("generated first"))
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--profile", "smoke", "--out", ""])
    assert e.value.code == 2 and "must name a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("params, words", [({"mc_draws": 50}, r"mc_draws must be in \[100, inf\)"),
                                           ({"mc_draws": "many"}, "mc_draws must be an int, got 'many'"),
                                           ({"fine_prob": 1.0}, r"fine_prob must be in \[0.0, 1.0\)"),
                                           ({"mc_drwas": 100}, "'mc_drwas' is not a parameter of backdrop-demo"),
                                           ({"seed": 1.5}, "seed must be an int")])
def test_notebook_parameters_are_checked_before_execution(monkeypatch, params, words):
    import papermill as pm

    from backdrop_repro.notebooks import run_notebooks

    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran first"))
    with pytest.raises(ValueError, match=words):
        run_notebooks("smoke", ["backdrop-demo"], parameters=params)


def test_good_notebook_parameters_pass():
    from backdrop_repro.notebooks import check_parameters

    assert check_parameters(["backdrop-demo"], {"mc_draws": 100, "fine_prob": 0.5, "seed": 3}) == \
        {"mc_draws": 100, "fine_prob": 0.5, "seed": 3}
    assert check_parameters(["gp-generate-demo"], {"demo_size": None}) == {"demo_size": None}
