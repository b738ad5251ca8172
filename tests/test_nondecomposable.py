"""Tests of the non-decomposable (pairwise AUC) experiment: backdrop gradient, data, runs,
selection on validation, Holm comparisons, results files, CLI and figures; numpy scalars accepted by the
network and the configuration."""
import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats

from backdrop_repro import paths, profiles
from backdrop_repro.auc import pairwise_auc_loss
from backdrop_repro.experiments import nondecomposable as nd
from backdrop_repro.experiments.nondecomposable.fidelity import gradient_fidelity
from backdrop_repro.masking import BackdropMask, backdrop, draw_mask


# ---------------------------------------------------------------- per-sample backdrop gradient
@pytest.mark.parametrize("mask_prob", [0.5, 0.9])
def test_backdrop_gradient_equals_normalised_gradient_with_blocked_samples_detached(mask_prob):
    torch.manual_seed(0)
    x = torch.randn(60, 64)
    y = (torch.rand(60) < 0.25).long()
    y[:2] = torch.tensor([1, 0])
    model = nd.make_model(64, 8, seed=3)
    params = list(model.parameters())

    layer = BackdropMask(mask_prob, dims=(0,), generator=torch.Generator().manual_seed(11))
    loss_bd = pairwise_auc_loss(layer(model(x)), y)
    g_bd = torch.autograd.grad(loss_bd, params)
    keep = layer.last_mask.reshape(-1).bool()
    assert keep.shape == (60,) and 0 < int(keep.sum()) < 60

    s = model(x)
    loss_det = pairwise_auc_loss(torch.where(keep, s, s.detach()), y)  # blocked samples detached
    g_det = torch.autograd.grad(loss_det, params)
    assert float(loss_bd.detach()) == pytest.approx(float(loss_det.detach()))  # forward: loss on all samples
    scale = 60 / int(keep.sum())  # realized normalisation: 1 / mean(mask)
    for a, b in zip(g_bd, g_det):
        torch.testing.assert_close(a, scale * b, rtol=1e-5, atol=1e-7)

    # and it is *not* the gradient of a minibatch made of the kept samples only
    g_mb = torch.autograd.grad(pairwise_auc_loss(model(x[keep]), y[keep]), params)
    assert not torch.allclose(g_mb[0], scale * g_det[0], rtol=1e-3, atol=1e-6)


def test_backdrop_is_unbiased_with_expected_normalisation():
    torch.manual_seed(1)
    s = torch.randn(30, requires_grad=True)
    y = (torch.arange(30) % 4 == 0).long()
    full = torch.autograd.grad(pairwise_auc_loss(s, y), s)[0]
    gen = torch.Generator().manual_seed(2)
    acc, n = torch.zeros(30), 4000
    for _ in range(n):
        _, m = draw_mask((30,), 0.7, dims=(0,), normalization="expected", generator=gen)
        acc += torch.autograd.grad(pairwise_auc_loss(backdrop(s, m), y), s)[0]
    torch.testing.assert_close(acc / n, full, rtol=0.1, atol=0.1 * float(full.abs().max()))


# ---------------------------------------------------------------- configuration from the profile table
def test_config_comes_from_the_profile_table():
    for name in profiles.names():
        sec = profiles.get(name).nondecomposable
        cfg = nd.get_config(name)
        assert isinstance(cfg, profiles.NDSection)
        assert {f: getattr(cfg, f) for f in vars(sec)} == vars(sec)
    # a throw-away profile with another section is read, not a copy held by the module
    p = replace(profiles.get("smoke"), name="nd-test-tmp",
                nondecomposable=replace(profiles.get("smoke").nondecomposable, steps=7, val_fraction=0.3))
    profiles.register(p)
    try:
        assert nd.get_config("nd-test-tmp").steps == 7 and nd.get_config("nd-test-tmp").val_fraction == 0.3
    finally:
        profiles.PROFILES.pop("nd-test-tmp")
    assert not hasattr(nd, "PROFILES")


