"""The launchers (:mod:`backdrop_repro.experiments.launchers`): a smoke sweep through submitit's local executor
(no SLURM), idempotent; the same launcher serves the learnability runner; the local pool's workers die with
their parent; off a TTY the local launcher prints a line per finished run, on one it keeps its bar."""
import dataclasses
import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import pids_of_a_killed_script, survivors

from backdrop_repro import profiles
from backdrop_repro.experiments import core, launchers
from backdrop_repro.experiments import launchers as launch
from backdrop_repro.experiments.gp_sweep import plan
from backdrop_repro.experiments.gp_sweep import plan as gp_sweep
from backdrop_repro.experiments.gp_sweep.run import run_sweep

#: the tests that go through submitit's local executor (an optional dependency: ``pip install .[cluster]``)
needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit is not installed")

NAME = "launch-test"


@pytest.fixture
def tiny_profile(tmp_path, monkeypatch):
    """A smoke-sized profile with 4 grid runs (1 seed) and no studies, removed afterwards."""
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    smoke = profiles.get("smoke")
    p = profiles.register(dataclasses.replace(
        smoke, name=NAME, sweep=dataclasses.replace(smoke.sweep, seeds=(0,), fine_probs=(0.5,), coarse_probs=(0.75,),
                                                    demo_probs=None, data_sizes=(), robustness_method=None)))
    yield p
    profiles.PROFILES.pop(NAME, None)


def local_executor(folder, **kw):
    """make_executor on submitit's local cluster (every option still goes through validation)."""
    return launch.make_executor(folder, **{**kw, "cluster": "local"})


@needs_submitit
def test_smoke_sweep_through_submitit_local_executor_is_idempotent(tiny_profile, tmp_path):
    plan = gp_sweep.plan_runs(tiny_profile)
    assert len(plan) == 4 and {s.study for s in plan} == {"grid"}
    out = run_sweep(NAME, launcher="submitit", folder=tmp_path / "logs", runs_per_job=2, time_min=10, progress=False,
                    poll_s=0.5, executor_factory=local_executor, device="cpu")
    assert out["launch"] == {"submitted": 4, "jobs": 2, "failed": []}
    runs = gp_sweep.runs_dir(NAME)
    for s in plan:
        rec = json.loads((runs / f"{s.key}.json").read_text())
        assert rec["config"] == s.to_dict() and 0 <= rec["final"]["test_accuracy"] <= 1
    table = json.loads((runs.parent / "gp_sweep.json").read_text())
    assert table["n_runs"] == table["n_planned"] == 4 and table["complete"]
    assert (runs.parent / "gp_sweep.csv").exists()

    calls = []

    def counting_executor(folder, **kw):
        ex = local_executor(folder, **kw)
        real = ex.map_array
        ex.map_array = lambda *a: calls.append(a) or real(*a)
        return ex

    again = run_sweep(NAME, launcher="submitit", folder=tmp_path / "logs", progress=False,
                      executor_factory=counting_executor)
    assert again["launch"]["submitted"] == 0 and calls == []
    assert again["n_runs"] == 4


@needs_submitit
def test_collect_only_cli_and_option_errors(tiny_profile, tmp_path, capsys):
    from backdrop_repro.cli import main

    assert main(["sweep", "--profile", NAME, "--collect-only"]) == 0
    assert "0/4 runs" in capsys.readouterr().out
    with pytest.raises(ValueError, match="time_min"):
        launch.make_executor(tmp_path, cluster="local", time_min=0)
    with pytest.raises(ValueError, match="cluster"):
        launch.make_executor(tmp_path, cluster="pbs")
    with pytest.raises(ValueError, match="runs_per_job"):
        launch.Submitit(None, runs_per_job=0)
    with pytest.raises(ValueError, match="launcher"):
        run_sweep(NAME, launcher="pbs")
    with pytest.raises(TypeError, match="submitit"):
        run_sweep(NAME, partition="gpu")


@needs_submitit
def test_the_learnability_runner_takes_the_same_launcher(tmp_path, monkeypatch):
    """A launcher is a parameter of every experiment, so the learnability map (and the confirm study, which
    runs through the same ``run_part``-style call) trains through submitit too."""
    from backdrop_repro.experiments.learnability import plan as lplan, run as lrun

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    size = min(lplan.section("smoke").per_class)
    specs = lrun.run_part("smoke", "map", per_class=[size], seeds=[0], progress=False, launcher="submitit",
                          folder=tmp_path / "logs", poll_s=0.5, executor_factory=local_executor, time_min=10)
    nets = [s for s in specs if s.model != "oracle"]
    assert nets and all(s.find_record() is not None for s in specs)
    assert len(list((tmp_path / "logs").rglob("*_submitted.pkl"))) == len(nets)   # one array task per network
    with pytest.raises(TypeError, match="submitit"):
        lrun.run_part("smoke", "map", per_class=[size], seeds=[0], progress=False, partition="gpu")


@pytest.mark.parametrize("argv", [["sweep", "--profile", "smoke"], ["learnability", "--profile", "smoke"],
                                  ["confirm", "--profile", "smoke"]])
def test_every_experiment_command_has_the_launcher_flags_and_refuses_them_where_they_cannot_apply(argv, capsys,
                                                                                                  monkeypatch, tmp_path):
    from backdrop_repro.cli import main

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
    assert main([*argv, "--partition", "gpu"]) == 2
    assert capsys.readouterr().err.strip().endswith("--partition: only with --launcher submitit (this run is local)")
    assert main([*argv, "--launcher", "submitit", "--jobs", "2"]) == 2
    assert "--jobs applies to --launcher local only" in capsys.readouterr().err


# ------------------------------------------------------------------ the local pool's workers die with their parent
_POOL_SCRIPT = textwrap.dedent("""
    import os, signal, time
    from backdrop_repro.experiments.launchers import worker_pool

    if __name__ == "__main__":
        pool = worker_pool(2)
        for f in [pool.submit(time.sleep, 0.5) for _ in range(2)]:
            f.result()
        print(" ".join(str(p) for p in pool._processes), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_die_with_their_parent(tmp_path):
    workers = pids_of_a_killed_script(tmp_path, _POOL_SCRIPT)
    assert len(workers) == 2
    assert not survivors(workers)


# ------------------------------------------------------------------ progress: a line per run off a TTY, a bar on one
def _fake_runs(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(plan, "find_record", lambda s: None)
    monkeypatch.setattr(core, "load_data", lambda *a, **k: None)
    monkeypatch.setattr(core, "run_one", lambda *a, **k: None)
    return plan.plan_grid("smoke", ["none", "fine"], [0])


def test_on_a_non_tty_the_sweep_prints_a_line_per_run_with_the_time_left(monkeypatch, capsys):
    specs = _fake_runs(monkeypatch)
    launchers.Local(1)(specs, progress=True, desc="GP sweep smoke: grid")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(specs)
    for i, line in enumerate(lines, 1):
        assert line.startswith(f"[GP sweep smoke: grid] {i}/{len(specs)} runs done (")
        assert "so far, ≈ " in line and line.endswith(" left")
    launchers.Local(1)(specs, progress=False)
    assert capsys.readouterr().err == ""


def test_on_a_tty_the_sweep_keeps_its_bar(monkeypatch):
    from tqdm import tqdm

    _fake_runs(monkeypatch)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = launchers.progress_bar(3, "x", True)
    assert isinstance(bar, tqdm)
    bar.close()
