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


# ------------------------------------------------------------------ submitit on SLURM, without one: the five faults
def _fake_slurm(tmp_path, monkeypatch, sacct: str = "exit 0"):
    """``sbatch`` and ``sacct`` on the PATH as shell scripts (``sacct``'s body given)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in (("sbatch", "exit 0"), ("sacct", sacct)):
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_))


@needs_submitit
def test_slurm_without_accounting_is_refused_before_anything_is_submitted(tmp_path, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, sacct='echo "sacct: error: Slurm accounting storage is disabled" >&2; exit 1')
    with pytest.raises(ValueError) as err:
        launch.make_executor(tmp_path / "logs")
    msg = str(err.value)
    assert "\n" not in msg and "needs job accounting (sacct: sacct: error: Slurm accounting storage is disabled)" in msg
    assert "slurmdbd" in msg and "scripts/slurm-single-node.sh" in msg and not (tmp_path / "logs").exists()
    (tmp_path / "bin" / "sacct").unlink()
    with pytest.raises(ValueError, match="needs job accounting, and sacct is not on the PATH"):
        launch.make_executor(tmp_path / "logs")


@needs_submitit
def test_a_short_time_limit_warns_and_time_outs_are_requeued_through_checkpoint(tmp_path):
    import submitit

    with pytest.warns(UserWarning, match="--time-min 1 is under 2 minutes"):
        launch.make_executor(tmp_path, cluster="local", time_min=1)
    assert [launch.signal_delay_s(m) for m in (1, 2, 4, 6, 240)] == [15, 30, 60, 90, 90]
    shard = launch.RunShard()
    assert isinstance(shard, submitit.helpers.Checkpointable)
    again = shard.checkpoint(["spec"], "cpu", True, 1)
    assert again.function is shard and again.args == (["spec"], "cpu", True, 1)


class _Spec:
    """A stand-in spec: ``run_one`` is faked, so only the key and record path count."""

    def __init__(self, key, folder):
        self.key, self.record_path, self.threads, self.seed = key, folder / f"{key}.json", None, 0

    def find_record(self):
        return None


@needs_submitit
def test_a_requeued_fresh_run_resumes_rather_than_reading_the_record_it_replaces(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(core, "run_one", lambda s, device=None, reuse=True, progress=False: calls.append((s.key, reuse)))
    a, b = _Spec("a", tmp_path), _Spec("b", tmp_path)
    b.record_path.write_text("{}")                       # b's old record, being retrained (reuse=False)
    shard = launch.RunShard()
    shard.started, shard.finished = ["a", "b"], ["a"]    # a finished, b in training when the signal came
    shard.checkpoint([a, b], None, False)
    assert not b.record_path.exists()                     # removed: the requeued task resumes b's checkpoint
    assert shard([a, b], None, False) == ["a", "b"] and calls == [("b", True)]
    fresh = launch.RunShard()
    fresh([a], None, False)
    assert calls[-1] == ("a", False)                      # a run the task had not begun is retrained from scratch


class _Job:
    """A stand-in submitit job: done after ``polls`` polls, then ``error`` (or a result)."""

    watcher = None

    def __init__(self, job_id, folder, polls=1, state="COMPLETED", error=None, interrupt=False):
        self.job_id, self.state, self.error, self.polls, self.interrupt = job_id, state, error, polls, interrupt
        self.cancelled = False

        class P:
            stderr, stdout = folder / f"{job_id}_log.err", folder / f"{job_id}_log.out"
        self.paths = P

    def done(self):
        if self.interrupt:                                 # a Ctrl-C during this poll (once)
            self.interrupt = False
            raise KeyboardInterrupt
        self.polls -= 1
        return self.polls < 0 or self.cancelled

    def result(self):
        if self.error:
            raise self.error
        return []

    def cancel(self, check=True):
        self.cancelled = True


class _Executor:
    cluster = "local"

    def __init__(self, folder, jobs):
        self.folder, self.jobs = folder / "%j", jobs

    def map_array(self, fn, shards, *rest):
        assert isinstance(fn, launch.RunShard)
        return self.jobs[:len(shards)]


@needs_submitit
def test_a_failed_task_names_its_state_and_reason_and_only_the_logs_that_exist(tmp_path, monkeypatch):
    from submitit.core.utils import FailedJobError, UncompletedJobError

    monkeypatch.setattr(core, "load_data", lambda *a, **k: None)
    specs = [_Spec(k, tmp_path) for k in "abc"]
    (tmp_path / "2_1_log.err").write_text("")
    jobs = [_Job("2_0", tmp_path, state="CANCELLED by 0", error=UncompletedJobError(
                "Job 2_0 (task: 0) with path x\nhas not produced any output (state: CANCELLED by 0)\n"
                f"No output/error stream produced ! Check: {tmp_path}/2_0_log.out")),
            _Job("2_1", tmp_path, state="FAILED", error=FailedJobError(
                "Job (task=1) failed during processing with trace:\n----------------------\nTraceback ...\n"
                "submitit.core.utils.UncompletedJobError: Job not requeued because: timed-out and not checkpointable.\n"
                "----------------------\nYou can check full logs with 'job.stderr(1)'\nor at paths:\n  - a\n  - b")),
            _Job("2_2", tmp_path)]
    out = launch.Submitit(_Executor(tmp_path, jobs), poll_s=0)(specs, progress=False)
    assert out["submitted"] == 3 and len(out["failed"]) == 2
    cancelled, timed_out = out["failed"]
    assert cancelled == ("job 2_0 (runs a): state CANCELLED by 0: the task ended without a result -- no log "
                         "(the task never started)")
    assert timed_out == (f"job 2_1 (runs b): state FAILED: not requeued: timed-out and not checkpointable -- log "
                         f"{tmp_path}/2_1_log.err")


@needs_submitit
def test_off_a_tty_the_wait_prints_a_line_per_finished_task(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core, "load_data", lambda *a, **k: None)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    jobs = [_Job(f"3_{i}", tmp_path, polls=i) for i in range(3)]
    launch.Submitit(_Executor(tmp_path, jobs), poll_s=0)([_Spec(k, tmp_path) for k in "abc"], desc="sweep")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("sweep: submitted 3 runs as 3 jobs (first job id 3_0)")
    assert [x.split(",")[0] for x in lines[1:]] == ["[sweep] 1/3 jobs done (2 queued or running)",
                                                    "[sweep] 2/3 jobs done (1 queued or running)",
                                                    "[sweep] 3/3 jobs done (0 queued or running)"]


@needs_submitit
def test_ctrl_c_while_waiting_cancels_what_this_call_submitted_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core, "load_data", lambda *a, **k: None)
    jobs = [_Job("4_0", tmp_path, polls=0), _Job("4_1", tmp_path, polls=5)]
    jobs[1].interrupt = True
    with pytest.raises(KeyboardInterrupt):
        launch.Submitit(_Executor(tmp_path, jobs), poll_s=0)([_Spec(k, tmp_path) for k in "ab"], progress=False)
    assert jobs[1].cancelled and not jobs[0].cancelled
    assert capsys.readouterr().err.strip().splitlines() == [
        "jobs: interrupted: cancelled 1 jobs (1 of 2 tasks not finished); the runs recorded are kept, and the same "
        "command submits only the missing ones"]

    # on SLURM: one scancel of the arrays, named in the line
    ran = []
    monkeypatch.setattr(launch.subprocess, "run", lambda cmd, **k: ran.append(cmd))
    ex = _Executor(tmp_path, [_Job("5_0", tmp_path, polls=5), _Job("5_1", tmp_path, polls=5)])
    ex.cluster = "slurm"
    _Job.watcher = type("W", (), {"update": lambda self: None})()
    ex.jobs[0].interrupt = True
    try:
        with pytest.raises(KeyboardInterrupt):
            launch.Submitit(ex, poll_s=0)([_Spec(k, tmp_path) for k in "ab"], progress=False)
    finally:
        _Job.watcher = None
    assert ran == [["scancel", "5"]]
    assert "interrupted: cancelled job arrays 5 (" in capsys.readouterr().err
