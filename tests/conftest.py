"""Unit tests never touch the user's cache, figures/ or results/: both point at a temp dir."""
import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "backdrop-repro"
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(root / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(root / "out"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    yield


@pytest.fixture
def own_data_dir(tmp_path, monkeypatch):
    """A data folder of the test's own: the session's shared one holds other tests' cached datasets."""
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))


@pytest.fixture
def own_output_dir(tmp_path, monkeypatch):
    """An output folder of the test's own, for a test that asserts what a folder holds: the session's shared one
    holds what earlier tests wrote."""
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
