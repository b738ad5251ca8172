"""Issue 12, data side: loads verify what they load, destinations and resources are checked
before any work, temporary files are recognisable and orphans are cleaned (datasets, Zenodo)."""
from __future__ import annotations

import os
import pickle
import shutil
import threading
import time

import numpy as np
import pytest

from backdrop_repro import paths
from backdrop_repro.data import datasets, zenodo
from backdrop_repro.data import files as dataset_files
from backdrop_repro.data.datasets import SMOKE, CacheError, ResourceError

A = SMOKE.replace(per_class=1)
B = SMOKE.replace(per_class=1, seed=SMOKE.seed + 1)


@pytest.fixture(scope="module")
def pixels():
    return {r: datasets.generate(r, progress=False)[0] for r in (A, B)}


def _no_generate(*args, **kwargs):
    pytest.fail("generated data before refusing")


# ------------------------------------------------------------------ loads verify what they load
@pytest.mark.filterwarnings("ignore:regenerating")
@pytest.mark.parametrize("mmap", [True, False])
def test_replace_between_hash_and_load_never_hands_back_other_pixels(tmp_path, monkeypatch, pixels, mmap):
    """A writer replacing images.npy right after its hash was checked (the race of issue 12):
    the load must return the bytes that were hashed, i.e. A's pixels, never B's."""
    a = datasets.build_dataset(A, directory=tmp_path / "a", progress=False).path
    b = datasets.build_dataset(B, directory=tmp_path / "b", progress=False).path
    original = dataset_files._sha256
    swapped = []

    def racing_sha256(f):
        digest = original(f)
        name = f if isinstance(f, (str, os.PathLike)) else f.name
        if os.path.samefile(name, a / "images.npy") and not swapped:
            shutil.copy(b / "images.npy", a / "other.npy")
            os.replace(a / "other.npy", a / "images.npy")      # the concurrent writer lands here
            swapped.append(True)
        return digest

    monkeypatch.setattr(dataset_files, "_sha256", racing_sha256)
    ds = datasets.read_dataset(a, mmap=mmap)
    assert swapped
    assert np.array_equal(ds.images, pixels[A]) and not np.array_equal(ds.images, pixels[B])


@pytest.mark.filterwarnings("ignore:regenerating")
def test_concurrent_builds_of_different_recipes_into_one_folder(tmp_path, monkeypatch, pixels):
    """Two threads build A and B into the same cache folder (recipe_key forced equal), slightly
    staggered, six times: each caller gets its own recipe's pixels or nothing, never the other's."""
    monkeypatch.setattr(datasets, "recipe_key", lambda recipe: "same-folder")
    for round_ in range(6):
        results, errors = {}, []
        barrier = threading.Barrier(2)

        def build(recipe, delay):
            try:
                barrier.wait()
                time.sleep(delay)
                results[recipe] = datasets.build_dataset(recipe, cache_dir=tmp_path, progress=False)
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=build, args=(A, 0.0)),
                   threading.Thread(target=build, args=(B, 0.002 * round_))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for recipe, ds in results.items():
            assert ds.recipe == recipe
            assert np.array_equal(np.asarray(ds.images), pixels[recipe]), (round_, recipe.seed)


def test_unpickled_dataset_refuses_a_replaced_file(tmp_path, pixels):
    """DataLoader workers re-open images.npy: if it now holds another dataset, refuse."""
    folder = tmp_path / "ds"
    ds = datasets.build_dataset(A, directory=folder, progress=False)
    clone = pickle.loads(pickle.dumps(ds))                     # unchanged file: fine
    assert np.array_equal(clone.images, pixels[A])
    datasets.write_dataset(folder, pixels[B], np.arange(4), {"source": "test"})
    assert np.array_equal(ds.images, pixels[A])                # the open map keeps its file
    with pytest.raises(CacheError, match="images.npy: sha256"):
        pickle.loads(pickle.dumps(ds))


