"""The run core (:mod:`backdrop_repro.experiments.core`): what ``run_one`` writes. Issue 39: a record's
``versions.machine`` named the caller's torch threads, not the run's; a run overwrote a record edited under
its old key without a word and without a copy (the one data loss of the fault battery)."""
import json
import warnings

import pytest
import torch

from backdrop_repro.experiments import core
from backdrop_repro.experiments.gp_sweep import plan


def test_a_run_keeps_an_edited_record_and_states_the_threads_it_trained_with(own_output_dir, own_data_dir):
    """Own folders: the finished run's checkpoint stays in its data cache (a later test's run would end at once)."""
    spec = plan.plan_grid("smoke", ["none"], [0])[0]
    assert spec.threads == 1
    path = spec.record_path
    path.parent.mkdir(parents=True, exist_ok=True)
    edited = {"key": spec.key, "config": {**spec.to_dict(), "seed": 99}, "history": [],
              "final": {"test_accuracy": 0.5}}
    path.write_text(json.dumps(edited))
    before = torch.get_num_threads()
    torch.set_num_threads(2)                       # the caller's count: not the run's
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = core.run_one(spec, progress=False)
    finally:
        torch.set_num_threads(before)
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(str(path) in m and "edited under its old key" in m for m in said), said      # named when read
    assert any(str(path) in m and f"kept as {path.name}.orig-1" in m for m in said), said    # and when kept
    assert json.loads(path.with_name(f"{path.name}.orig-1").read_text()) == edited
    assert json.loads(path.read_text())["config"] == spec.to_dict()
    assert rec["versions"]["machine"].endswith("torch threads 1"), rec["versions"]["machine"]
