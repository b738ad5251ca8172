"""The main job's guards and the README's generated results block."""
import os
from pathlib import Path

import pytest

from backdrop_repro import reproduce
from backdrop_repro.paths import check_writable

ROOT = Path(__file__).resolve().parent.parent


def test_reproduce_checks_destinations_before_any_work(tmp_path, monkeypatch):
    blocker = tmp_path / "out"
    blocker.mkdir()
    (blocker / "results").write_text("a file where a folder should be")
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(blocker))
    from backdrop_repro.experiments.gp_sweep import run as gp_run

    def boom(*a, **k):
        raise AssertionError("the sweep must not start")
    monkeypatch.setattr(gp_run, "run_sweep", boom)
    with pytest.raises(OSError, match="results"):
        reproduce.reproduce("smoke")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_check_writable_names_the_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=str(ro)):
            check_writable(ro)
    finally:
        ro.chmod(0o700)


def test_check_writable_leaves_no_file(tmp_path):
    check_writable(tmp_path / "new")
    assert list((tmp_path / "new").iterdir()) == []


def test_check_writable_survives_a_concurrent_clean_up(tmp_path, monkeypatch):
    """A build holding the folder's lock may remove every temporary file (clean_orphans(d, None)),
    the probe of a writer still checking the folder included: that writer must not fail."""
    from backdrop_repro import paths
    real = paths.tempfile.mkstemp

    def mkstemp_then_cleaned(**kwargs):
        fd, name = real(**kwargs)
        with paths.folder_lock(kwargs["dir"]):
            removed = paths.clean_orphans(kwargs["dir"], None)
        assert [p.name for p in removed] == [os.path.basename(name)]
        return fd, name

    monkeypatch.setattr(paths.tempfile, "mkstemp", mkstemp_then_cleaned)
    assert check_writable(tmp_path / "d") == tmp_path / "d"
    assert list((tmp_path / "d").iterdir()) == []


# ------------------------------------------------------------------ issue 39: nothing to compare is said before training
def test_reproduce_smoke_says_nothing_can_be_compared_before_training(monkeypatch, capsys, own_output_dir):
    """``reproduce --profile smoke`` trained 18 runs and 4 notebooks (61 s) before "nothing compared", advising
    a flag that cannot help."""
    from backdrop_repro import cli, notebooks
    from backdrop_repro.experiments.gp_sweep import run as gp_run
    from helpers import one_line_error

    def boom(*a, **k):
        raise AssertionError("nothing may be trained or executed")
    monkeypatch.setattr(gp_run, "run_sweep", boom)
    monkeypatch.setattr(notebooks, "run_notebooks", boom)
    assert cli.main(["reproduce", "--profile", "smoke"]) == 2
    line = one_line_error(capsys, "reproduce")
    assert "--reference replication: none of the" in line and "planned runs of profile smoke" in line
    assert "compare nothing" in line and "--profile default" in line          # which profile it can check
    assert "REUSE" not in line and "without" not in line                      # not the advice that cannot help


def test_reproduce_default_against_replication_passes_the_early_check():
    from backdrop_repro.experiments.gp_sweep.cli import check_comparable

    check_comparable("default", "replication", flag="--reference")           # the committed keys are shared
