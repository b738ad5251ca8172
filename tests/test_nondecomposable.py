"""Tests of the non-decomposable (pairwise AUC) experiment: surrogate, backdrop gradient, runs."""
import csv
import json
import math

import numpy as np
import pytest
import torch

from backdrop_repro import paths
from backdrop_repro.masking import BackdropMask, backdrop, draw_mask
from backdrop_repro.nondecomposable import (
    PROFILES,
    exact_auc,
    get_config,
    load_data,
    make_model,
    pairwise_auc_loss,
    run_experiment,
    soft_auc,
    summary_table,
    train_run,
    verdict,
)


# ---------------------------------------------------------------- exact AUC
@pytest.mark.parametrize(
    "scores, labels, expected",
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),            # perfect ranking
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0),            # reversed
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),            # all tied
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),          # 3 of 4 pairs ordered
        ([0.3, 0.3, 0.1, 0.9, 0.3], [1, 0, 0, 1, 0], 5 / 6),  # ties count one half
    ],
)
def test_exact_auc_known_cases(scores, labels, expected):
    # last case: positives 0.3, 0.9; negatives 0.3, 0.1, 0.3 -> pairs: (0.3: 0.5+1+0.5) + (0.9: 3) = 5 of 6
    assert exact_auc(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_exact_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for _ in range(20):
        s = rng.integers(0, 6, size=50).astype(float)  # many ties
        y = rng.random(50) < 0.2
        y[:2] = [True, False]
        assert exact_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_exact_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        exact_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels must be 0/1"):
        exact_auc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="same length"):
        exact_auc([0.1, 0.2, 0.3], [0, 1])


# ---------------------------------------------------------------- surrogate
def test_sigmoid_surrogate_sharp_limit_equals_exact_auc():
    rng = np.random.default_rng(0)
    for n in (5, 12, 40):
        s = np.round(rng.normal(size=n), 1)  # rounding creates ties
        y = np.zeros(n, dtype=int)
        y[rng.choice(n, size=max(1, n // 4), replace=False)] = 1
        exact = exact_auc(s, y)
        st, yt = torch.tensor(s, dtype=torch.float64), torch.tensor(y)
        assert float(soft_auc(st, yt, tau=1e-6)) == pytest.approx(exact, abs=1e-9)
        # and a blunt temperature is visibly different from the exact AUC on these cases
        assert abs(float(soft_auc(st, yt, tau=10.0)) - exact) > 1e-3


def test_sigmoid_surrogate_converges_monotonically_to_exact():
    s = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.2], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 0])
    exact = exact_auc(s, y)
    errs = [abs(float(soft_auc(s, y, tau=t)) - exact) for t in (1.0, 0.1, 0.01, 1e-4)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 1e-12
    assert exact == pytest.approx(5 / 6)  # pos 0.35 beats 0.1, 0.2 but not 0.4; 0.8 beats all


def test_hinge_and_logistic_upper_bound_one_minus_auc():
    rng = np.random.default_rng(1)
    for _ in range(10):
        s = torch.tensor(rng.normal(size=30))
        y = torch.tensor((rng.random(30) < 0.3).astype(int))
        y[0], y[1] = 1, 0
        gap = 1.0 - exact_auc(s, y)
        assert float(pairwise_auc_loss(s, y, "hinge", margin=1.0)) >= gap - 1e-12
        assert float(pairwise_auc_loss(s, y, "logistic", tau=1.0)) >= gap - 1e-12


def test_surrogate_values_by_hand():
    s = torch.tensor([0.0, 1.0, 3.0])
    y = torch.tensor([0, 1, 1])  # differences d = 1, 3
    assert float(pairwise_auc_loss(s, y, "sigmoid", tau=1.0)) == pytest.approx(
        (1 / (1 + math.e) + 1 / (1 + math.e ** 3)) / 2)
    assert float(pairwise_auc_loss(s, y, "hinge", margin=2.0)) == pytest.approx((1.0 + 0.0) / 2)
    assert float(pairwise_auc_loss(s, y, "logistic", tau=1.0)) == pytest.approx(
        (math.log2(1 + math.exp(-1)) + math.log2(1 + math.exp(-3))) / 2)


def test_surrogate_without_pairs_is_zero_with_zero_gradient():
    s = torch.tensor([0.3, 0.7], requires_grad=True)
    loss = pairwise_auc_loss(s, torch.tensor([1, 1]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(s.grad, torch.zeros(2))


def test_surrogate_rejects_bad_arguments():
    s, y = torch.zeros(3), torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match="surrogate must be one of"):
        pairwise_auc_loss(s, y, "square")
    with pytest.raises(ValueError, match="tau"):
        pairwise_auc_loss(s, y, tau=0.0)
    with pytest.raises(ValueError, match="labels must have length"):
        pairwise_auc_loss(s, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="scores must have shape"):
        pairwise_auc_loss(torch.zeros(3, 2), y)


def test_surrogate_is_non_decomposable():
    """The mean of minibatch surrogates is not the full-batch surrogate (why minibatch SGD
    estimates this loss badly): each minibatch sees only its own pairs."""
    s = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0])
    y = torch.tensor([0, 1, 0, 0, 1])
    full = float(pairwise_auc_loss(s, y, tau=1e-6))  # positive 1.0 loses to 2.0 and 3.0: 2 of 6 pairs
    first, second = pairwise_auc_loss(s[:2], y[:2], tau=1e-6), pairwise_auc_loss(s[2:], y[2:], tau=1e-6)
    assert full == pytest.approx(1 / 3)
    assert (float(first) + float(second)) / 2 == pytest.approx(0.0)  # the bad pairs straddle the batches


