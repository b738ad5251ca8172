"""The GP sweep: end-to-end smoke sweep, schema, idempotence, sharding, verdict, bad configs."""
import csv
import json

import pytest

from backdrop_repro import paths
from backdrop_repro.experiments import (CONFIGS, PROFILES, plan_runs, run_sweep, summarize, verdict,
                                        load_sweep)


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    # module-scoped: set the isolated dirs by hand (the autouse fixture is function-scoped)
    root = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("BACKDROP_REPRO_DATA", str(root / "data"))
    mp.setenv("BACKDROP_REPRO_OUTPUT", str(root / "out"))
    mp.setenv("TQDM_DISABLE", "1")
    sweep = run_sweep("smoke", progress=False)
    yield sweep, root
    mp.undo()


def test_smoke_sweep_writes_json_and_csv(smoke_sweep, monkeypatch):
    sweep, root = smoke_sweep
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(root / "out"))
    on_disk = load_sweep("smoke")
    assert json.loads(json.dumps(sweep)) == on_disk
    assert on_disk["complete"] and on_disk["n_runs"] == on_disk["n_planned"] == 8
    assert set(on_disk) >= {"profile", "settings", "oracle", "summary", "runs", "verdict", "versions",
                            "run_wall_time_s"}
    assert [r["config"] for r in on_disk["summary"]] == list(CONFIGS)
    for row in on_disk["summary"]:
        assert row["seeds"] == [0, 1]
        assert 0.0 <= row["test_accuracy"]["mean"] <= 1.0 and row["test_accuracy"]["std"] >= 0
        assert ("delta_test_accuracy" in row) == (row["config"] != "none")
    none = on_disk["summary"][0]
    assert none["fine_prob"] == none["coarse_prob"] == 0.0
    both = on_disk["summary"][3]
    assert (both["fine_prob"], both["coarse_prob"]) == (0.5, 0.75)
    for run in on_disk["runs"]:
        assert len(run["history"]) == PROFILES["smoke"].epochs
        assert run["final"]["epoch"] == PROFILES["smoke"].epochs
    o = on_disk["oracle"]
    assert o["test_accuracy"] >= 0.6 and o["method"] == "matched"      # chance 0.25
    rows = list(csv.DictReader(open(root / "out" / "results" / "smoke" / "gp_sweep.csv")))
    assert len(rows) == 8 and {r["config"] for r in rows} == set(CONFIGS)
    assert float(rows[0]["test_accuracy"]) == pytest.approx(on_disk["runs"][0]["final"]["test_accuracy"])
    assert isinstance(on_disk["verdict"], str) and "smoke" in on_disk["verdict"]


def test_sweep_is_idempotent(smoke_sweep, monkeypatch):
    sweep, root = smoke_sweep
    for k, v in (("BACKDROP_REPRO_DATA", root / "data"), ("BACKDROP_REPRO_OUTPUT", root / "out")):
        monkeypatch.setenv(k, str(v))
    runs_dir = root / "out" / "results" / "smoke" / "gp_runs"
    before = {p.name: p.stat().st_mtime_ns for p in runs_dir.iterdir()}
    again = run_sweep("smoke", progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in runs_dir.iterdir()} == before    # nothing re-run
    assert again["summary"] == sweep["summary"]


def test_sweep_subsets_and_shards(monkeypatch, tmp_path):
    specs = plan_runs("quick")
    assert len(specs) == (1 + 3 * 3) * 5  # none once + 3 configs x 3 levels, x 5 seeds
    assert len({s.key for s in specs}) == len(specs)
    # a run's key depends only on its own config: subsets and shards find the same runs
    sub = plan_runs("quick", configs=["none", "coarse"], seeds=[1])
    assert {s.key for s in sub} <= {s.key for s in specs} and len(sub) == 4
    shards = [specs[i::3] for i in range(3)]
    assert sorted(s.key for sh in shards for s in sh) == sorted(s.key for s in specs)
    assert all(s.profile.size == 1024 and s.profile.width == 64 for s in plan_runs("paper"))
    # a shard of the smoke sweep only trains its runs, and the tables say the sweep is incomplete
    part = run_sweep("smoke", configs=["none", "fine"], shard=(0, 2), progress=False)
    assert part["n_runs"] == 2 and part["n_planned"] == 4 and not part["complete"]


