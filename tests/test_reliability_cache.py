"""Issue 30 item 6: caches and mirrors. Never write through a symbolic link out of the cache; the
sizes a zip declares checked against free space before extracting; a corrupted member one line; a
mirror's wrong content named with the variable that points at it; BACKDROP_REPRO_DATA a file or a
dangling link named. Every test here failed before its fix."""
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backdrop_repro import cli, paths
from backdrop_repro.data import datasets, zenodo

from test_zenodo import Server, _own_cache, serve_dataset, server, tiny_data  # noqa: F401 - the 127.0.0.1 mirror and
#                                                                            the own-cache fixture of test_zenodo


def test_a_cache_entry_linked_out_of_the_cache_is_never_written_through(tmp_path):
    mine = tmp_path / "my-work"
    mine.mkdir()
    (mine / "images.npy").write_bytes(b"the user's own images")
    entry = paths.data_dir() / "gp" / datasets.recipe_key(datasets.SMOKE)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.symlink_to(mine, target_is_directory=True)
    with pytest.raises(ValueError, match="outside the cache"):
        datasets.build_dataset(datasets.SMOKE, progress=False)
    assert (mine / "images.npy").read_bytes() == b"the user's own images"
    assert entry.is_symlink()


@pytest.mark.parametrize("kind", ["file", "dangling"])
def test_data_env_a_file_or_a_dangling_link_is_named(tmp_path, monkeypatch, capsys, kind):
    target = tmp_path / "cache"
    if kind == "file":
        target.write_text("x")
    else:
        target.symlink_to(tmp_path / "gone")
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(target))
    assert cli.main(["generate", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert f"BACKDROP_REPRO_DATA={target}" in err and ("is a file" if kind == "file" else "does not exist") in err
    assert "File exists" not in err


def test_a_mirror_serving_html_names_its_variable(server, monkeypatch):
    images, labels = tiny_data()
    hashes = serve_dataset(server, images, labels)
    server.files["dataset.zip"] = b"<html><body>Not the file you are looking for</body></html>"
    monkeypatch.setenv(zenodo.URL_ENV, server.url)
    with pytest.raises(ValueError, match=f"the mirror set by {zenodo.URL_ENV}={server.url}") as e:
        zenodo.fetch_paper_dataset(progress=False, hashes=hashes, recipe=None)
    assert "dataset.zip" in str(e.value) and hashes["dataset.zip"] in str(e.value)


def _zip_with(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return buf.getvalue()


def test_declared_member_sizes_are_checked_against_free_space(tmp_path, monkeypatch):
    z = tmp_path / "cache" / "big.zip"
    z.parent.mkdir()
    z.write_bytes(_zip_with("a.gp", b"\0" * 100_000))
    monkeypatch.setattr(zenodo, "free_disk", lambda p: 10_000)
    ex = zenodo.ExtractMembers(r"a\.gp$", z.parent / "out")
    with pytest.raises(OSError, match="as the zip declares"):
        ex(str(z), "download")
    assert not (z.parent / "out" / "a.gp").exists()


def test_a_corrupted_member_is_one_line(tmp_path):
    data = bytearray(_zip_with("a.gp", bytes(range(256)) * 400))
    i = data.index(b"a.gp") + 4                   # the start of the member's deflated stream
    data[i:i + 20] = b"\xff" * 20                  # an invalid block: zlib.error, not a CRC mismatch
    z = tmp_path / "bad.zip"
    z.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="member a.gp is damaged"):
        zenodo.ExtractMembers(r"a\.gp$", tmp_path / "out")(str(z), "download")