def test_config_validation_is_one_line_naming_the_argument():
    ok = nd.get_config("smoke", seeds=[np.int64(3), 1], steps=np.int64(5), lr=np.float32(0.01))
    assert ok.seeds == (3, 1) and type(ok.seeds[0]) is int
    for kw, match in [({"positive_digit": 12}, "positive_digit must be an int in 0..9"),
                      ({"val_fraction": 0.9}, "val_fraction must be a real in"),
                      ({"seeds": ()}, "seeds must be"), ({"seeds": (0, 0)}, "seeds must be"),
                      ({"steps": True}, "steps must be an int >= 1"), ({"mask_probs": (1.0,)}, "mask_probs"),
                      ({"surrogate": "square"}, "surrogate must be one of")]:
        with pytest.raises(ValueError, match=match) as err:
            nd.get_config("smoke", **kw)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="profile must be one of"):
        nd.get_config("huge")


# ---------------------------------------------------------------- data and training
def test_load_data_three_disjoint_stratified_splits_standardised_on_training_only():
    cfg = nd.get_config("smoke")
    d = nd.load_data(cfg, seed=0)
    n = {k: d[f"x_{k}"].shape[0] for k in ("train", "val", "test")}
    pos = {k: int(d[f"y_{k}"].sum()) for k in ("train", "val", "test")}
    assert sum(n.values()) == 1797 and sum(pos.values()) == 174          # every digit-8 image once
    assert pos == {"train": 26, "val": 9, "test": 139}                   # 35 = round(0.2 * 174), 9 = round(0.25 * 35)
    assert n["train"] + n["val"] == 360 and n["val"] == 90
    rows = torch.cat([d["x_train"], d["x_val"], d["x_test"]])
    assert torch.unique(rows, dim=0).shape[0] >= 1797 - 20               # (load_digits holds a few duplicates)
    assert torch.allclose(d["x_train"].mean(0), torch.zeros(64), atol=1e-4)
    assert not torch.allclose(d["x_val"].mean(0), torch.zeros(64), atol=1e-2)
    d2, d1 = nd.load_data(cfg, seed=0), nd.load_data(cfg, seed=1)
    assert torch.equal(d["x_val"], d2["x_val"]) and not torch.equal(d["x_val"], d1["x_val"])


def test_train_run_is_deterministic_learns_and_counts_steps_without_update():
    cfg = nd.get_config("smoke", steps=30, eval_every=10)
    for method, param in (("full", None), ("minibatch", 32), ("backdrop", 0.9)):
        a = nd.train_run(cfg, method, param, seed=0)
        assert a["curve"] == nd.train_run(cfg, method, param, seed=0)["curve"]
        assert a["curve"]["step"] == [0, 10, 20, 30]
        assert a["test_auc"] > 0.85 and a["test_auc"] > a["curve"]["test_auc"][0]
        assert a["val_auc"] == a["curve"]["val_auc"][-1]
    full, bd = nd.train_run(cfg, "full", None, seed=0), nd.train_run(cfg, "backdrop", 0.9, seed=0)
    assert full["curve"]["test_auc"][0] == bd["curve"]["test_auc"][0]   # same init, same split
    assert full["curve"]["test_auc"][1:] != bd["curve"]["test_auc"][1:]
    assert full["skipped"] == 0 and bd["skipped"] == 0
    # 26 positives among 270: a batch of 2 holds a pair with probability about 0.17
    tiny = nd.train_run(replace(cfg, steps=200), "minibatch", 2, seed=0)
    assert 120 < tiny["skipped"] < 200


def test_train_run_rejects_bad_parameters():
    cfg = nd.get_config("smoke", steps=1)
    with pytest.raises(ValueError, match="method must be one of"):
        nd.train_run(cfg, "sgd", None, 0)
    with pytest.raises(ValueError, match="batch size"):
        nd.train_run(cfg, "minibatch", 0.5, 0)
    with pytest.raises(ValueError, match=r"must be <= the training split \(270"):
        nd.train_run(cfg, "minibatch", 500, 0)
    with pytest.raises(ValueError, match="mask probability"):
        nd.train_run(cfg, "backdrop", 32, 0)


# ---------------------------------------------------------------- selection and evidence
def _run(label, method, seed, val, test):
    return {"label": label, "method": method, "param": None, "seed": seed, "val_auc": val, "test_auc": test,
            "train_loss": 0.0, "skipped": 0}


