"""The prepared GPU-window command (``scripts/gpu_window.py``), rehearsed on the CPU at smoke scale (so a
GPU window is never spent on a crash): sizing, several runs in flight, the sweep's own records, the hard
deadline. It answers bad arguments with one line before any work, refuses a non-empty ``--out``, obeys
``--work``, packs what finished on Ctrl-C, and its workers die with their parent."""
import json
import os
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
from helpers import pids_of_a_killed_script, survivors

from backdrop_repro.experiments import gp_sweep

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))        # a script, outside the package: its workers import it by this name
import gpu_window as gw  # noqa: E402


def test_plan_window_puts_the_paired_configurations_first():
    specs = gw.plan_window("smoke", 2, 3)
    configs = [(s.config, s.seed) for s in specs]
    assert configs[:4] == [("none", 0), ("demo", 0), ("none", 1), ("demo", 1)]
    assert {c for c, seed in configs[4:8]} == {"fine", "coarse"} and all(seed < 2 for _, seed in configs[4:8])
    assert {seed for _, seed in configs[8:]} == {2}
    assert len({s.key for s in specs}) == len(specs) == 12
    with pytest.raises(ValueError, match="seeds"):
        gw.plan_window("smoke", 0, 3)


def test_run_work_of_the_paper_profile():
    w = gw.run_work(gp_sweep.plan_grid("paper", ["none"], [0])[0])
    assert w["train"] == 10_000 and w["steps"] == 2_500 and w["eval"] > 0


def test_window_at_smoke_scale_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "output"))
    t = time.monotonic()
    s = gw.run_window(tmp_path / "out", "smoke", deadline_s=150, device="cpu", jobs=2, min_seeds=1, max_seeds=2,
                      echo=False)
    assert time.monotonic() - t < 150
    assert s["stop"] == "all planned runs finished" and s["runs_finished"] == 8
    assert sorted((tmp_path / "out").iterdir()) == [tmp_path / "out" / f
                                                   for f in ("records.tar.gz", "timing.log", "window.json")]
    log = (tmp_path / "out" / "timing.log").read_text()
    assert "runs per minute" in log and "sizing:" in log
    summary = json.loads((tmp_path / "out" / "window.json").read_text())
    assert summary["probe"]["runs_per_minute_one_in_flight"] > 0 and summary["sizing"]["jobs"] == 2
    with tarfile.open(tmp_path / "out" / "records.tar.gz") as tar:
        names = sorted(tar.getnames())
        tar.extractall(tmp_path / "unpacked", filter="data")
    specs = {sp.key: sp for sp in gw.plan_window("smoke", 2, 2)}
    assert [n.rsplit("/", 1)[-1][:-5] for n in names] == sorted(specs)
    assert all(n.startswith("results/smoke/gp_runs/") for n in names)
    for key, spec in specs.items():     # each record is the sweep's record of that spec
        assert gp_sweep.read_record(tmp_path / "unpacked" / "results" / "smoke" / "gp_runs" / f"{key}.json", spec)
    # a second window on the same work folder trains nothing: reused records are not runs it finished,
    # and its --out must be new (the first window's archive is never replaced)
    with pytest.raises(ValueError, match="already holds"):
        gw.run_window(tmp_path / "out", "smoke", deadline_s=150, device="cpu", jobs=2, min_seeds=1, max_seeds=2)
    s2 = gw.run_window(tmp_path / "out2", "smoke", deadline_s=150, device="cpu", jobs=2, min_seeds=1, max_seeds=2,
                       echo=False)
    assert s2["runs_finished"] == 0 and "runs_per_minute_observed" not in s2
    assert sorted(s2["already_recorded"]) == sorted(specs) and s2["stop"] == "all planned runs were already recorded"
    # ...bit-identical to the sweep's run_one in this process (CPU, one thread)
    first = gw.plan_window("smoke", 1, 1)[0]
    packed = json.loads((tmp_path / "unpacked" / "results" / "smoke" / "gp_runs" / f"{first.key}.json").read_text())
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "again"))
    again = gp_sweep.run_one(first, device="cpu", reuse=False)
    assert again["history"] == packed["history"] and again["final"] == packed["final"]


