"""The record reader (``backdrop_repro.records``), the one used wherever a record is read; a bad record
is set aside only in the run's own working folder; a diverged run is a status. Every test here failed
before its fix (the checks it makes did not exist, or the reference record was renamed)."""
import json
import shutil
import warnings
from pathlib import Path

import pytest

from backdrop_repro import paths, records
from backdrop_repro.experiments.gp_sweep import plan
from backdrop_repro.experiments.learnability import plan as lplan

ROOT = Path(__file__).resolve().parent.parent


def _committed_gp_record() -> Path:
    return sorted((ROOT / "results" / "replication" / "gp_runs").glob("*.json"))[0]


def _learn_record() -> dict:
    return json.loads(sorted((ROOT / "results" / "learnability" / "learnability").glob("*.json"))[1].read_text())


def test_every_committed_record_passes_the_reader():
    found = [records.inspect(f) for f in sorted((ROOT / "results").glob("*/*/*.json")) if f.parent.name != "notebooks"]
    assert len(found) > 800
    assert {r.status for r in found} == {"ok"}, [r.reason for r in found if r.status != "ok"][:3]


@pytest.mark.parametrize("change, words", [
    (lambda r: r["final"].update(test_accuracy=float("nan")), "non-finite number NaN"),
    (lambda r: r["final"].update(test_accuracy=5.0), "test_accuracy must be a finite number in [0, 1]"),
    (lambda r: r["final"].update(val_accuracy=-0.1), "val_accuracy must be a finite number in [0, 1]"),
    (lambda r: r["final"].update(train_loss=float("inf")), "non-finite number Infinity"),
    (lambda r: r.pop("history"), '"history" is missing'),
    (lambda r: r.pop("predictions"), 'no test "predictions"'),
    (lambda r: r["predictions"].update(test="x" + r["predictions"]["test"][1:]), "is not a class digit"),
    (lambda r: r["predictions"].update(test=r["predictions"]["test"][:-1]), "test predictions for"),
    (lambda r: r["final"].update(test_accuracy=round(1 - r["final"]["test_accuracy"], 4)), "disagrees with its"),
    (lambda r: r.update(key="000000000000"), "is not its file name"),
    (lambda r: r["final"].update(test_scale_accuracy=[1.5]), "test_scale_accuracy must be"),
])
def test_a_bad_learnability_record_is_named_not_summarised(tmp_path, change, words):
    rec = _learn_record()
    change(rec)
    path = tmp_path / f"{_learn_record()['key']}.json"
    path.write_text(json.dumps(rec))                       # json.dumps writes NaN/Infinity literals
    r = records.inspect(path)
    assert r.status == "malformed" and words in r.reason and str(path) in r.reason


def test_a_diverged_run_is_a_status_not_an_error(tmp_path):
    rec = _learn_record()
    rec["final"] = {"failed": "non-finite training loss at epoch 3", "train_loss": "nan"}
    path = tmp_path / f"{rec['key']}.json"
    path.write_text(json.dumps(rec))
    r = records.inspect(path)
    assert r.status == "failed" and r.record["final"]["failed"].startswith("non-finite")
    assert records.read_record(path) == rec


def test_a_truncated_reference_record_is_never_renamed(tmp_path, monkeypatch):
    """The reproduction check reads the committed reference without a spec: named, left in place."""
    ref = tmp_path / "results" / "replication" / "gp_runs"
    ref.mkdir(parents=True)
    src = _committed_gp_record()
    bad = ref / src.name
    bad.write_text(src.read_text()[:200])
    with pytest.warns(RuntimeWarning, match="left in place"):
        assert plan.read_record(bad) is None
    assert bad.exists() and not bad.with_name(bad.name + ".corrupt").exists()


def test_find_record_never_moves_another_profiles_record(monkeypatch):
    spec = plan.plan_grid("smoke", ["none"], [0])[0]
    other = paths.output_root() / "results" / "default" / "gp_runs" / f"{spec.key}.json"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text('{"key": "trunc')
    try:
        with pytest.warns(RuntimeWarning, match="left in place"):
            assert plan.find_record(spec) is None
        assert other.exists() and not other.with_name(other.name + ".corrupt").exists()
    finally:
        other.unlink()


def test_a_bad_record_in_the_runs_own_folder_is_still_set_aside():
    spec = plan.plan_grid("smoke", ["none"], [0])[0]
    own = plan.runs_dir("smoke") / f"{spec.key}.json"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text(json.dumps({"key": spec.key, "config": spec.to_dict(), "history": [],
                               "final": {"test_accuracy": float("nan")}}))
    try:
        with pytest.warns(RuntimeWarning, match="moved to"):
            assert plan.read_record(own, spec) is None
        assert not own.exists() and own.with_name(own.name + ".corrupt").exists()
    finally:
        own.with_name(own.name + ".corrupt").unlink(missing_ok=True)


def test_a_committed_file_is_never_set_aside_even_in_its_own_folder(monkeypatch):
    """With the output root at the checkout, a git-tracked record is not renamed (it is a reference)."""
    src = _committed_gp_record()
    assert records._tracked(src)
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))

    class Spec:                          # the record's own profile: only "committed" stops the rename
        profile = type("P", (), {"name": "replication"})()

    assert not records.may_set_aside(src, Spec())