def _planted():
    """`backdrop p=0.97` is best on test but worst on validation; `backdrop p=0.5` best on validation."""
    rng = np.random.default_rng(0)
    runs = []
    for s in range(8):
        base = 0.9 + 0.01 * rng.normal()
        runs += [_run("full batch", "full", s, base, base),
                 _run("minibatch B=16", "minibatch", s, base + 0.002, base - 0.001 + 0.002 * rng.normal()),
                 _run("minibatch B=64", "minibatch", s, base - 0.001, base + 0.004 + 0.002 * rng.normal()),
                 _run("backdrop p=0.5", "backdrop", s, base + 0.01, base + 0.003 + 0.002 * rng.normal()),
                 _run("backdrop p=0.97", "backdrop", s, base - 0.02, base + 0.03 + 0.002 * rng.normal())]
    return {"profile": "smoke", "config": {"steps": 10}, "data": {"n_test": 100}, "runs": runs}


def test_best_settings_are_chosen_on_validation_never_on_test():
    res = _planted()
    assert nd.select_best(res["runs"], "backdrop") == "backdrop p=0.5"
    assert nd.select_best(res["runs"], "backdrop", key="test_auc") == "backdrop p=0.97"  # what test would pick
    assert nd.select_best(res["runs"], "minibatch") == "minibatch B=16"
    h = nd.headline(res)
    assert (h["backdrop"], h["minibatch"]) == ("backdrop p=0.5", "minibatch B=16")
    assert set(h["vs_full"]) == {"backdrop p=0.5", "minibatch B=16"}              # not the test set's pick
    from backdrop_repro import render

    assert "minibatch B=64 *" not in render.nd_tables(res) and "backdrop p=0.5 *" in render.nd_tables(res)


def test_comparisons_are_paired_t_tests_with_holm_across_all_settings():
    res = _planted()
    comps = nd.comparisons(res)
    assert [c["name"] for c in comps] == ["minibatch B=16", "minibatch B=64", "backdrop p=0.5", "backdrop p=0.97"]
    runs = res["runs"]
    full = np.array([r["test_auc"] for r in runs if r["label"] == "full batch"])
    raw = [stats.ttest_rel(np.array([r["test_auc"] for r in runs if r["label"] == c["name"]]), full).pvalue
           for c in comps]
    order = np.argsort(raw)                               # Holm by hand
    adj, running = [0.0] * 4, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * raw[i]))
        adj[i] = running
    for c, p, q in zip(comps, raw, adj):
        assert c["p"] == pytest.approx(p) and c["p_holm"] == pytest.approx(q) and c["m_tests"] == 4
    assert {c["name"]: c["decision"] for c in comps}["backdrop p=0.97"] == "better"
    # the headline backdrop-vs-minibatch comparison is one paired test of the chosen pair
    bvm = nd.headline(res)["backdrop_vs_minibatch"]
    d = [a["test_auc"] - b["test_auc"] for a, b in zip([r for r in runs if r["label"] == "backdrop p=0.5"],
                                                         [r for r in runs if r["label"] == "minibatch B=16"])]
    assert bvm["mean"] == pytest.approx(np.mean(d)) and bvm["m_tests"] == 1
    assert bvm["claim"]["m"] == 1 and bvm["claim"]["interval"]["mean"] == pytest.approx(np.mean(d))


