"""The GP sweep (``experiments/gp_sweep/``): a throw-away profile through the smoke path, schema, idempotence,
subsets, selection on validation, corrupt records, the reproduction check and the statistics layer; the
``sweep`` arguments checked before any work, a record with an empty ``final`` set aside, and a Ctrl-C while
the workers start printing no worker's traceback. The verdict's evidence is in ``test_gp_sweep_verdict.py``,
the reproduction check on real records in ``test_gp_sweep_reproduction.py``."""
import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from backdrop_repro import cli, paths, profiles, report
from backdrop_repro.experiments import core
from backdrop_repro.experiments.gp_sweep import plan, run
from backdrop_repro.experiments.gp_sweep import models as gp_models, plan as gp_sweep, report as gp_report
from backdrop_repro.experiments.gp_sweep import run as gp_run
from backdrop_repro.experiments import (CONFIGS, plan_grid, plan_runs, run_sweep, load_sweep, select_best,
                                        compare_with_reference)
from helpers import one_line_error

SMOKE = profiles.get("smoke")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A profile registered for this module only: adding a profile is one entry in the table."""
    root = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("BACKDROP_REPRO_DATA", str(root / "data"))
    mp.setenv("BACKDROP_REPRO_OUTPUT", str(root / "out"))
    mp.setenv("TQDM_DISABLE", "1")
    p = profiles.register(dataclasses.replace(
        SMOKE, name="tiny-test", sweep=dataclasses.replace(SMOKE.sweep, epochs=4, eval_every=2)))
    sweep = run_sweep("tiny-test", progress=False)
    yield p, sweep, root
    profiles.PROFILES.pop("tiny-test")
    mp.undo()


def _env(monkeypatch, root):
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(root / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(root / "out"))


def test_registered_profile_runs_the_whole_smoke_path(tiny, monkeypatch):
    p, sweep, root = tiny
    _env(monkeypatch, root)
    from backdrop_repro import cli
    assert "tiny-test" in cli.build_parser().parse_args(["sweep", "--profile", "tiny-test"]).profile
    on_disk = load_sweep("tiny-test")
    assert json.loads(json.dumps(sweep)) == on_disk
    # grid: none + fine + coarse + both + demo, 2 seeds; studies: 2 configs x 2 seeds x (1 size + robustness)
    assert on_disk["n_runs"] == on_disk["n_planned"] == 5 * 2 + 2 * 2 * 2 and on_disk["complete"]
    grid = [r for r in on_disk["summary"] if r["study"] == "grid"]
    assert [r["config"] for r in grid] == list(CONFIGS)
    assert grid[-1]["fine_prob"] == 0.3 and grid[-1]["coarse_prob"] == 0.95       # the authors' demo setting
    studies = {(r["study"], r["per_class"], r["method"]) for r in on_disk["summary"] if r["study"] != "grid"}
    assert studies == {("data_size", 4, "matched"), ("robustness", 8, "fft")}
    for run in on_disk["runs"]:
        epochs = gp_sweep.RunSpec(p, "none", 0, 0.0, 0.0, 0, per_class=run["config"]["data"]["train"]["per_class"]
                                  ).train_config().epochs
        assert run["final"]["epoch"] == epochs and "test_accuracy" in run["final"] and "val_accuracy" in run["final"]
        # test data are evaluated only at the end; validation at every evaluation
        assert sum("test_accuracy" in h for h in run["history"]) == 1
    # data-size runs keep the image visits: 4 per class for 2x the epochs of 8 per class
    ds = next(r for r in on_disk["runs"] if r["config"]["study"] == "data_size")
    assert ds["config"]["train"]["epochs"] == 2 * p.sweep.epochs
    rows = list(csv.DictReader(open(root / "out" / "results" / "tiny-test" / "gp_sweep.csv")))
    assert len(rows) == on_disk["n_runs"]
    v = on_disk["verdict"]
    assert len(v["comparisons"]) == 4 and all(c["m_tests"] == 4 for c in v["comparisons"])
    assert v["baseline"]["n"] == len(p.sweep.seeds) and all(c["status"] == c["claim"]["status"] for c in v["comparisons"])
    assert "overall" not in v and "sentences" not in v                 # numbers only: the words are render's


def test_best_is_chosen_on_validation_not_test(tiny):
    p = tiny[0]
    def rec(config, level, seed, val, test):
        return {"config": {"study": "grid", "config": config, "level": level, "seed": seed},
                "final": {"val_accuracy": val, "test_accuracy": test}}
    records = [rec("none", 0, s, 0.9, 0.9) for s in (0, 1)]
    records += [rec("fine", 0, s, 0.4, 0.99) for s in (0, 1)]        # best on test, worse on validation
    records += [rec("coarse", 0, s, 0.6, 0.30) for s in (0, 1)]
    assert select_best(records) == ("coarse", 0)


def test_sweep_is_idempotent_and_subsets_never_drop_records(tiny, monkeypatch):
    p, sweep, root = tiny
    _env(monkeypatch, root)
    runs_dir = root / "out" / "results" / "tiny-test" / "gp_runs"
    before = {f.name: f.stat().st_mtime_ns for f in runs_dir.iterdir()}
    again = run_sweep("tiny-test", configs=["none"], seeds=[0], progress=False)     # a subset call
    assert {f.name: f.stat().st_mtime_ns for f in runs_dir.iterdir()} == before    # nothing re-run
    assert again["n_runs"] == sweep["n_runs"] and again["complete"]                 # table still covers all
    assert again["summary"] == sweep["summary"]


def test_corrupt_record_is_named_and_rerun(tiny, monkeypatch):
    p, sweep, root = tiny
    _env(monkeypatch, root)
    spec = plan_grid("tiny-test", ["none"], [0])[0]
    path = root / "out" / "results" / "tiny-test" / "gp_runs" / f"{spec.key}.json"
    good = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.warns(RuntimeWarning, match=spec.key):
        rec = gp_run.run_one(spec)
    assert rec["final"] == good["final"]                      # retrained from scratch: the same numbers (CPU)
    assert (path.parent / f"{spec.key}.json.corrupt").exists()


def test_keys_identify_runs_across_profiles():
    scaled, default, repl = plan_grid("scaled"), plan_grid("default"), plan_grid("replication")
    assert len(scaled) == 11 * 10 and len({s.key for s in scaled}) == len(scaled)
    assert len(repl) == 3 * 30 and {s.label for s in repl} == {"none", "fine 0.9 + coarse 0.95", "demo: fine 0.3 + coarse 0.95"}
    assert {s.key for s in default} <= {s.key for s in repl}       # default's runs are the replication's runs
    assert all(s.profile.data.size == 1024 and s.profile.sweep.width == 64 for s in plan_grid("paper"))
    with pytest.raises(ValueError, match="configs must be"):
        plan_grid("smoke", ["dropout"])
    with pytest.raises(ValueError, match="seeds must be"):
        plan_grid("smoke", seeds=[-1])
    with pytest.raises(ValueError, match="profile must be one of"):
        plan_grid("nope")


def test_reproduction_check(tiny, monkeypatch, tmp_path):
    p, sweep, root = tiny
    _env(monkeypatch, root)
    other = profiles.register(dataclasses.replace(p, name="tiny-copy"))
    try:
        rows_missing = compare_with_reference("tiny-copy", "tiny-test")
        assert rows_missing == []                                  # nothing run yet for the copy
        run_sweep("tiny-copy", configs=["none", "fine"], studies=False, reuse=False, progress=False)
        rows = compare_with_reference("tiny-copy", "tiny-test")
        assert len(rows) == 4 and all(r["status"] == "identical" for r in rows)     # bit-identical on a CPU
        ref = root / "out" / "results" / "tiny-test" / "gp_runs" / f"{rows[0]['key']}.json"
        rec = json.loads(ref.read_text())
        delta = 0.5 if rec["final"]["test_accuracy"] <= 0.5 else -0.5
        rec.pop("predictions")          # a valid record of another accuracy (no predictions to contradict it)
        rec["final"]["test_accuracy"] += delta
        ref.write_text(json.dumps(rec))
        rows = {r["key"]: r for r in compare_with_reference("tiny-copy", "tiny-test")}
        assert rows[rec["key"]]["status"] == "numerically different" and rows[rec["key"]]["diff"] == pytest.approx(-delta)
        from backdrop_repro import render
        from backdrop_repro.experiments.gp_sweep import reproduction

        res = reproduction.judge(list(rows.values()), "tiny-test")
        assert res["status"] == "not reproduced" and res["shifted"][0]["delta"] == pytest.approx(-delta / 2)
        assert (f"**Not reproduced**: `none` moved by {-delta / 2:+.3f}"
                in render.reproduction(list(rows.values()), res, "Reproduction check"))
    finally:
        profiles.PROFILES.pop(other.name)


def test_load_model_never_trains(tiny, monkeypatch, tmp_path):
    p, sweep, root = tiny
    _env(monkeypatch, root)
    spec = plan_grid("tiny-test", ["fine"], [1])[0]
    net = gp_models.load_model(spec)                      # the sweep left its final weights in the cache
    assert not net.training
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="ensure_models"):
        gp_models.load_model(spec)


def test_verdict_statuses_follow_the_numbers():
    def row(config, label, accs, study="grid"):
        return {"study": study, "config": config, "level": 0, "label": label, "per_class": 25, "method": "fft",
                "fine_prob": 0.3 if config == "fine" else 0.0, "coarse_prob": 0.5 if config == "coarse" else 0.0,
                "by_seed": dict(enumerate(accs)), "test_accuracy": report.summary(accs), "seeds": list(range(len(accs))),
                "failed": {}, "scales": None, "stop_reasons": {}, "train_loss": report.summary([0.0] * len(accs)),
                "pooled": {"correct": int(round(sum(accs) * 1000)), "total": 1000 * len(accs), "chance": 0.25}}
    base = [0.40, 0.42, 0.41, 0.43, 0.39]
    better = row("fine", "fine 0.3", [a + d for a, d in zip(base, (0.10, 0.12, 0.09, 0.11, 0.10))])
    same = row("coarse", "coarse 0.5", [a + d for a, d in zip(base, (0.01, -0.02, 0.0, 0.02, -0.01))])
    v = gp_report.verdict([row("none", "none", base), better, same], best="fine 0.3")
    assert [c["decision"] for c in v["comparisons"]] == ["better", "no significant difference"]
    assert [c["status"] for c in v["comparisons"]] == ["relevant gain", "equivalent"]   # same: interval inside ±0.03
    # a baseline at chance: every comparison inconclusive (none "not confirmed")
    chance = gp_report.verdict([row("none", "none", [0.25, 0.26, 0.24, 0.25, 0.25]), same])
    assert [c["status"] for c in chance["comparisons"]] == ["inconclusive"]
    # learning is decided over seeds: two seeds (a 1-df t-interval) do not show it, though the pooled binomial does
    two = gp_report.verdict([row("none", "none", [0.436, 0.404]), row("coarse", "coarse 0.5", [0.44, 0.40])])
    assert not two["learned"]["all"]["above"] and two["learned"]["all"]["pooled"]["above"]
    assert [(c["status"], c["claim"]["baseline_not_learned"]) for c in two["comparisons"]] == [("inconclusive", True)]
    five = gp_report.verdict([row("none", "none", [0.436, 0.404, 0.42, 0.41, 0.43]), same])
    assert five["learned"]["all"]["above"] and "baseline_not_learned" not in five["comparisons"][0]["claim"]


def test_holm_and_paired_statistics():
    assert report.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert report.holm([0.5, None]) == [0.5, None]
    d = report.paired({0: 0.4, 1: 0.5, 2: 0.6}, {0: 0.5, 1: 0.5, 2: 0.8})
    assert d["mean"] == pytest.approx(0.1) and d["test"] == "paired t"
    assert d["low"] < d["mean"] < d["high"] and 0 < d["p"] < 1
    const = report.paired({0: 0.4, 1: 0.5, 2: 0.6}, {0: 0.5, 1: 0.6, 2: 0.7})
    assert const["test"] == "sign" and const["p"] == pytest.approx(0.25)
    assert report.paired({0: 1.0}, {0: 2.0}) is None


# ------------------------------------------------------------------ the sweep's arguments, checked before any work
def _no_work(monkeypatch):
    """Fail the test if a dataset is built or a run trains."""
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "build_dataset", lambda *a, **k: pytest.fail("a dataset was built first"))
    monkeypatch.setattr(run, "run_one", lambda *a, **k: pytest.fail("a run trained first"))
    monkeypatch.setattr(core, "run_one", lambda *a, **k: pytest.fail("a run trained first"))


@pytest.mark.parametrize("device, says", [("cuda", "no CUDA device"), ("cuda:0", "no CUDA device"),
                                          ("cdua", "not a torch device"), ("gpu", "not a torch device")])
def test_a_device_this_machine_lacks_is_refused_before_any_dataset(monkeypatch, capsys, device, says):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _no_work(monkeypatch)
    assert cli.main(["sweep", "--profile", "smoke", "--device", device]) == 2
    assert says in one_line_error(capsys, "sweep")
    with pytest.raises(ValueError, match=says):
        run.run_sweep("smoke", device=device, progress=False)


def test_seeds_outside_the_profile_are_refused_before_training(monkeypatch, capsys):
    _no_work(monkeypatch)
    assert cli.main(["sweep", "--profile", "smoke", "--seeds", "0", "99"]) == 2
    line = one_line_error(capsys, "sweep")
    assert "--seeds [99]" in line and "smoke" in line
    with pytest.raises(ValueError, match=r"seeds \[99\]"):
        run.run_sweep("smoke", seeds=[99], progress=False)


@pytest.mark.parametrize("argv, says", [
    (["--collect-only", "--jobs", "2"], "--jobs: not with --collect-only"),
    (["--collect-only", "--fresh"], "--fresh: not with --collect-only"),
    (["--partition", "gpu"], "--partition: only with --launcher submitit"),
    (["--gpus-per-job", "1", "--time-min", "5"], "--gpus-per-job, --time-min: only with --launcher submitit"),
    (["--launcher", "submitit", "--jobs", "2"], "--jobs applies to --launcher local only"),
    (["--jobs", "0"], "--jobs must be an int >= 1"),
])
def test_sweep_flags_that_do_not_apply_are_refused(monkeypatch, capsys, argv, says):
    _no_work(monkeypatch)
    from backdrop_repro.experiments.gp_sweep import cli as sweep_cli

    monkeypatch.setattr(sweep_cli, "write_tables", lambda *a, **k: pytest.fail("tabled first"))
    assert cli.main(["sweep", "--profile", "smoke", *argv]) == 2
    assert says in one_line_error(capsys, "sweep")


# ------------------------------------------------------------------ a record with an empty or null final
@pytest.mark.parametrize("final", [{}, None, {"test_accuracy": None}, "0.5"])
def test_a_record_with_an_empty_or_null_final_is_set_aside_not_crashing_later_sweeps(final, capsys):
    from backdrop_repro.experiments.gp_sweep import report

    spec = plan.plan_grid("smoke", ["none"], [0])[0]
    path = plan.runs_dir("smoke") / f"{spec.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": spec.key, "config": spec.to_dict(), "final": final, "history": []}))
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert plan.read_record(path, spec) is None
    assert not path.exists() and path.with_name(path.name + ".corrupt").exists()
    path.write_text(json.dumps({"key": spec.key, "config": spec.to_dict(), "final": final, "history": []}))
    with pytest.warns(RuntimeWarning):
        report.write_tables("smoke")                  # the collect step of every later sweep
    assert cli.main(["sweep", "--profile", "smoke", "--collect-only"]) == 0
    path.with_name(path.name + ".corrupt").unlink()


# ------------------------------------------------------------------ Ctrl-C while the workers start
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(sys.platform != "linux", reason="signals to a process group: Linux")
def test_ctrl_c_while_workers_start_prints_no_worker_traceback(tmp_path):
    env = {**os.environ, "BACKDROP_REPRO_OUTPUT": str(tmp_path / "out"), "BACKDROP_REPRO_DATA": str(tmp_path / "data"),
           "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    # the smoke sweep with runs long enough (400 epochs) that the sweep cannot end between two looks at /proc
    script = ("from dataclasses import replace; from backdrop_repro import cli, profiles; p = profiles.get('smoke'); "
              "profiles.register(replace(p, name='smoke-long', sweep=replace(p.sweep, epochs=400))); "
              "raise SystemExit(cli.main(['sweep', '--profile', 'smoke-long', '--jobs', '2']))")
    from helpers import sigint_as_a_terminal_gives_it

    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=sigint_as_a_terminal_gives_it)
    # events, not times (a busy machine stretches every step): the signal goes once a worker process exists
    # (still importing) and the parent handles SIGINT again (it ignores it while the pool spawns its workers)
    try:
        deadline = time.time() + 600
        while not _workers_started(proc.pid):
            assert proc.poll() is None, f"the sweep ended before its workers were seen: {proc.communicate()[1][-2000:]}"
            assert time.time() < deadline, "no worker process in 600 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)          # what a terminal's Ctrl-C does: the whole process group
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert err.count("Traceback") == 0, err[-2000:]


def _workers_started(pid: int) -> bool:
    """Whether process ``pid`` has a spawned worker (``spawn_main`` in its command line; the resource tracker
    does not count) and catches SIGINT again (its ``SigIgn`` mask no longer holds it)."""
    try:
        kids = [k for t in Path(f"/proc/{pid}/task").iterdir() for k in (t / "children").read_text().split()]
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    ignored = int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
    if ignored & (1 << (signal.SIGINT - 1)):
        return False

    def spawned(k: str) -> bool:
        try:
            return b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return False
    return any(spawned(k) for k in kids)


# ------------------------------------------------------------------ issue 39: --compare with nothing to compare
@pytest.mark.parametrize("argv, says", [
    (["--profile", "smoke", "--compare", "replication"], "no committed reference holds runs of smoke"),
    (["--profile", "default", "--compare", "paper", "--collect-only"], "held by --compare replication"),
])
def test_compare_with_no_shared_key_is_refused_before_training(argv, says, monkeypatch, capsys):
    from backdrop_repro.experiments.gp_sweep import cli as gp_cli

    def boom(*a, **k):
        raise AssertionError("nothing may be trained or tabled")
    monkeypatch.setattr(gp_cli, "run_sweep", boom)
    monkeypatch.setattr(gp_cli, "write_tables", boom)
    assert cli.main(["sweep", *argv]) == 2
    line = one_line_error(capsys, "sweep")
    assert "so the reproduction check would compare nothing" in line and says in line, line