# ------------------------------------------------------------------ destinations, before any work
def test_out_pointing_at_a_file_is_refused_before_generating(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "generate", _no_generate)
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match=f"{target}.*not a folder"):
        datasets.build_dataset(A, directory=target, progress=False)
    with pytest.raises(NotADirectoryError, match=f"{target} exists and is not a folder"):
        datasets.build_dataset(A, directory=target / "sub", progress=False)
    assert target.read_text() == "x"


def test_read_only_folder_is_refused_before_generating(tmp_path, monkeypatch):
    """The probe write fails (as in a read-only folder; root ignores permissions, so the probe's
    failure is simulated here; the next test uses real permissions where they apply)."""
    monkeypatch.setattr(datasets, "generate", _no_generate)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError, match=f"{tmp_path / 'ro'} is not writable"):
        datasets.build_dataset(A, directory=tmp_path / "ro", progress=False)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_real_read_only_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "generate", _no_generate)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            datasets.build_dataset(A, directory=ro, progress=False)
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "3", "null", "{not json"])
def test_meta_json_that_is_not_an_object(tmp_path, monkeypatch, content):
    folder = tmp_path / "ds"
    datasets.build_dataset(A, directory=folder, progress=False)
    (folder / "meta.json").write_text(content)
    with pytest.raises(CacheError, match=f"{folder / 'meta.json'}: (expected a JSON object|not valid JSON)"):
        datasets.read_dataset(folder)
    with monkeypatch.context() as m:                # a folder the caller chose: refused, kept
        m.setattr(datasets, "generate", _no_generate)
        with pytest.raises(ValueError, match="is not a backdrop-repro dataset's"):
            datasets.build_dataset(A, directory=folder, progress=False)
    assert (folder / "meta.json").read_text() == content
    # in the keyed cache it is a damaged copy: regenerated with a warning
    keyed = tmp_path / "cache" / datasets.recipe_key(A)
    datasets.build_dataset(A, cache_dir=tmp_path / "cache", progress=False)
    (keyed / "meta.json").write_text(content)
    with pytest.warns(UserWarning, match="meta.json"):
        ds = datasets.build_dataset(A, cache_dir=tmp_path / "cache", progress=False)
    assert ds.recipe == A


# ------------------------------------------------------------------ resources, before any work
def test_dataset_larger_than_memory_is_refused_up_front(monkeypatch):
    huge = SMOKE.replace(per_class=10 ** 9)              # 4e9 × 64² × 4 B = 65 TB
    assert datasets.estimate_bytes(huge) == 4 * 10 ** 9 * 64 * 64 * 4
    with pytest.raises(ResourceError, match=r"4000000000 images of 64×64 float32 .* need 59.6 TB of memory"):
        datasets.generate(huge, progress=False)
    monkeypatch.setattr(datasets, "generate", _no_generate)
    with pytest.raises(ResourceError, match="lower --per-class"):
        datasets.build_dataset(huge, progress=False)


def test_resource_rule_uses_memory_fraction_and_free_disk(tmp_path, monkeypatch):
    need = datasets.estimate_bytes(A)                    # 4 × 64² × 4 = 65536 B
    assert need == 65536
    monkeypatch.setattr(datasets, "available_memory", lambda: int(need / datasets.MEMORY_FRACTION) + 1)
    assert datasets.check_resources(A) == need           # fits just below the limit
    monkeypatch.setattr(datasets, "available_memory", lambda: int(need / datasets.MEMORY_FRACTION) - 1)
    with pytest.raises(ResourceError, match="of memory"):
        datasets.check_resources(A)
    monkeypatch.setattr(datasets, "available_memory", lambda: None)   # unknown: no memory check
    monkeypatch.setattr(datasets, "free_disk", lambda path: need - 1)
    monkeypatch.setattr(datasets, "generate", _no_generate)
    with pytest.raises(ResourceError, match=f"of disk, but {tmp_path / 'ds'} has only"):
        datasets.build_dataset(A, directory=tmp_path / "ds", progress=False)


def test_available_memory_and_free_disk_are_plausible(tmp_path):
    mem = paths.available_memory()
    assert mem is None or 2 ** 20 < mem < 2 ** 60
    assert 0 <= paths.free_disk(tmp_path / "not" / "yet") < 2 ** 70