# ---------------------------------------------------------------- per-sample backdrop gradient
@pytest.mark.parametrize("mask_prob", [0.5, 0.9])
def test_backdrop_gradient_equals_normalised_gradient_with_blocked_samples_detached(mask_prob):
    torch.manual_seed(0)
    x = torch.randn(60, 64)
    y = (torch.rand(60) < 0.25).long()
    y[:2] = torch.tensor([1, 0])
    model = make_model(64, 8, seed=3)
    params = list(model.parameters())

    gen = torch.Generator().manual_seed(11)
    layer = BackdropMask(mask_prob, dims=(0,), generator=gen)
    loss_bd = pairwise_auc_loss(layer(model(x)), y)
    g_bd = torch.autograd.grad(loss_bd, params)
    keep = layer.last_mask.reshape(-1).bool()
    assert keep.shape == (60,) and 0 < int(keep.sum()) < 60

    s = model(x)
    s_detached = torch.where(keep, s, s.detach())  # the same loss, blocked samples detached
    loss_det = pairwise_auc_loss(s_detached, y)
    g_det = torch.autograd.grad(loss_det, params)
    assert float(loss_bd.detach()) == pytest.approx(float(loss_det.detach()))  # forward: loss on all samples
    scale = 60 / int(keep.sum())  # realized normalisation: 1 / mean(mask)
    for a, b in zip(g_bd, g_det):
        torch.testing.assert_close(a, scale * b, rtol=1e-5, atol=1e-7)

    # and it is *not* the gradient of a minibatch made of the kept samples only
    loss_mb = pairwise_auc_loss(model(x[keep]), y[keep])
    g_mb = torch.autograd.grad(loss_mb, params)
    assert not torch.allclose(g_mb[0], scale * g_det[0], rtol=1e-3, atol=1e-6)


def test_backdrop_is_unbiased_with_expected_normalisation():
    """Averaged over many masks, the 'expected'-normalised backdrop gradient of the scores is the
    full gradient (the mask only drops chain-rule paths, it never changes dL/ds_i)."""
    torch.manual_seed(1)
    s = torch.randn(30, requires_grad=True)
    y = (torch.arange(30) % 4 == 0).long()
    full = torch.autograd.grad(pairwise_auc_loss(s, y), s)[0]
    gen = torch.Generator().manual_seed(2)
    acc = torch.zeros(30)
    n = 4000
    for _ in range(n):
        _, m = draw_mask((30,), 0.7, dims=(0,), normalization="expected", generator=gen)
        acc += torch.autograd.grad(pairwise_auc_loss(backdrop(s, m), y), s)[0]
    torch.testing.assert_close(acc / n, full, rtol=0.1, atol=0.1 * float(full.abs().max()))


# ---------------------------------------------------------------- data, training, experiment
def test_load_data_is_imbalanced_stratified_and_standardised():
    cfg = get_config("smoke")
    d = load_data(cfg, seed=0)
    ntr, nte = d["x_train"].shape[0], d["x_test"].shape[0]
    assert ntr + nte == 1797 and abs(ntr - 0.2 * 1797) <= 2
    assert 0.08 < float(d["y_train"].mean()) < 0.12 and 0.08 < float(d["y_test"].mean()) < 0.12
    assert torch.allclose(d["x_train"].mean(0), torch.zeros(64), atol=1e-4)
    d2, d1 = load_data(cfg, seed=0), load_data(cfg, seed=1)
    assert torch.equal(d["x_train"], d2["x_train"]) and not torch.equal(d["x_train"], d1["x_train"])


