"""The GP sweep's verdict (``experiments/gp_sweep/report.py``, with the statistics of ``report.py``) and its
evidence: convergence budget, per-image predictions and per-scale accuracy, per-seed training sets, power
(MDE), equivalence (TOST), claims, the binomial learning test, the dose-response trend, and a reproduction
check that cannot pass vacuously."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from backdrop_repro import profiles, report
from backdrop_repro.experiments.gp_sweep import plan, run
from backdrop_repro.experiments.gp_sweep import report as gp_report
from backdrop_repro.models import TwoScaleCNN
from backdrop_repro.train import TrainConfig, train


# --- statistics ------------------------------------------------------------------------------

def test_mde_matches_the_power_of_a_paired_t_test():
    from scipy import stats

    sd, n = 0.04, 10
    d = report.mde(sd, n)
    assert d == pytest.approx(0.0398, abs=5e-4)                   # about one SD at 10 seeds
    crit = stats.t.ppf(0.975, n - 1)                              # the power at the MDE is 80 %
    assert stats.nct.sf(crit, n - 1, d / (sd / np.sqrt(n))) == pytest.approx(0.8, abs=1e-3)
    assert report.mde(sd, n, m=10) == pytest.approx(0.0594, abs=5e-4)   # Holm over 10 costs power
    assert report.mde(sd, 30) < report.mde(sd, 10) < report.mde(sd, 4)
    assert report.mde(sd, 1) is None and report.mde(0.0, 10) is None


def test_tost_and_claims_follow_the_numbers():
    rng = np.random.default_rng(0)
    base = {i: 0.4 for i in range(30)}
    tiny = report.paired(base, {i: 0.4 + 0.002 + rng.normal(0, 0.005) for i in range(30)})
    assert report.tost(tiny)["equivalent"]
    c = report.judge(tiny, m=2, p_adjusted=tiny["p"])
    assert c["status"] == "equivalent" and c["tost"]["p"] < 0.025 and -0.03 < c["interval"]["low"] < c["interval"]["high"] < 0.03
    wide = report.paired(base, {i: 0.4 + rng.normal(0, 0.1) for i in range(4)})
    w = report.judge(wide, m=2, p_adjusted=wide["p"])
    assert w["status"] == "inconclusive" and w["mde"] > 0.03
    assert not report.tost(wide)["equivalent"]
    big = report.compare(base, {"x": {i: 0.45 + rng.normal(0, 0.01) for i in range(30)}})[0]
    assert report.judge(big)["status"] == "relevant gain"
    bad = report.compare(base, {"x": {i: 0.35 + rng.normal(0, 0.01) for i in range(30)}})[0]
    assert report.judge(bad)["status"] == "contradicted"


def test_above_chance_is_an_exact_binomial_test():
    assert report.above_chance(840, 2000, 0.25)["above"]          # the 2-seed default baseline learns
    assert not report.above_chance(260, 1000, 0.25)["above"]
    assert report.above_chance(3, 4, 0.5)["p"] == pytest.approx(5 / 16)
    with pytest.raises(ValueError, match="correct"):
        report.above_chance(5, 4, 0.5)


def test_trend_is_the_mean_per_seed_slope():
    pts = {s: [(0, 0.0), (1, 0.1 + 0.01 * s), (2, 0.2 + 0.02 * s)] for s in range(5)}
    t = report.trend(pts)
    assert t["mean"] == pytest.approx(np.mean([0.1 + 0.01 * s for s in range(5)]))
    assert t["p"] < 0.001 and report.trend({0: [(0, 1.0), (1, 2.0)]}) is None


# --- training: convergence budget, predictions, failures -------------------------------------

def _toy(seed=0, n=32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 16, 16, generator=g)
    y = torch.arange(n) % 4
    x[:, :, :4, :4] += y[:, None, None, None].float()             # learnable
    return x, y


def test_budget_fields_stay_out_of_the_identity_of_fixed_budget_runs():
    d = TrainConfig().to_dict()
    assert not {"patience", "loss_target", "select"} & set(d)
    c = TrainConfig(patience=5, loss_target=0.1, select="val")
    assert c.converges and c.to_dict()["patience"] == 5
    with pytest.raises(ValueError, match="select"):
        TrainConfig(select="test")
    with pytest.raises(ValueError, match="loss_target"):
        TrainConfig(loss_target=-1)


def test_convergence_budget_stops_selects_on_validation_and_predicts(tmp_path):
    x, y = _toy()
    cfg = TrainConfig(epochs=40, batch_size=8, lr=1e-2, eval_every=2, patience=6, loss_target=0.3, select="val")
    out = train(TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0), (x, y), (x[:20], y[:20]), cfg,
                progress=False, val_data=(x[20:], y[20:]), checkpoint=tmp_path / "c.pt")
    f, h = out["final"], out["history"]
    assert f["stop_reason"] in ("loss_target", "patience") and f["stopped_epoch"] == h[-1]["epoch"] < 40
    best = max((e for e in h if "val_accuracy" in e), key=lambda e: (e["val_accuracy"], -e["val_loss"]))
    assert f["selected_epoch"] == best["epoch"] and f["val_accuracy"] == best["val_accuracy"]
    assert len(out["predictions"]["test"]) == 20 and len(out["predictions"]["val"]) == 12
    acc = np.mean(np.array(out["predictions"]["test"]) == y[:20].numpy())
    assert acc == pytest.approx(f["test_accuracy"])
    assert all("test_accuracy" not in e for e in h)                # the test set is scored once, at the end


def test_convergence_budget_resumes_bit_identically(tmp_path):
    x, y = _toy(1)
    cfg = TrainConfig(epochs=30, batch_size=8, lr=1e-2, eval_every=2, patience=6, select="val")
    kw = dict(progress=False, val_data=(x[20:], y[20:]))
    ref = train(TwoScaleCNN(width=4, n_fine=1, n_coarse=1, fine_prob=0.5, init_seed=0,
                            generator=torch.Generator().manual_seed(3)), (x, y), (x, y), cfg, **kw)
    ck = tmp_path / "c.pt"

    class Stop(Exception):
        pass

    def boom(rec):
        if rec["epoch"] == 7:
            raise Stop
    with pytest.raises(Stop):
        train(TwoScaleCNN(width=4, n_fine=1, n_coarse=1, fine_prob=0.5, init_seed=0,
                          generator=torch.Generator().manual_seed(3)), (x, y), (x, y), cfg, checkpoint=ck,
              callback=boom, **kw)
    again = train(TwoScaleCNN(width=4, n_fine=1, n_coarse=1, fine_prob=0.5, init_seed=0,
                              generator=torch.Generator().manual_seed(3)), (x, y), (x, y), cfg, checkpoint=ck,
                  resume=True, **kw)
    assert again["final"] == ref["final"] and again["predictions"] == ref["predictions"]


def test_a_non_finite_loss_stops_the_run_and_marks_it_failed():
    x, y = _toy()
    out = train(TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0), (x, y), (x, y),
                TrainConfig(epochs=5, batch_size=8, lr=1e30), progress=False)
    assert out["failed"].startswith("non-finite training loss") and len(out["history"]) == 1
    assert out["predictions"] == {}


# --- the sweep: per-seed data, per-scale accuracy, the verdict --------------------------------

@pytest.fixture(autouse=True)
def _forget_registered_profiles():
    """The profiles a test registers (``_conv_profile``) leave the table with it: later test files see the
    shipped table only."""
    before = dict(profiles.PROFILES)
    yield
    profiles.PROFILES.clear()
    profiles.PROFILES.update(before)


def _conv_profile(name="conv-test"):
    p = profiles.get("smoke")
    p = replace(p, name=name, data=replace(p.data, per_seed_data=True),
                sweep=replace(p.sweep, epochs=12, patience=4, loss_target=0.05, select="val",
                              configs=("none", "demo"), study_config="demo", data_sizes=(), robustness_method=None))
    profiles.register(p, overwrite=True)
    return p


def test_per_seed_data_gives_each_seed_its_own_training_and_validation_sets():
    p = _conv_profile()
    a, b = plan.plan_grid(p, ["none"], seeds=[0, 1])
    (ta, va, sa), (tb, vb, sb) = a.recipes(), b.recipes()
    assert ta.seed != tb.seed and va.seed != vb.seed and sa == sb          # the test set is shared
    assert len({ta.seed, va.seed, sa.seed, tb.seed, vb.seed}) == 5
    # profiles without it keep one training set (and their committed keys)
    s0, s1 = plan.plan_grid("scaled", ["none"], seeds=[0, 1])
    assert s0.recipes()[0] == s1.recipes()[0]


def test_sweep_records_carry_predictions_and_per_scale_accuracy():
    p = _conv_profile()
    sweep = run.run_sweep(p, jobs=1, progress=False)
    rec = sweep["runs"][0]
    tr, va, te = run.load_data(plan.plan_grid(p, ["none"], seeds=[0])[0])
    raw = json.loads((plan.runs_dir(p) / f"{rec['key']}.json").read_text())
    pred = np.array([int(c) for c in raw["predictions"]["test"]])
    true = np.asarray(te.labels)
    classes = np.asarray(te.recipe.classes if hasattr(te, "recipe") else plan.plan_grid(p)[0].recipes()[2].classes)
    f = rec["final"]
    assert np.mean(pred == true) == pytest.approx(f["test_accuracy"])
    for s in range(2):
        assert f["test_scale_accuracy"][s] == pytest.approx(np.mean(classes[pred, s] == classes[true, s]))
    assert np.sum(f["test_confusion"]) == len(true) and np.trace(f["test_confusion"]) == int(round(f["test_accuracy"] * len(true)))
    row = sweep["summary"][0]
    assert row["scales"] is not None and row["pooled"]["total"] == 2 * len(true)
    v = sweep["verdict"]
    assert v["design"]["kind"] == "confirmatory"
    assert v["learned"]["all"]["pooled"]["total"] == 2 * len(true)          # the pooled binomial: a description


def test_a_descriptive_design_says_so_and_keeps_its_keys():
    """default (4 of the replication's seeds) and paper-cpu (4 seeds) fix their comparisons in advance but are
    too small to be sized for power: their verdicts are descriptions, never a 'confirmatory design'."""
    from dataclasses import replace

    from backdrop_repro import profiles
    from backdrop_repro.experiments.gp_sweep import report as gp_report

    assert {n: gp_report.design_of(n)["kind"] for n in ("default", "paper-cpu", "replication", "scaled")} == \
        {"default": "descriptive", "paper-cpu": "descriptive", "replication": "confirmatory", "scaled": "exploratory"}
    p = profiles.get("default")
    assert plan.plan_grid(p)[0].key == plan.plan_grid(replace(p, sweep=replace(p.sweep, design=None)))[0].key
    with pytest.raises(ValueError, match=r"design must be one of \(None, 'descriptive'\), got 'powered'"):
        replace(p.sweep, design="powered")


def test_scale_metrics_marginalise_the_prediction():
    spec = plan.plan_grid("smoke", ["none"], seeds=[0])[0]

    class DS:
        labels = np.array([0, 1, 2, 3])
    # classes (small, large): 0 (2, 8), 1 (3, 8), 2 (2, 14), 3 (3, 14)
    out = run.scale_metrics(spec, None, DS, DS, {"test": [1, 1, 2, 2]})
    assert out["test_scale_accuracy"] == [0.5, 1.0] and "val_scale_accuracy" not in out
    assert out["test_confusion"][0] == [0, 1, 0, 0]


def test_unfinished_runs_carry_no_claim():
    row = {"stop_reasons": {}, "train_loss": {"mean": 0.7}, "seeds": [0, 1], "label": "x"}
    done = {"stop_reasons": {"patience": 4}, "seeds": [0, 1, 2, 3], "train_loss": {"mean": 0.0}, "label": "none"}
    capped = {"stop_reasons": {"cap": 3, "patience": 1}, "seeds": [0, 1, 2, 3], "train_loss": {"mean": 0.0}, "label": "y"}
    assert "0.70" in gp_report._unfinished(done, row) and "3 of 4" in gp_report._unfinished(done, capped)
    assert "no backdrop" in gp_report._unfinished(capped, done) and gp_report._unfinished(done, done) is None
    big = {i: 0.1 + 0.001 * i for i in range(10)}                   # a large gain, but from unfinished runs
    j = report.judge(big, unfinished=gp_report._unfinished(done, capped))
    assert j["status"] == "unfinished" and j["unfinished"] and "3 of 4" in j["unfinished_reason"]


# --- the reproduction check ------------------------------------------------------------------

def test_the_reproduction_check_cannot_pass_vacuously(tmp_path, monkeypatch):
    p = _conv_profile("conv-a")
    q = _conv_profile("conv-b")
    with pytest.raises(gp_report.ReproductionError, match="itself"):
        gp_report.compare_with_reference(p, "conv-a")
    run.run_sweep(p, configs=["none"], seeds=[0], studies=False, jobs=1, progress=False)
    # q finds p's record and copies it: a copy is not a re-run
    run.run_sweep(q, configs=["none"], seeds=[0], studies=False, jobs=1, progress=False)
    rows = gp_report.compare_with_reference(q, "conv-a")
    assert [r["status"] for r in rows] == ["not re-run"]
    with pytest.raises(gp_report.ReproductionError, match="compared no run"):
        gp_report.check_reproduction(rows, "conv-a")
    # trained here: identical to the reference
    for f in plan.runs_dir(q).glob("*.json"):
        f.unlink()
    run.run_sweep(q, configs=["none"], seeds=[0], studies=False, jobs=1, reuse=False, progress=False)
    rows = gp_report.compare_with_reference(q, "conv-a")
    assert [r["status"] for r in rows] == ["identical"]
    gp_report.check_reproduction(rows, "conv-a")
    rows[0].update(status="numerically different", fresh=rows[0]["committed"] + 0.5, diff=0.5)
    with pytest.raises(gp_report.ReproductionError, match=r"`none` moved by \+0.500 .* \(bound ±0.060"):
        gp_report.check_reproduction(rows, "conv-a")


def test_sweep_cli_refuses_compare_with_itself_before_training(capsys):
    from backdrop_repro.cli import main

    assert main(["sweep", "--profile", "smoke", "--compare", "smoke"]) == 2
    assert "itself" in capsys.readouterr().err


def test_a_diverged_run_is_recorded_as_failed_in_strict_json_and_left_out():
    p = _conv_profile("conv-nan")
    p = replace(p, sweep=replace(p.sweep, optim=replace(p.sweep.optim, lr=1e30)))
    profiles.register(p, overwrite=True)
    sweep = run.run_sweep(p, configs=["none"], seeds=[0], studies=False, jobs=1, progress=False)
    path = next(plan.runs_dir(p).glob("*.json"))
    rec = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in {path}"))
    assert rec["final"]["failed"].startswith("non-finite") and "test_accuracy" not in rec["final"]
    json.loads((plan.runs_dir(p).parent / "gp_sweep.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"bare {c} in gp_sweep.json"))
    assert sweep["summary"][0]["seeds"] == [] and 0 in sweep["summary"][0]["failed"]


def test_figures_load_the_scored_weights_of_a_run_that_stopped_early():
    from backdrop_repro.experiments.gp_sweep import models as gm

    p = _conv_profile("conv-load")
    spec = plan.plan_grid(p, ["none"], seeds=[0])[0]
    gm.ensure_models([spec], progress=False)                 # trains: stops before the cap
    net = gm.load_model(spec)
    rec = run.run_one(spec)                                  # the record of the same (deterministic) run
    _, _, te = run.load_data(spec)
    x = torch.from_numpy(np.asarray(te.images, dtype=np.float32))[:, None]
    with torch.no_grad():
        pred = net(x).argmax(1).numpy()
    assert "".join(map(str, pred)) == rec["predictions"]["test"]   # the scored (validation-selected) weights


def test_a_narrow_interval_from_few_seeds_is_not_a_well_powered_null():
    # 4 seeds whose differences happen to agree: the interval sits inside the margin, but the
    # design (Holm over 2) could not have detected a gain of the margin: inconclusive, not "not confirmed"
    base = {i: 0.40 for i in range(4)}
    comp = report.paired(base, {0: 0.395, 1: 0.42, 2: 0.41, 3: 0.39})
    assert comp["high"] < report.MARGIN
    c = report.judge(comp, m=2, p_adjusted=comp["p"])
    assert c["mde"] > report.MARGIN and c["status"] != "not confirmed"
    # TOST is valid at any number of seeds: here the 95 % interval lies inside the margin
    assert c["status"] == "equivalent" and -report.MARGIN < comp["low"]