# ------------------------------------------------------------------ temporary files and orphans
def test_atomic_path_uses_the_recognisable_prefix(tmp_path):
    with paths.atomic_path(tmp_path / "x.npy") as tmp:
        assert tmp.name.startswith(paths.TMP_PREFIX + "x.npy.") and tmp.parent == tmp_path
        np.save(tmp, np.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_orphans_in_a_dataset_folder_are_removed_on_the_next_build(tmp_path):
    folder = datasets.build_dataset(A, directory=tmp_path / "ds", progress=False).path
    orphan = folder / f"{paths.TMP_PREFIX}images.npy.k1ll3d.npy"
    with open(orphan, "wb") as f:                         # a big sparse file, as a killed np.save leaves
        f.truncate(1 << 30)
    keep = folder / "notes.txt"
    keep.write_text("user file")
    ds = datasets.build_dataset(A, directory=folder, progress=False)      # reuses the cache
    assert not orphan.exists() and keep.exists() and ds.recipe == A
    orphan.write_bytes(b"partial")
    datasets.write_dataset(folder, np.zeros((1, 8, 8)), np.zeros(1), {})
    assert not orphan.exists()


def test_clean_orphans_rules(tmp_path):
    old, fresh, other = (tmp_path / f"{paths.TMP_PREFIX}old", tmp_path / f"{paths.TMP_PREFIX}fresh",
                         tmp_path / "tmp-user-file")
    for p in (old, fresh, other):
        p.write_text("x")
    past = time.time() - paths.ORPHAN_AGE_S - 60
    os.utime(old, (past, past))
    assert paths.clean_orphans(tmp_path) == [old]          # no lock: only old ones
    assert fresh.exists() and other.exists()
    with pytest.raises(RuntimeError, match="needs folder_lock"):
        paths.clean_orphans(tmp_path, None)
    with paths.folder_lock(tmp_path):
        assert paths.holds_lock(tmp_path)
        with paths.folder_lock(tmp_path):                  # re-entrant in one thread
            pass
        assert paths.clean_orphans(tmp_path, None) == [fresh]
    assert other.exists() and not paths.holds_lock(tmp_path)


def test_folder_lock_excludes_other_threads(tmp_path):
    order = []

    def other():
        with paths.folder_lock(tmp_path):
            order.append("other")

    with paths.folder_lock(tmp_path):
        t = threading.Thread(target=other)
        t.start()
        t.join(0.3)
        order.append("holder")
    t.join(5)
    assert order == ["holder", "other"]


def test_zenodo_download_removes_partial_downloads(tmp_path, monkeypatch):
    """Partial pooch downloads (tmpXXXXXXXX) and our extraction temp files in the Zenodo cache
    are removed when the next download starts (it holds the cache lock)."""
    import io
    import zipfile

    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    root = zenodo.cache_dir()
    partial = root / "tmpab12cd_3"
    with open(partial, "wb") as f:
        f.truncate(1 << 28)
    extract = root / "samples-0123456789ab"
    extract.mkdir()
    half = extract / f"{paths.TMP_PREFIX}final_size-16_corr-10_v1.npy.x.npy"
    half.write_bytes(b"half")
    mine = root / "tmp-notes"                               # not a tempfile name: kept
    mine.write_text("x")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        arr = io.BytesIO()
        np.save(arr, np.ones((4, 4)))
        zf.writestr("final_size-16_corr-10_v1.npy", arr.getvalue())
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "samples.zip").write_bytes(buf.getvalue())
    import hashlib

    hashes = {"samples.zip": "md5:" + hashlib.md5(buf.getvalue()).hexdigest()}
    monkeypatch.setattr("pooch.HTTPDownloader", lambda **kw: (
        lambda url, output, pooch_obj: shutil.copy(tmp_path / "src" / "samples.zip", output)))
    xs = zenodo.fetch_samples(10, progress=False, hashes=hashes, url="http://127.0.0.1:9/")
    assert np.array_equal(xs[0], np.ones((4, 4)))
    assert not partial.exists() and not half.exists() and mine.exists()