def test_train_run_is_deterministic_and_learns():
    cfg = get_config("smoke", steps=30, eval_every=10)
    for method, param in (("full", None), ("minibatch", 32), ("backdrop", 0.9)):
        a = train_run(cfg, method, param, seed=0)
        b = train_run(cfg, method, param, seed=0)
        assert a["curve"] == b["curve"]
        assert a["curve"]["step"] == [0, 10, 20, 30]
        assert a["test_auc"] > 0.85 and a["test_auc"] > a["curve"]["test_auc"][0]
    full = train_run(cfg, "full", None, seed=0)
    bd = train_run(cfg, "backdrop", 0.9, seed=0)
    assert full["curve"]["test_auc"][0] == bd["curve"]["test_auc"][0]  # same init, same split
    assert full["curve"]["test_auc"][1:] != bd["curve"]["test_auc"][1:]


def test_train_run_rejects_bad_parameters():
    cfg = get_config("smoke", steps=1)
    with pytest.raises(ValueError, match="method must be one of"):
        train_run(cfg, "sgd", None, 0)
    with pytest.raises(ValueError, match="batch size"):
        train_run(cfg, "minibatch", 0.5, 0)
    with pytest.raises(ValueError, match="mask probability"):
        train_run(cfg, "backdrop", 32, 0)
    with pytest.raises(ValueError, match="positive_digit"):
        get_config("smoke", positive_digit=12)
    with pytest.raises(ValueError, match="profile must be one of"):
        get_config("huge")


def test_smoke_experiment_writes_json_and_csv():
    res = run_experiment("smoke", progress=False)
    cfg = PROFILES["smoke"]
    folder = paths.results_dir("smoke")
    data = json.loads((folder / "nondecomposable.json").read_text())
    assert data["profile"] == "smoke" and data["config"]["steps"] == cfg.steps
    assert [s["label"] for s in data["summary"]] == ["full batch", "minibatch B=32", "backdrop p=0.9"]
    assert len(data["runs"]) == len(cfg.seeds) * 3 and "torch" in data["versions"]
    assert [r["label"] for r in data["fidelity"]["at_init"]] == ["minibatch B=32", "backdrop p=0.9"]
    for s in data["summary"]:
        aucs = [r["test_auc"] for r in data["runs"] if r["label"] == s["label"]]
        assert s["test_auc_mean"] == pytest.approx(np.mean(aucs))
        assert s["test_auc_std"] == pytest.approx(np.std(aucs, ddof=1))
        assert 0.8 < s["test_auc_mean"] <= 1.0
        assert len(s["curve_test_auc_mean"]) == len(s["curve_step"]) == cfg.steps // cfg.eval_every + 1
    rows = list(csv.DictReader((folder / "nondecomposable.csv").open()))
    assert len(rows) == len(data["runs"])
    assert float(rows[0]["test_auc"]) == pytest.approx(data["runs"][0]["test_auc"])
    table = summary_table(res)
    assert table.count("\n") == 2 + 3 - 1 and "backdrop p=0.9" in table
    assert "too few seeds" in verdict(res)


def test_plots_return_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from backdrop_repro.plots import nondecomposable as ndplots

    res = run_experiment("smoke", config=get_config("smoke", steps=10, eval_every=5), progress=False, write=False)
    for fig in (ndplots.curves(res), ndplots.final_auc(res), ndplots.fidelity(res)):
        assert len(fig.axes) >= 1
        matplotlib.pyplot.close(fig)


def test_cli_runs_smoke(capsys):
    from backdrop_repro.cli import main

    assert main(["nondecomposable", "--profile", "smoke", "--steps", "5", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "| full batch |" in out and "nondecomposable.json" in out
    assert json.loads((paths.results_dir("smoke") / "nondecomposable.json").read_text())["config"]["steps"] == 5


def test_gradient_fidelity_orders_settings_by_noise():
    from backdrop_repro.nondecomposable import gradient_fidelity

    cfg = get_config("smoke", batch_sizes=(16,), mask_probs=(0.05, 0.9))
    rows = {r["label"]: r for r in gradient_fidelity(cfg, seed=0, n_draws=30)}
    assert list(rows) == ["minibatch B=16", "backdrop p=0.05", "backdrop p=0.9"]
    # blocking 5 % of the samples barely changes the gradient; blocking 90 % changes it a lot
    assert rows["backdrop p=0.05"]["single_cos"] > 0.95 and rows["backdrop p=0.05"]["rel_noise"] < 0.3
    assert rows["backdrop p=0.9"]["single_cos"] < rows["backdrop p=0.05"]["single_cos"] - 0.1
    assert rows["minibatch B=16"]["single_cos"] < 0.8
    for r in rows.values():
        assert r["rel_bias"] >= 0 and r["rel_noise"] > 0
    with pytest.raises(ValueError, match="n_draws"):
        gradient_fidelity(cfg, n_draws=1)
