"""Every committed run record keeps its key: the current code plans a spec with the same key and config."""
from pathlib import Path

import pytest

from backdrop_repro import profiles
from backdrop_repro.seeds import content_key

ROOT = Path(__file__).resolve().parent.parent


def _records(folder: Path, at_least: int = 1):
    """``(file, record)`` for every committed record in ``folder`` (at least ``at_least`` of them), each checked
    to be named by its key, the content key of its config."""
    import json

    files = sorted(folder.glob("*.json"))
    assert len(files) >= at_least, folder
    for f in files:
        rec = json.loads(f.read_text())
        assert rec["key"] == f.stem == content_key(rec["config"], 12)
        yield f, rec


@pytest.mark.parametrize("profile", ["default", "replication", "scaled", "paper-cpu"])
def test_gp_sweep_records_keep_their_keys(profile, monkeypatch):
    from backdrop_repro.experiments.gp_sweep.plan import plan_runs

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))
    planned = {s.key: s for s in plan_runs(profile)}
    for f, rec in _records(ROOT / "results" / profile / "gp_runs"):
        assert f.stem in planned, f"{f} is no longer planned by profile {profile!r}"
        assert planned[f.stem].to_dict() == rec["config"]


def test_learnability_records_keep_their_keys(monkeypatch):
    from backdrop_repro.experiments.learnability.plan import plan_map, plan_part

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))
    planned = {s.key: s for s in plan_map("learnability") + plan_part("learnability", "edge")
               + plan_part("learnability", "twoscale")}
    for f, rec in _records(ROOT / "results" / "learnability" / "learnability", at_least=501):
        assert f.stem in planned and planned[f.stem].to_dict() == rec["config"]


def test_the_fast_formulation_is_part_of_the_key_only_where_a_profile_selects_it():
    from backdrop_repro.experiments.gp_sweep.plan import plan_grid

    cpu = plan_grid("paper-cpu")
    assert {s.to_dict()["model"].get("impl") for s in cpu} == {"blocked"}
    assert {s.to_dict()["model"].get("stem") for s in cpu} == {"im2col"}
    assert all("impl" not in s.to_dict()["model"] for s in plan_grid("paper"))
    assert len(cpu) == 8 and {s.label for s in cpu} == {"none", "demo: fine 0.3 + coarse 0.95"}
    assert {s.train_config().epochs for s in cpu} == {80}
    assert {s.train_config().eval_batch_size for s in cpu} == {4}            # 64 images at 1024², width 64: 16 GiB
    d = profiles.get("paper-cpu").data
    assert d.size == 1024 and d.scales == ((9.5, 10.0), (80.0, 140.0)) and d.per_class == 25 and d.per_seed_data


def test_confirm_records_keep_their_keys(monkeypatch):
    """The confirmatory study's records keep their keys through the run-core refactor (``experiments/core.py``)."""
    from backdrop_repro.experiments.confirm.plan import plan_runs

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))
    planned = {s.key: s for s in plan_runs("confirm")}
    for f, rec in _records(ROOT / "results" / "confirm" / "runs", at_least=301):
        assert f.stem in planned and planned[f.stem].to_dict() == rec["config"]
        assert rec["cell"]["scale"] == planned[f.stem].scale and rec["task"] == planned[f.stem].task


def test_reference_records_keep_their_keys(monkeypatch):
    from backdrop_repro.experiments.gp_sweep.plan import ReferenceSpec

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))
    for profile in ("default", "replication", "scaled", "paper-cpu"):
        p = profiles.get(profile)
        specs = {s.key: s for s in (ReferenceSpec(p), ReferenceSpec(p, p.sweep.robustness_method))}
        for f, rec in _records(ROOT / "results" / profile / "gp_reference"):
            assert f.stem in specs and specs[f.stem].to_dict() == rec["config"]
