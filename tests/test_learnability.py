"""The learnability map (``experiments/learnability/``): its plan (cells, keys, per-seed data, budget), the
spectral-energy net, the edge chosen from records, the smoke run end to end, and its CLI flags checked before
any work."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from backdrop_repro import cli, paths, profiles
from backdrop_repro.cli import main
from backdrop_repro.data.recipes import Recipe
from backdrop_repro.experiments import learnability as learn
from backdrop_repro.spectral import SpectralEnergyNet
from backdrop_repro.models import TwoScaleCNN
from backdrop_repro.train import TrainConfig, train
from helpers import one_line


# ---------------------------------------------------------------- plan: cells, keys, data, budget
def test_map_cells_cover_ratio_size_and_scale_with_five_seeds():
    specs = learn.plan_map("learnability")
    s = learn.section("learnability")
    nets = [x for x in specs if x.model != "oracle"]
    cells = {x.cell for x in nets}
    assert len(cells) == 2 * 4 * 3 and len(s.seeds) >= 5
    for scale in ("small", "large"):
        ratios = sorted({c[1][0] for c in cells if c[0] == scale})
        assert np.allclose(ratios, (1.05, 1.1, 1.2, 1.5), atol=0.03)
        assert {c[2] for c in cells if c[0] == scale} == {25, 100, 400}
    assert {x.lengths[0][0] for x in nets if x.scale == "small"} == {2.375}
    assert {x.lengths[0][0] for x in nets if x.scale == "large"} == {20.0}
    for c in cells:       # every cell: a CNN and a spectral net per seed
        assert sorted((x.model, x.seed) for x in nets if x.cell == c) == sorted(
            (m, seed) for m in ("cnn", "spectral") for seed in s.seeds)
    assert sum(x.model == "oracle" for x in specs) == 8
    assert len({x.key for x in specs}) == len(specs)             # every run its own key


def test_keys_ignore_the_part_and_the_profile_name_and_the_oracle_has_no_seed():
    spec = next(x for x in learn.plan_map("learnability") if x.model == "cnn")
    assert replace(spec, part="edge").key == spec.key            # the edge's baseline runs are the map's runs
    other = profiles.register(replace(profiles.get("learnability"), name="learn-tmp"))
    try:
        assert replace(spec, profile=other).key == spec.key
    finally:
        profiles.PROFILES.pop("learn-tmp")
    assert replace(spec, seed=1).key != spec.key and replace(spec, fine_prob=0.3, config="fine").key != spec.key
    oracle = next(x for x in learn.plan_map("learnability") if x.model == "oracle")
    assert replace(oracle, seed=3).key == oracle.key
    assert "train" not in oracle.to_dict()["data"]


def test_each_seed_its_own_training_and_validation_sets_and_one_test_set():
    a, b = (next(x for x in learn.plan_map("learnability") if x.model == "cnn" and x.seed == s) for s in (0, 1))
    (tr0, va0, te0), (tr1, va1, te1) = a.recipes(), b.recipes()
    d = learn.section("learnability").data
    assert tr0.seed == d.split_seed("train", 0) != tr1.seed == d.split_seed("train", 1)
    assert va0.seed != va1.seed and te0 == te1
    assert isinstance(tr0, Recipe) and tr0.method == "fft" and tr0.size == 256 and tr0.per_class == a.per_class
    assert te0.per_class == d.test_per_class and tr0.scales == a.lengths and tr0.power == (1.0,)


def test_network_and_budget_are_the_replications():
    s, rep = learn.section("learnability"), profiles.get("replication")
    net = TwoScaleCNN.for_scales(rep.data.size, small_cl=rep.data.scales[0], large_cl=rep.data.scales[-1],
                                 fine_prob=0.0, coarse_prob=0.0)
    assert (net.n_fine, net.n_coarse) == (s.n_fine, s.n_coarse) and s.width == rep.sweep.width == 16
    assert (s.patience, s.loss_target, s.select) == (rep.sweep.patience, rep.sweep.loss_target, rep.sweep.select)
    specs = {x.per_class: x for x in learn.plan_map("learnability") if x.model == "cnn"}
    assert specs[25].train_config().epochs == rep.sweep.epochs
    assert specs[400].train_config().epochs == s.min_epochs
    spectral = next(x for x in learn.plan_map("learnability") if x.model == "spectral")
    assert spectral.train_config().lr == 1e-2 and learn.build_model(spectral).conv.kernel_size == (7, 7)
    cnn = learn.build_model(specs[25])
    assert cnn.n_classes == 2 and cnn.cells == ((32, 32), (4, 4))


def test_a_profile_without_the_section_is_refused_by_name():
    with pytest.raises(ValueError, match="no learnability section.*smoke"):
        learn.plan_map("default")


# ---------------------------------------------------------------- the spectral-energy net
def test_spectral_fft_formulation_equals_the_convolution():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 20, 18, dtype=torch.float64)
    a, b = (SpectralEnergyNet(2, 4, 5, init_seed=1, impl=i).double() for i in ("fft", "conv"))
    torch.testing.assert_close(a.energies(x), b.energies(x))
    a(x).sum().backward()
    b(x).sum().backward()
    torch.testing.assert_close(a.conv.weight.grad, b.conv.weight.grad)
    torch.testing.assert_close(a.conv.bias.grad, b.conv.bias.grad)
    with pytest.raises(ValueError, match="kernel must be odd"):
        SpectralEnergyNet(kernel=4)


def test_spectral_net_learns_a_clearly_separable_task():
    from backdrop_repro.data.datasets import generate

    def data(seed, n):
        return generate(Recipe(size=32, scales=((1.5, 4.0),), power=(1.0,), per_class=n, seed=seed, method="fft"),
                        progress=False)

    net = SpectralEnergyNet(2, channels=4, kernel=5, init_seed=0)
    out = train(net, data(1, 16), data(2, 32), TrainConfig(epochs=30, batch_size=8, lr=1e-2, eval_every=30),
                progress=False)
    assert out["final"]["test_accuracy"] >= 0.9


# ---------------------------------------------------------------- the edge, chosen from records
def _cells(means):
    return {k: {"lengths": ((1.0, k[1][0]),), "power": (1.0,), "cnn": {0: m - 0.01, 1: m + 0.01}}
            for k, m in means.items()}


def test_edge_is_chosen_in_the_band_nearest_its_centre_per_scale_and_size():
    cells = _cells({("small", (1.05,), 25): 0.50, ("small", (1.2,), 25): 0.82, ("small", (1.2,), 100): 0.74,
                    ("small", (1.5,), 25): 0.99, ("large", (1.1,), 25): 0.61, ("large", (1.2,), 100): 0.95,
                    ("large", (1.1,), 100): 0.62, ("large", (1.05,), 100): 0.78})
    # one cell per (scale, training-set size): a size's cell never displaces another size's
    assert learn.select_edge(cells, (0.6, 0.9), 1) == [("small", (1.2,), 25), ("small", (1.2,), 100),
                                                       ("large", (1.1,), 25), ("large", (1.05,), 100)]
    assert learn.select_edge(cells, (0.6, 0.9), 5) == [("small", (1.2,), 25), ("small", (1.2,), 100),
                                                       ("large", (1.1,), 25), ("large", (1.05,), 100),
                                                       ("large", (1.1,), 100)]
    one_seed = {k: {**c, "cnn": {0: 0.75}} for k, c in cells.items()}
    assert learn.select_edge(one_seed, (0.6, 0.9), 2) == []
    pick = learn.select_twoscale(cells, learn.select_edge(cells, (0.6, 0.9), 5), (0.6, 0.9))
    # same size, nearest the centre together: 100/class (0.74, 0.78) beats 25/class (0.82, 0.61)
    assert pick == {"small": ("small", (1.2,), 100), "large": ("large", (1.05,), 100), "per_class": 100}
    pick = learn.select_twoscale(cells, [("small", (1.2,), 100), ("large", (1.1,), 25)], (0.6, 0.9))
    assert pick["per_class"] == 100                              # no shared size: the larger one
    assert learn.select_twoscale(cells, [("small", (1.2,), 100)], (0.6, 0.9)) is None


def test_edge_runs_compare_the_matching_mask_and_the_authors_setting_over_ten_seeds():
    cells = _cells({("small", (1.2,), 25): 0.75, ("large", (1.1,), 100): 0.70})
    cells = {k: {**c, "lengths": ((2.375, 2.875),) if k[0] == "small" else ((20.0, 22.0),)} for k, c in cells.items()}
    specs = learn.plan_edge("learnability", cells)
    s = learn.section("learnability")
    assert len(s.edge_seeds) >= 10 and len(s.fine_probs) >= 3 and len(s.coarse_probs) >= 3
    small = {x.label for x in specs if x.scale == "small"}
    large = {x.label for x in specs if x.scale == "large"}
    demo = "demo: fine 0.3 + coarse 0.95"
    assert small == {"none", demo} | {f"fine {p:g}" for p in s.fine_probs}
    assert large == {"none", demo} | {f"coarse {p:g}" for p in s.coarse_probs}
    assert {x.seed for x in specs} == set(s.edge_seeds)
    base = next(x for x in specs if x.scale == "small" and x.config == "none" and x.seed == 0)
    mapped = next(x for x in learn.plan_map("learnability") if x.model == "cnn" and x.cell == base.cell and x.seed == 0)
    assert base.key == mapped.key                                # the map's runs are reused
    two = learn.plan_twoscale("learnability", cells)
    assert two[0].model == "oracle" and two[1].lengths == ((2.375, 2.875), (20.0, 22.0)) and two[1].n_classes == 4
    assert {x.label for x in two[1:]} == {"none", demo} | {f"fine {p:g}" for p in s.fine_probs} | \
        {f"coarse {p:g}" for p in s.coarse_probs}
    # at the pair's size (the larger edge cell's: 100) and at each further twoscale_sizes entry, all seeds each
    sizes = list(dict.fromkeys([100, *s.twoscale_sizes]))
    assert [x.per_class for x in two[1:]] == [n for n in sizes for _ in range(len(two[1:]) // len(sizes))]
    assert learn.twoscale_sizes(s, 25) == [25, *[n for n in s.twoscale_sizes if n != 25]]


# ---------------------------------------------------------------- the smoke run, end to end
def test_smoke_run_end_to_end_resumes_and_reports(monkeypatch):
    summary = learn.run_all("smoke", progress=False)
    s = learn.section("smoke")
    assert len(summary["map"]) == 2 * (len(s.small) - 1) * len(s.per_class)
    for row in summary["map"]:
        assert row["cnn"]["n"] == len(s.seeds) and row["spectral"]["n"] == len(s.seeds)
        assert row["oracle"]["exact"] and row["oracle"]["test_accuracy"] >= 0.9
        assert row["cnn_pooled"]["total"] == len(s.seeds) * 2 * s.data.test_per_class
    assert [(c["scale"], c["per_class"]) for c in summary["edge"]["cells"]] == \
        [(sc, n) for sc in ("small", "large") for n in s.per_class]      # the smoke band holds every cell
    blocks = summary["edge"]["cells"] + learn.twoscale_blocks(summary)
    first = summary["twoscale"][0]["per_class"]
    assert s.twoscale_sizes and [t["per_class"] for t in summary["twoscale"]] == learn.twoscale_sizes(s, first)
    family = sum(len(b["comparisons"]) for b in blocks)
    assert summary["family"]["m"] == family
    for block in blocks:
        assert block["baseline"]["n"] == len(s.edge_seeds)
        assert block["m"] == family and block["m_cell"] == len(block["comparisons"])
        for r in block["comparisons"]:
            assert r["n"] == len(s.edge_seeds) and r["claim"]["mde"] is not None and r["m_tests"] == block["m_cell"]
            assert r["p_study"] >= r["p_holm"] - 1e-12       # a larger family never makes a p-value smaller
    assert all(len(t["baseline_scale_means"]) == 2 for t in summary["twoscale"])
    folder = learn.records_dir("smoke")
    planned = {x.key for x in learn.plan_map("smoke") + learn.plan_edge("smoke") + learn.plan_twoscale("smoke")}
    assert {p.stem for p in folder.glob("*.json")} == planned    # one keyed record per planned run, no other
    rec = json.loads((folder / f"{learn.plan_map('smoke')[1].key}.json").read_text())
    assert rec["config"] == learn.plan_map("smoke")[1].to_dict() and len(rec["predictions"]["test"]) == 2 * s.data.test_per_class
    saved = json.loads((paths.results_dir("smoke") / "learnability.json").read_text())
    assert saved["family"] == summary["family"] and "answer" not in saved      # numbers only: the words are render's
    from backdrop_repro import render, tables

    text = render.findings(tables.learnability_rows(summary))
    assert text.startswith("- **Verdict**") and text.count("\n- ") <= 7

    def fail(*a, **k):
        raise AssertionError("a recorded run was trained again")

    monkeypatch.setattr("backdrop_repro.experiments.core.train", fail)
    again = learn.run_all("smoke", progress=False)               # resumable: everything is recorded
    assert again["edge"] == summary["edge"]
    assert main(["learnability", "--profile", "smoke", "--collect-only"]) == 0


def test_heat_map_and_edge_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from backdrop_repro.plots import learnability as lplots

    summary = learn.run_all("smoke", progress=False)
    for scale in ("small", "large"):
        fig = lplots.learnability_map(summary, scale)
        assert len(fig.axes) == 4 and "smoke" in fig._suptitle.get_text()
    assert lplots.edge_gains(summary).axes[0].get_title().endswith("(profile smoke)")
    with pytest.raises(ValueError, match="no cell"):
        lplots.learnability_map(summary, "medium")


# ---------------------------------------------------------------- one family for the study's answer
def _row(name, p, mean):
    return {"name": name, "n": 10, "mean": mean, "sd": 0.05, "sem": 0.016, "low": mean - 0.035, "high": mean + 0.035,
            "p": p, "p_holm": p, "decision": "better" if p < 0.05 and mean > 0 else "no significant difference"}


def test_study_family_holm_over_every_cell_decides_the_statuses():
    from backdrop_repro.claims import GAINS
    from backdrop_repro.experiments.learnability.report import study_family

    # a gain significant inside its own cell (p = 0.02, 1 candidate there) is not one among 4 comparisons
    cells = [{"scale": "small", "ratio": 1.2, "per_class": 25, "m": 1, "comparisons": [_row("fine 0.9", 0.02, 0.08)]},
             {"scale": "large", "ratio": 1.2, "per_class": 25, "m": 2,
              "comparisons": [_row("coarse 0.5", 0.5, 0.01), _row("coarse 0.95", 0.001, 0.09)]}]
    two = {"m": 1, "per_class": 100, "comparisons": [_row("demo", 0.9, 0.0)]}
    summary = {"edge": {"cells": cells}, "twoscale": [two]}
    assert study_family(summary) == {"m": 4, "alpha": 0.05}
    rows = [r for c in cells for r in c["comparisons"]] + two["comparisons"]
    assert [round(r["p_study"], 6) for r in rows] == [0.06, 1.0, 0.004, 1.0]     # Holm: 0.001x4, 0.02x3, then 0.5x2
    assert rows[0]["decision"] == "no significant difference" and rows[0]["claim"]["status"] not in GAINS
    assert rows[2]["claim"]["status"] in GAINS and all(c["m"] == 4 for c in cells) and two["m"] == 4
    assert [r["status"] in GAINS for r in rows] == [False, False, True, False]


def test_twoscale_block_is_at_the_edge_only_inside_the_rescaled_band():
    from backdrop_repro.experiments.learnability.report import at_edge, twoscale_band

    assert twoscale_band((0.6, 0.9)) == pytest.approx((0.4, 0.85))
    assert at_edge({"baseline": {"mean": 0.274}}, (0.6, 0.9)) is False
    assert at_edge({"baseline": {"mean": 0.6}}, (0.6, 0.9)) is True and at_edge({"baseline": None}, (0.6, 0.9)) is None


# ---------------------------------------------------------------- CLI flags, checked before any work
@pytest.mark.parametrize("flags", [["--fresh"], ["--jobs", "5"], ["--device", "cuda"], ["--part", "map"]])
def test_learnability_collect_only_refuses_flags_that_cannot_apply(capsys, monkeypatch, flags):
    from backdrop_repro.experiments.learnability import cli as lcli

    monkeypatch.setattr(lcli, "write_summary", lambda *a, **k: pytest.fail("work was done first"))
    assert cli.main(["learnability", "--profile", "smoke", "--collect-only", *flags]) == 2
    assert "not with --collect-only" in one_line(capsys, "learnability")


@pytest.mark.parametrize("flags, words", [(["--jobs", "0"], "--jobs must be an int >= 1"),
                                          (["--device", "cdua"], "is not a torch device"),
                                          (["--part", "edge"], "run `backdrop-repro learnability --profile smoke "
                                                               "--part map` first")])
def test_learnability_checks_flags_before_any_work(capsys, monkeypatch, tmp_path, flags, words):
    from backdrop_repro.experiments.learnability import cli as lcli

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))       # no map records here

    monkeypatch.setattr(lcli, "run_all", lambda *a, **k: pytest.fail("work was done first"))
    assert cli.main(["learnability", "--profile", "smoke", *flags]) == 2
    assert words in one_line(capsys, "learnability")