def test_deadline_stops_runs_in_flight_and_keeps_finished_ones():
    specs = gw.plan_window("smoke", 1, 2)
    t = time.monotonic()
    res = gw.run_pool(specs, jobs=2, deadline=t + 8, first_estimate_s=1.0, device="cpu", log=lambda m: None,
                      rehearsal_s=60)
    assert time.monotonic() - t < 60        # unstopped, each run would sleep 60 s after its start-up
    assert res["stop"].startswith("deadline")
    assert [r["status"] for r in res["runs"]] == ["stopped at the deadline"] * 2


def test_no_run_starts_that_cannot_end_before_the_deadline():
    specs = gw.plan_window("smoke", 1, 2)
    res = gw.run_pool(specs, jobs=1, deadline=time.monotonic() + 0.5, first_estimate_s=5.0, device="cpu",
                      log=lambda m: None, rehearsal_s=0.01)
    assert res["runs"] == [] and res["stop"].startswith("deadline: 8 planned runs left")


def test_window_that_runs_out_of_time_still_packs(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "output"))
    t = time.monotonic()
    s = gw.run_window(tmp_path / "out", "smoke", deadline_s=gw.MARGIN_S + 0.2, device="cpu", jobs=1, min_seeds=1,
                      max_seeds=1, echo=False)
    assert time.monotonic() - t < 60
    assert s["stop"].startswith("deadline") and s["runs_finished"] == 0
    assert (tmp_path / "out" / "records.tar.gz").exists() and (tmp_path / "out" / "window.json").exists()


# ------------------------------------------------------------------ arguments and --out, checked before any work
def _no_work(monkeypatch):
    monkeypatch.setattr(gw, "_start_data", lambda *a, **k: pytest.fail("datasets were started first"))
    monkeypatch.setattr(gw, "probe", lambda *a, **k: pytest.fail("the device was probed first"))


