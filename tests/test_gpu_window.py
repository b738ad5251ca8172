"""The prepared GPU-window command, rehearsed on the CPU at smoke scale (so a GPU window is never
spent on a crash): sizing, several runs in flight, the sweep's own records, the hard deadline."""
import json
import tarfile
import time

import pytest

from backdrop_repro import gpu_window as gw
from backdrop_repro.experiments import gp_sweep


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
    assert time.monotonic() - t < 25
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