def _fake(config, level, fp, cp, seed, acc):
    return {"config": {"config": config, "level": level, "fine_prob": fp, "coarse_prob": cp, "seed": seed},
            "final": {"test_accuracy": acc, "test_loss": 1.0, "train_accuracy": 1.0, "train_eval_loss": 0.1}}


def test_summary_and_verdict():
    base = [0.40, 0.45, 0.50, 0.42, 0.47]
    runs = [_fake("none", 0, 0.0, 0.0, s, a) for s, a in enumerate(base)]
    runs += [_fake("fine", 0, 0.5, 0.0, s, a + 0.10 + 0.01 * (s % 2)) for s, a in enumerate(base)]
    runs += [_fake("coarse", 0, 0.0, 0.5, s, a) for s, a in enumerate(base)]
    rows = summarize(runs)
    fine = next(r for r in rows if r["config"] == "fine")
    assert fine["delta_test_accuracy"]["mean"] == pytest.approx(0.104)
    assert fine["delta_test_accuracy"]["p_value"] < 1e-4
    assert fine["test_accuracy"]["mean"] == pytest.approx(sum(base) / 5 + 0.104)
    coarse = next(r for r in rows if r["config"] == "coarse")
    assert coarse["delta_test_accuracy"]["mean"] == 0.0 and coarse["delta_test_accuracy"]["p_value"] == 1.0
    text = verdict({"profile": "quick", "summary": rows, "oracle": {"test_accuracy": 0.9}})
    assert "reproduces at this profile" in text and "`fine`" in text and "0.900" in text
    noise = [_fake("none", 0, 0.0, 0.0, s, a) for s, a in enumerate(base)]
    noise += [_fake("fine", 0, 0.5, 0.0, s, a + (0.02 if s % 2 else -0.02)) for s, a in enumerate(base)]
    text = verdict({"profile": "quick", "summary": summarize(noise)})
    assert "does not reproduce" in text
    const = [_fake("none", 0, 0.0, 0.0, s, 0.25) for s in range(2)]
    const += [_fake("both", 0, 0.5, 0.5, s, 0.35) for s in range(2)]
    rows = summarize(const)
    assert rows[1]["delta_test_accuracy"]["p_value"] is None
    assert "no t-test" in verdict({"profile": "quick", "summary": rows})
    assert "reproduces at" not in verdict({"profile": "quick", "summary": rows})


@pytest.mark.parametrize("kw,match", [
    (dict(configs=["dropout"]), "configs"), (dict(configs=[]), "configs"),
    (dict(seeds=[-1]), "seeds"), (dict(seeds=[]), "seeds"),
])
def test_bad_plan(kw, match):
    with pytest.raises(ValueError, match=match):
        plan_runs("smoke", **kw)


def test_bad_profile_and_shard():
    with pytest.raises(ValueError, match="profile"):
        plan_runs("huge")
    with pytest.raises(ValueError, match="shard"):
        run_sweep("smoke", shard=(2, 2), progress=False)


def test_cli_sweep_parser(capsys):
    from backdrop_repro.cli import build_parser, main

    args = build_parser().parse_args(["sweep", "--profile", "smoke", "--configs", "none", "--seeds", "0",
                                      "--shard", "0/1"])
    assert args.profile == "smoke" and args.shard == (0, 1) and args.configs == ["none"]
    assert main(["sweep", "--profile", "smoke", "--configs", "none", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert "none" in out and "oracle test acc" in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "--shard", "3/2"])


def test_load_model_retrains_a_missing_checkpoint_to_the_same_weights(smoke_sweep, monkeypatch):
    # a fresh clone has the committed run records but no checkpoints (they live in the data cache)
    import torch

    from backdrop_repro.experiments import _ckpt_path, load_model

    _, root = smoke_sweep
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(root / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(root / "out"))
    spec = next(s for s in plan_runs("smoke") if s.config == "both")
    original, trained = load_model(spec, retrain_missing=False)
    assert trained
    _ckpt_path(spec).unlink()
    untrained, trained = load_model(spec, retrain_missing=False)
    assert not trained
    assert not torch.equal(untrained.head.weight, original.head.weight)
    again, trained = load_model(spec)
    assert trained and _ckpt_path(spec).exists()
    for a, b in zip(again.state_dict().values(), original.state_dict().values()):
        assert torch.equal(a, b)