@pytest.mark.parametrize("argv, words", [
    (["--jobs", "0"], "--jobs must be an int >= 1"),
    (["--device", "cdua"], "--device 'cdua' is not a torch device"),
    (["--deadline-s", "-5"], "--deadline-s must be a finite number"),
    (["--deadline-s", "nan"], "--deadline-s must be a finite number"),
    (["--min-seeds", "3", "--max-seeds", "2"], "--min-seeds 3 must be <= --max-seeds 2"),
])
def test_bad_arguments_are_one_line_before_any_work(tmp_path, monkeypatch, capsys, argv, words):
    _no_work(monkeypatch)
    with pytest.raises(SystemExit) as e:
        gw.main(["--out", str(tmp_path / "out"), "--profile", "smoke", *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_one_line(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch)
    with pytest.raises(SystemExit):
        gw.main(["--out", str(tmp_path / "out"), "--profile", "smoke", "--device", "cuda"])
    assert "no CUDA device on this machine" in capsys.readouterr().err


def test_out_a_file_or_a_non_empty_folder_is_refused(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        gw.run_window(f, "smoke", deadline_s=60, device="cpu")
    full = tmp_path / "full"
    full.mkdir()
    (full / "records.tar.gz").write_bytes(b"the first window's archive")
    with pytest.raises(ValueError, match="already holds records.tar.gz"):
        gw.run_window(full, "smoke", deadline_s=60, device="cpu")
    assert (full / "records.tar.gz").read_bytes() == b"the first window's archive"
    with pytest.raises(SystemExit):
        gw.main(["--out", str(full), "--profile", "smoke"])
    assert "choose a new or empty folder" in capsys.readouterr().err


# ------------------------------------------------------------------ --work wins over the environment
def test_work_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "env-data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "env-out"))
    seen = {}

    def fake(out, p, *a, **k):
        seen.update(data=os.environ["BACKDROP_REPRO_DATA"], out=os.environ["BACKDROP_REPRO_OUTPUT"])
        return {"runs_finished": 0}

    monkeypatch.setattr(gw, "_window", fake)
    gw.run_window(tmp_path / "o", "smoke", deadline_s=60, device="cpu", work=tmp_path / "w")
    assert seen == {"data": str(tmp_path / "w" / "data"), "out": str(tmp_path / "w" / "output")}
    assert os.environ["BACKDROP_REPRO_OUTPUT"] == str(tmp_path / "env-out")     # restored afterwards
    gw.run_window(tmp_path / "o2", "smoke", deadline_s=60, device="cpu")        # no --work: the environment
    assert seen == {"data": str(tmp_path / "env-data"), "out": str(tmp_path / "env-out")}


# ------------------------------------------------------------------ Ctrl-C packs what finished
def test_ctrl_c_packs_what_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "output"))
    from backdrop_repro.experiments import gp_sweep

    spec = gw.plan_window("smoke", 1, 1)[0]
    rdir = gp_sweep.runs_dir(spec.profile)
    rdir.mkdir(parents=True, exist_ok=True)
    (rdir / f"{spec.key}.json").write_text(json.dumps(
        {"key": spec.key, "config": spec.to_dict(), "history": [], "final": {"test_accuracy": 0.5}}))

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(gw, "run_pool", interrupted)
    monkeypatch.setattr(gw, "find_record", lambda s: None)
    s = gw.run_window(tmp_path / "out", "smoke", deadline_s=120, device="cpu", jobs=1, min_seeds=1, max_seeds=1,
                      echo=False)
    assert s["interrupted"] and s["stop"] == "interrupted (Ctrl-C)"
    assert json.loads((tmp_path / "out" / "window.json").read_text())["interrupted"] is True
    with tarfile.open(tmp_path / "out" / "records.tar.gz") as tar:
        assert tar.getnames() == [f"results/smoke/gp_runs/{spec.key}.json"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")
def test_ctrl_c_in_the_pool_stops_the_workers_and_says_so():
    import signal
    import threading

    specs = gw.plan_window("smoke", 1, 2)
    started = []

    def ctrl_c_once_both_run(message: str) -> None:
        """The event, not a time: once both runs are handed to the workers (a busy machine stretches every
        step), Ctrl-C when both worker processes are alive."""
        if message.startswith("start"):
            started.append(message)
            if len(started) == 2:
                threading.Thread(target=ctrl_c_when_the_workers_live, daemon=True).start()

    def children() -> set:
        out = set()
        for t in Path(f"/proc/{os.getpid()}/task").iterdir():
            try:
                out |= {k for k in (t / "children").read_text().split()
                        if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()}
            except OSError:                 # a thread or a process that just ended
                continue
        return out

    def sigint_ignored() -> bool:
        status = Path(f"/proc/{os.getpid()}/status").read_text()
        mask = int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
        return bool(mask & (1 << (signal.SIGINT - 1)))

    def ctrl_c_when_the_workers_live() -> None:
        # only this pool's workers count (an earlier test's leftover worker is not one of them), and only once this
        # process handles SIGINT again (the pool ignores it while it spawns): a signal sent earlier would be lost
        while not done.is_set():
            if len(children() - before) >= 2 and not sigint_ignored():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    done = threading.Event()
    before = children()
    t = time.monotonic()
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)   # a harness may start us with SIGINT ignored
    try:
        res = gw.run_pool(specs, jobs=2, deadline=t + 600, first_estimate_s=1.0, device="cpu",
                          log=ctrl_c_once_both_run, rehearsal_s=600)
    finally:
        done.set()                          # a watcher still waiting never signals a later test
        signal.signal(signal.SIGINT, handler)
    assert time.monotonic() - t < 300       # unstopped, each run would sleep 600 s: a bound a loaded CPU keeps
    assert res["interrupted"] and res["stop"].startswith("interrupted (Ctrl-C)")
    assert [r["status"] for r in res["runs"]] == ["stopped (Ctrl-C)"] * 2


# ------------------------------------------------------------------ the workers die with their parent
_POOL = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path.insert(0, SCRIPTS)
    import gpu_window as gw

    if __name__ == "__main__":
        def kill():
            time.sleep(6)
            kids = open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()
            print(" ".join(kids), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Thread(target=kill, daemon=True).start()
        gw.run_pool(gw.plan_window("smoke", 1, 1), jobs=2, deadline=time.monotonic() + 300, first_estimate_s=1.0,
                    device="cpu", log=lambda m: None, rehearsal_s=300)
""")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")
def test_window_workers_die_with_their_parent(tmp_path):
    kids = pids_of_a_killed_script(tmp_path, _POOL.replace("SCRIPTS", repr(str(SCRIPTS))))
    assert len(kids) >= 2                       # the two workers (and the queues' resource tracker)
    assert not survivors(kids)
