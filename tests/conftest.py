"""Unit tests never touch the user's cache, figures/ or results/: both point at a temp dir."""
import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "backdrop-repro"
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(root / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(root / "out"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    yield