def test_learnability_summary_skips_a_record_with_nan_accuracy():
    """A learnability record with test accuracy 5.0 is not summarised (it was: ``2.83 [-24.70, 30.36]``)."""
    spec = next(s for s in lplan.plan_map("smoke") if s.model == "cnn") if _has_learn("smoke") else None
    if spec is None:
        pytest.skip("the smoke profile has no learnability section")
    path = lplan.records_dir("smoke") / f"{spec.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": spec.key, "config": spec.to_dict(), "history": [], "predictions": {"test": ""},
                                "final": {"test_accuracy": 5.0}}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert lplan.read_records([spec]) == []
    finally:
        for p in (path, path.with_name(path.name + ".corrupt")):
            p.unlink(missing_ok=True)


def _has_learn(name: str) -> bool:
    from backdrop_repro import profiles

    return profiles.get(name).learnability is not None


# ------------------------------------------------------------------ issue 39: the figures a record states of its predictions
def _gp_record() -> dict:
    return json.loads(_committed_gp_record().read_text())


def _flip(x: float) -> float:
    return round(x - 0.1 if x >= 0.5 else x + 0.1, 4)


@pytest.mark.parametrize("make, change, words", [
    (_learn_record, lambda r: r["final"].update(val_accuracy=_flip(r["final"]["val_accuracy"])),
     "val_accuracy"),
    (_learn_record, lambda r: r["final"].update(val_scale_accuracy=[_flip(r["final"]["val_scale_accuracy"][0])]),
     "val_scale_accuracy[0]"),
    (_gp_record, lambda r: r["final"]["test_scale_accuracy"].__setitem__(1, _flip(r["final"]["test_scale_accuracy"][1])),
     "test_scale_accuracy[1]"),
    (_gp_record, lambda r: r["final"].update(val_scale_accuracy=r["final"]["val_scale_accuracy"][:1]),
     "val_scale_accuracy has 1 scales, the data have 2"),
    (_gp_record, lambda r: r["final"]["val_confusion"][0].__setitem__(0, r["final"]["val_confusion"][0][0] + 1),
     "val_confusion disagrees"),
    (_gp_record, lambda r: r["predictions"].update(val=r["predictions"]["val"][:-1]), "val predictions for"),
])
def test_per_scale_and_validation_figures_that_contradict_the_predictions_are_refused(tmp_path, make, change, words):
    """Only test accuracy was checked against the predictions: a per-scale or validation accuracy was tabled as given."""
    rec = make()
    change(rec)
    path = tmp_path / f"{rec['key']}.json"
    path.write_text(json.dumps(rec))
    r = records.inspect(path)
    assert r.status == "malformed" and words in r.reason and str(path) in r.reason, r.reason
    assert "disagrees" in r.reason or "predictions for" in r.reason or "scales" in r.reason


# ------------------------------------------------------------------ issue 39: an edited record is named, then kept
def _committed_spec():
    """A grid run of ``replication`` whose record is committed."""
    ref = ROOT / "results" / "replication" / "gp_runs"
    return next(s for s in plan.plan_grid("replication") if (ref / f"{s.key}.json").exists())


def _edited(spec) -> Path:
    """``spec``'s committed record with its learning rate edited under its old key, in the working folder."""
    rec = json.loads((ROOT / "results" / "replication" / "gp_runs" / f"{spec.key}.json").read_text())
    rec["config"]["train"]["lr"] *= 10
    path = spec.record_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def test_an_edited_record_is_named_when_read_never_silently_skipped():
    spec = _committed_spec()
    path = _edited(spec)
    try:
        with pytest.warns(RuntimeWarning, match=rf"{path}.*another run.*edited under its old key.*\.orig-<n>"):
            assert plan.read_record(path, spec) is None
        assert path.exists()                                        # reading never moves it
    finally:
        path.unlink(missing_ok=True)


def test_an_edited_record_is_kept_as_orig_before_a_run_writes_its_own():
    spec = _committed_spec()
    path = _edited(spec)
    edited = path.read_text()
    (path.parent / f"{path.name}.orig-1").write_text("an older kept copy")
    try:
        with pytest.warns(RuntimeWarning, match=rf"{path}.*kept as {path.name}\.orig-2"):
            assert records.keep_unusable(path, spec) == path.with_name(f"{path.name}.orig-2")
        assert not path.exists() and path.with_name(f"{path.name}.orig-2").read_text() == edited
        assert path.with_name(f"{path.name}.orig-1").read_text() == "an older kept copy"
        assert records.keep_unusable(path, spec) is None             # nothing there: nothing to keep
    finally:
        for f in path.parent.glob(f"{path.name}*"):
            f.unlink()


def test_adopting_a_record_over_an_edited_one_keeps_the_edited_one(monkeypatch):
    spec = _committed_spec()
    path = _edited(spec)
    other = paths.output_root() / "results" / "scaled" / "gp_runs" / path.name      # another profile's good record
    other.parent.mkdir(parents=True, exist_ok=True)
    rec = json.loads((ROOT / "results" / "replication" / "gp_runs" / path.name).read_text())
    monkeypatch.setattr(records, "read_record", lambda p, s=None, set_aside_bad=None: rec if p == other else None)
    try:
        other.write_text("{}")
        with pytest.warns(RuntimeWarning, match="kept as"):
            assert records.adopt(spec, path, "gp_runs")["copied_from"] == "scaled"
        assert path.with_name(f"{path.name}.orig-1").exists()
    finally:
        for f in list(path.parent.glob(f"{path.name}*")) + [other]:
            f.unlink(missing_ok=True)