# ---------------------------------------------------------------- whole experiment, files, CLI
def test_smoke_experiment_writes_json_and_csv_and_tables_match_runs():
    res = nd.run_experiment("smoke", progress=False)
    cfg = nd.get_config("smoke")
    folder = paths.results_dir("smoke")
    data = json.loads((folder / "nondecomposable.json").read_text())
    assert data["name"] == "nondecomposable" and data["config"]["seeds"] == list(cfg.seeds)
    assert [s["label"] for s in data["summary"]] == ["full batch", "minibatch B=32", "backdrop p=0.9"]
    assert len(data["runs"]) == len(cfg.seeds) * 3 and "torch" in data["versions"]
    assert data["data"]["n_val"] == 90 and data["data"]["pos_val"] == 9
    assert [r["label"] for r in data["fidelity"]["at_init"]] == ["minibatch B=32", "backdrop p=0.9"]
    assert [c["name"] for c in data["comparisons"]] == ["minibatch B=32", "backdrop p=0.9"]
    for s in data["summary"]:
        aucs = [r["test_auc"] for r in data["runs"] if r["label"] == s["label"]]
        assert s["curve_test_auc_mean"][-1] == pytest.approx(np.mean(aucs), abs=1e-5)
        assert len(s["curve_val_auc_mean"]) == len(s["curve_step"]) == cfg.steps // cfg.eval_every + 1
    rows = list(csv.DictReader((folder / "nondecomposable.csv").open()))
    assert len(rows) == len(data["runs"]) and float(rows[0]["val_auc"]) == pytest.approx(data["runs"][0]["val_auc"])
    from backdrop_repro import render

    table = render.nd_tables(res)
    bd = [r["test_auc"] for r in res["runs"] if r["label"] == "backdrop p=0.9"]
    assert f"{np.mean(bd):.3f} ± {np.std(bd, ddof=1):.3f}" in table
    from backdrop_repro import render, tables

    rows = tables.nondecomposable_rows(res)
    assert {r["metric"] for r in rows if r["role"] == "primary"} == {"mis-ranked pairs removed (share)"}
    assert render.findings(rows).startswith("- **Verdict**")


@pytest.mark.usefixtures("own_output_dir")
def test_subset_or_override_run_never_overwrites_the_profile_table(capsys):
    from backdrop_repro.cli import main

    folder = paths.results_dir("smoke")
    committed = folder / "nondecomposable.json"
    committed.write_text('{"sentinel": true}\n')
    assert main(["nondecomposable", "--profile", "smoke", "--steps", "5", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert committed.read_text() == '{"sentinel": true}\n'
    written = sorted(folder.glob("nondecomposable-custom-*.json"))
    assert len(written) == 1 and written[0].name in out
    data = json.loads(written[0].read_text())
    assert data["config"]["seeds"] == [0] and data["config"]["steps"] == 5   # `--seeds 0` is not ignored
    assert {r["seed"] for r in data["runs"]} == {0}
    assert written[0].with_suffix(".csv").exists() and "| full batch |" in out
    cfg = nd.get_config("smoke")
    assert nd.results_name("smoke", cfg) == "nondecomposable"
    assert nd.results_name("smoke", replace(cfg, seeds=cfg.seeds)) == "nondecomposable"


def test_gradient_fidelity_orders_settings_by_noise():
    cfg = nd.get_config("smoke")
    d = nd.load_data(cfg, 0)
    model = nd.make_model(64, cfg.hidden, 0)
    settings = [("mb16", "minibatch", 16), ("bd0.05", "backdrop", 0.05), ("bd0.9", "backdrop", 0.9)]
    rows = {r["label"]: r for r in gradient_fidelity(model, d["x_train"], d["y_train"], settings, n_draws=30)}
    # blocking 5 % of the samples barely changes the gradient; blocking 90 % changes it a lot
    assert rows["bd0.05"]["single_cos"] > 0.95 and rows["bd0.05"]["rel_noise"] < 0.3
    assert rows["bd0.9"]["single_cos"] < rows["bd0.05"]["single_cos"] - 0.1
    assert rows["mb16"]["single_cos"] < 0.8
    for r in rows.values():
        assert r["rel_bias"] >= 0 and r["rel_noise"] > 0
    with pytest.raises(ValueError, match="n_draws"):
        gradient_fidelity(model, d["x_train"], d["y_train"], settings, n_draws=1)


def test_figures_fit_1400_px_and_label_every_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from backdrop_repro.plots import nondecomposable as ndplots

    cfg = nd.get_config("smoke", steps=10, eval_every=5, batch_sizes=(16, 32, 64, 128, 256),
                        mask_probs=(0.3, 0.5, 0.7, 0.9, 0.95, 0.97, 0.99), fidelity_draws=3)
    res = nd.run_experiment("smoke", config=cfg, progress=False, write=False)
    for fig in (ndplots.curves(res), ndplots.final_auc(res), ndplots.fidelity(res)):
        fig.canvas.draw()
        w = fig.get_size_inches()[0] * 150
        assert 900 <= w <= 1400
        for ax in fig.axes:
            assert ax.get_xlabel()
            assert ax.get_ylabel() or ax.get_shared_y_axes().get_siblings(ax) != [ax]
        plt.close(fig)
    assert not hasattr(ndplots, "save")   # no re-export


# ---------------------------------------------------------------- numpy scalars in the network and the configuration
def test_numpy_scalars_are_accepted_by_the_network_and_the_nondecomposable_config(tmp_path):
    from backdrop_repro.experiments import nondecomposable as nd
    from backdrop_repro.models import TwoScaleCNN

    a = TwoScaleCNN.for_scales(np.int64(256), small_cl=np.float32(9.5), large_cl=np.array([80.0, 140.0]),
                               width=np.int64(4), fine_prob=np.float32(0.5), coarse_prob=np.float64(0.0))
    b = TwoScaleCNN.for_scales(256, small_cl=9.5, large_cl=(80.0, 140.0), width=4, fine_prob=0.5, coarse_prob=0.0)
    assert a.cells == b.cells and a.n_fine == b.n_fine and a.n_coarse == b.n_coarse and a.width == 4
    with pytest.raises(ValueError, match="size must be a power of two"):
        TwoScaleCNN.for_scales(np.int64(100), fine_prob=0.0, coarse_prob=0.0)
    cfg = nd.get_config("smoke", steps=np.int64(2), eval_every=np.int64(1), lr=np.float32(0.01),
                        tau=np.float64(1.0), hidden=np.int64(4), seeds=[np.int64(0)])
    assert type(cfg.lr) is float and type(cfg.steps) is int
    res = nd.run_experiment("smoke", config=cfg, progress=False, write=True)   # hashed and written after the runs
    assert (paths.results_dir("smoke") / f"{res['name']}.json").is_file()


# ---------------------------------------------------------------- issue 39: records read back are checked


@pytest.mark.parametrize("profile", ["default", "scaled"])
def test_every_committed_result_passes_the_reader(profile):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "results" / profile / "nondecomposable.json"
    assert nd.read_results(path)["profile"] == profile


@pytest.mark.usefixtures("own_output_dir")
@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(test_auc="nan"), "test_auc must be a finite number in [0, 1], got 'nan'"),
    (lambda r: r.update(test_auc=7.5), "test_auc must be a finite number in [0, 1], got 7.5"),
    (lambda r: r.pop("test_auc"), "test_auc must be a finite number in [0, 1], got None"),
    (lambda r: r.update(val_auc=-0.1), "val_auc must be"),
    (lambda r: r.update(seed="0"), "an integer seed"),
])
def test_a_result_with_a_nan_or_out_of_range_auc_is_refused_naming_the_file(change, words, capsys):
    """``test_auc`` NaN or 7.5 was summarised ("+nan … inconclusive", "−3.26 [−44.6, +38.1]"); a missing one a KeyError."""
    from pathlib import Path

    from backdrop_repro.cli import main
    from helpers import one_line_error

    committed = Path(__file__).resolve().parent.parent / "results" / "default" / "nondecomposable.json"
    result = json.loads(committed.read_text())
    change(result["runs"][3])
    path = paths.results_dir("default") / "nondecomposable.json"
    path.write_text(json.dumps(result))
    before = path.read_text()
    with pytest.raises(ValueError, match=rf"{path}: run 3 \(.*\): .*{words[:20]}"):
        nd.read_results(path)
    assert main(["nondecomposable", "--profile", "default", "--collect-only"]) == 2
    line = one_line_error(capsys, "nondecomposable")
    assert str(path) in line and words in line
    assert path.read_text() == before                                   # nothing summarised, nothing rewritten


@pytest.mark.usefixtures("own_output_dir")
def test_a_nan_literal_in_a_result_is_refused():
    path = paths.results_dir("default") / "nondecomposable.json"
    path.write_text('{"runs": [{"test_auc": NaN}]}')
    with pytest.raises(ValueError, match=rf"{path}: cannot be read \(non-finite number NaN"):
        nd.read_results(path)
