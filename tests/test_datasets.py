"""The datasets (``data/datasets.py``, with ``data/recipes.py`` and ``data/files.py``, which it re-exports): class
recipes, generation of the crosses, the verified on-disk format and its cache. Loads hand back the bytes they
hashed; destinations, class labels, memory and disk are checked before any work; orphaned temporary files are
removed; a cache entry linked out of the cache is never written through; ``generate --out``."""
import json
import os
import pickle
import shutil
import threading
import time
import warnings

import numpy as np
import pytest
import torch

from backdrop_repro import cli, gp, paths, profiles
from backdrop_repro.data import datasets
from backdrop_repro.data import files as dataset_files
from backdrop_repro.paths import data_dir
from backdrop_repro.data.datasets import PAPER, SMOKE, CacheError, Recipe, ResourceError
from backdrop_repro.data.files import GPDataset, write_dataset
from helpers import one_line_error

#: the paper's lengths on 256² images (the retired "quick" profile's data)
PAPER_256 = Recipe(size=256, scales=((9.5, 10.0), (80.0, 140.0)), power=(0.75, 1.25), per_class=25,
                   seed=0, method="matched")


def test_paper_recipe_classes_names_and_order():
    assert PAPER.size == 1024 and PAPER.per_class == 25 and len(PAPER) == 100
    assert PAPER.scales == ((9.5, 10.0), (80.0, 140.0)) and PAPER.power == (0.75, 1.25)
    assert PAPER.classes == [(9.5, 80.0), (10.0, 80.0), (9.5, 140.0), (10.0, 140.0)]
    assert PAPER.class_names == {0: "9.5-80", 1: "10-80", 2: "9.5-140", 3: "10-140"}
    quick = datasets.split_recipe(profiles.get("quick"), "train")
    assert quick.scales == PAPER.scales and quick.power == PAPER.power and quick.size == 256
    assert PAPER.replace(size=512).size == 512 and PAPER.size == 1024
    with pytest.raises(Exception):
        PAPER.size = 3  # frozen


def test_lists_become_tuples_and_round_trip_through_dict():
    r = Recipe(size=64, scales=[[2, 3], [8]], power=[1, 2], per_class=1)
    assert r.scales == ((2.0, 3.0), (8.0,)) and r.power == (1.0, 2.0)
    assert Recipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert r.classes == [(2.0, 8.0), (3.0, 8.0)]


@pytest.mark.parametrize("changes, field", [
    (dict(scales=((9.5, -10.0), (80.0, 140.0))), "Recipe.scales"),
    (dict(scales=((0.0, 10.0), (80.0, 140.0))), "Recipe.scales"),
    (dict(scales=()), "Recipe.scales"),
    (dict(scales=((10.0, 10.0), (80.0, 140.0))), "Recipe.scales"),
    (dict(power=(0.75,)), "Recipe.power"),
    (dict(power=(0.75, 1.25, 1.0)), "Recipe.power"),
    (dict(power=(0.75, -1.0)), "Recipe.power"),
    (dict(size=128), "Recipe.size"),            # 140 px does not fit in 128 px
    (dict(size=4), "Recipe.size"),
    (dict(per_class=0), "Recipe.per_class"),
    (dict(seed=-1), "Recipe.seed"),
    (dict(method="cubic"), "Recipe.method"),
    (dict(size=1020, method="faithful"), "Recipe.size"),   # faithful large scales: multiple of 8
])
def test_bad_recipes_raise_value_error_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        PAPER.replace(**changes)


def test_size_rule_is_1_5_times_the_longest_length():
    assert PAPER_256.replace(size=210).size == 210
    with pytest.raises(ValueError, match=r"Recipe\.size must be >= 1.5 .* >= 210, got 209"):
        PAPER_256.replace(size=209)


def test_base_field_plan_uses_every_base_field_once():
    plan = datasets.base_field_plan(PAPER)
    assert len(plan) == 100
    keys = [key for row in plan for key in row]
    assert len(keys) == len(set(keys)) == 200
    # per length: 50 fields for each (two classes use it, 25 samples each), numbered 0..49
    for s in range(2):
        for a in range(2):
            uses = sorted(u for (ss, aa, u) in keys if (ss, aa) == (s, a))
            assert uses == list(range(50))
    # sample i is class i % 4 and uses that class's lengths
    for i, row in enumerate(plan):
        lengths = tuple(PAPER.scales[s][a] for s, a, _ in row)
        assert lengths == PAPER.classes[i % 4]


def test_generated_crosses_have_the_right_labels_weights_and_distinct_fields():
    recipe = SMOKE.replace(per_class=3)
    images, labels = datasets.generate(recipe, progress=False)
    n = recipe.size
    assert images.shape == (12, n, n) and images.dtype == np.float32
    assert labels.tolist() == [0, 1, 2, 3] * 3
    bases = {}
    for i, row in enumerate(datasets.base_field_plan(recipe)):
        parts = []
        for s, a, u in row:
            seed = np.random.SeedSequence(recipe.seed, spawn_key=(s, a))
            field = gp.sample_field(n, recipe.scales[s][a], 1, seed, method=recipe.method,
                                    dtype=np.float64, start=u)[0]
            bases[(s, a, u)] = field
            parts.append(recipe.power[s] * field)
        assert np.allclose(images[i], sum(parts), atol=1e-5)
    # no base field repeats: all pairs differ; small-scale pairs are nearly uncorrelated (64² holds
    # few 8-14 px blobs, so independent large-scale fields can correlate by chance up to ~0.6)
    fields = np.stack(list(bases.values())).reshape(len(bases), -1)
    corr = np.corrcoef(fields)
    np.fill_diagonal(corr, 0)
    assert np.abs(corr).max() < 0.9
    small = np.array([key[0] == 0 for key in bases])
    assert np.abs(corr[np.ix_(small, small)]).max() < 0.3
    assert np.allclose(fields.std(axis=1), 1, atol=1e-6)
    # total variance ≈ Σ power² = 2.125 (base fields independent)
    assert images.var(axis=(1, 2)).mean() == pytest.approx(2.125, rel=0.25)


def test_small_scale_differences_show_in_the_class_spectra():
    """The class spectra differ where the lengths differ: 9.5 vs 10 at k ≈ 0.05-0.08."""
    s = {c: datasets.class_spectrum(PAPER_256, c) for c in range(4)}
    for c in range(4):
        assert s[c].mean() == pytest.approx(0.75 ** 2 + 1.25 ** 2)
    n = PAPER_256.size
    kk = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    ring = (kk > 0.05) & (kk < 0.08)
    assert s[0][ring].mean() > 1.2 * s[1][ring].mean()       # shorter length: more high-k power
    big = {c: datasets.class_spectrum(PAPER, c) for c in (0, 2)}
    kk = np.hypot(np.fft.fftfreq(1024)[:, None], np.fft.fftfreq(1024)[None, :])
    low = (kk > 0) & (kk < 0.002)
    assert big[2][low].mean() > 1.5 * big[0][low].mean()     # 140 vs 80: more low-k power
    fft = PAPER_256.replace(size=280, method="fft")        # fft needs size >= 2 × 140 px
    expected = 0.75 ** 2 * gp.se_spectrum(280, 9.5) + 1.25 ** 2 * gp.se_spectrum(280, 80.0)
    assert np.allclose(datasets.class_spectrum(fft, 0), expected)
    with pytest.raises(ValueError, match="label must be"):
        datasets.class_spectrum(PAPER_256, 4)


def test_write_read_round_trip_and_torch_dataset(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((5, 16, 16)).astype(np.float32)
    labels = np.array([0, 1, 0, 1, 1])
    datasets.write_dataset(tmp_path / "ds", images, labels, {"class_names": {0: "a", 1: "b"}, "source": "test"})
    ds = datasets.read_dataset(tmp_path / "ds")
    assert isinstance(ds.images, np.memmap)
    assert np.array_equal(ds.images, images) and ds.labels.dtype == np.int64
    assert ds.class_names == {0: "a", 1: "b"} and ds.meta["source"] == "test"
    assert set(ds.meta["sha256"]) == {"images.npy", "labels.npy"} and ds.meta["versions"]["numpy"]
    x, y = ds[3]
    assert isinstance(x, torch.Tensor) and x.shape == (1, 16, 16) and x.dtype == torch.float32 and y == 1
    assert torch.equal(x[0], torch.from_numpy(images[3]))
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    xb, yb = next(iter(loader))
    assert xb.shape == (2, 1, 16, 16) and yb.tolist() == [0, 1]
    assert not list(tmp_path.glob("ds/.*"))        # no temp files left behind
    import pickle

    clone = pickle.loads(pickle.dumps(ds))          # what DataLoader workers receive
    assert isinstance(clone.images, np.memmap) and len(pickle.dumps(ds)) < images.nbytes
    assert torch.equal(clone[3][0], x)
    with pytest.raises(ValueError, match="labels must have shape"):
        datasets.write_dataset(tmp_path / "bad", images, labels[:3], {})


def test_build_reuses_a_verified_cache(tmp_path, monkeypatch):
    ds = datasets.build_dataset(SMOKE, cache_dir=tmp_path, progress=False)
    assert ds.path == tmp_path / datasets.recipe_key(SMOKE)
    assert ds.recipe == SMOKE and len(ds) == len(SMOKE) and ds.class_names == SMOKE.class_names
    with monkeypatch.context() as m:
        m.setattr(datasets, "generate", lambda *a, **k: pytest.fail("cache not reused"))
        again = datasets.build_dataset(SMOKE, cache_dir=tmp_path, progress=False)
    assert np.array_equal(again.images, ds.images)
    # the default location is the data dir (tests/conftest.py points it at a temp dir)
    default = datasets.build_dataset(SMOKE, progress=False)
    assert default.path.parent == data_dir() / "gp" and np.array_equal(default.images, ds.images)


def test_corrupted_cache_is_detected_and_regenerated(tmp_path):
    ds = datasets.build_dataset(SMOKE, cache_dir=tmp_path, progress=False)
    good = np.array(ds.images)
    path = ds.path / "images.npy"
    raw = bytearray(path.read_bytes())
    raw[-7] ^= 0x55                                   # flip bits in the last pixel
    path.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match="images.npy: sha256"):
        datasets.read_dataset(ds.path)
    with pytest.warns(UserWarning, match="regenerating"):
        fixed = datasets.build_dataset(SMOKE, cache_dir=tmp_path, progress=False)
    assert np.array_equal(fixed.images, good)
    # a truncated labels file and a missing one are also caught
    (ds.path / "labels.npy").write_bytes((ds.path / "labels.npy").read_bytes()[:-8])
    with pytest.raises(CacheError, match="labels.npy"):
        datasets.read_dataset(ds.path)
    (ds.path / "labels.npy").unlink()
    with pytest.raises(CacheError, match="labels.npy: missing"):
        datasets.read_dataset(ds.path)


def test_mismatched_cache_is_regenerated_not_used(tmp_path):
    """In the keyed cache a folder holding another recipe is damaged: regenerate with a warning."""
    other = SMOKE.replace(seed=SMOKE.seed + 1)
    folder = tmp_path / datasets.recipe_key(SMOKE)
    datasets.build_dataset(other, directory=folder, progress=False)
    with pytest.warns(UserWarning, match="different recipe"):
        ds = datasets.build_dataset(SMOKE, cache_dir=tmp_path, progress=False)
    assert ds.recipe == SMOKE and ds.path == folder
    assert np.array_equal(ds.images, datasets.generate(SMOKE, progress=False)[0])


def test_explicit_folder_holding_another_dataset_is_refused_before_generating(tmp_path, monkeypatch):
    """A folder the caller chose (``--out``) is never overwritten with another recipe."""
    other = SMOKE.replace(seed=SMOKE.seed + 1)
    folder = tmp_path / "data"
    first = datasets.build_dataset(other, directory=folder, progress=False)
    before = np.array(first.images)
    monkeypatch.setattr(datasets, "generate", lambda *a, **k: pytest.fail("generated before refusing"))
    with pytest.raises(ValueError, match=f"{folder} holds another dataset .*choose another folder"):
        datasets.build_dataset(SMOKE, directory=folder, progress=False)
    assert np.array_equal(datasets.read_dataset(folder).images, before)


def test_builds_are_deterministic(tmp_path):
    a = datasets.build_dataset(SMOKE, directory=tmp_path / "a", progress=False)
    b = datasets.build_dataset(SMOKE, directory=tmp_path / "b", progress=False)
    assert a.meta["sha256"] == b.meta["sha256"]
    c = datasets.build_dataset(SMOKE.replace(seed=5), directory=tmp_path / "c", progress=False)
    assert c.meta["sha256"]["images.npy"] != a.meta["sha256"]["images.npy"]


@pytest.mark.parametrize("method", gp.METHODS)
def test_every_method_builds(method, tmp_path):
    ds = datasets.build_dataset(SMOKE.replace(method=method), cache_dir=tmp_path, progress=False)
    assert ds.images.shape == (8, 64, 64) and np.isfinite(ds.images).all()


def test_cli_generate(tmp_path, capsys):
    from backdrop_repro import cli

    out = tmp_path / "cli-ds"
    assert cli.main(["generate", "--profile", "smoke", "--method", "faithful", "--per-class", "2",
                     "--out", str(out)]) == 0
    ds = datasets.read_dataset(out)
    assert ds.recipe == datasets.split_recipe(profiles.get("smoke"), "train").replace(method="faithful", per_class=2)
    assert "8 images (64, 64)" in capsys.readouterr().out


def test_numpy_scalars_are_accepted_like_python_numbers():
    r = Recipe(size=np.int64(64), scales=((np.float32(2.0), np.float64(3.0)), (np.int32(8), 14.0)),
               power=(np.float32(0.75), np.float64(1.25)), per_class=np.int64(2), seed=np.uint16(1806))
    assert r == SMOKE.replace(per_class=2)
    assert type(r.size) is int and type(r.scales[0][0]) is float and type(r.per_class) is int
    assert np.array_equal(datasets.class_spectrum(r, np.int64(1)), datasets.class_spectrum(r, 1))
    for changes, field in [(dict(size=np.float32(64)), "size"), (dict(per_class=True), "per_class"),
                           (dict(scales=(("2", "3"), (8, 14))), "scales"), (dict(power=(True, 1.0)), "power"),
                           (dict(seed=np.bool_(True)), "seed")]:
        with pytest.raises(ValueError, match=f"Recipe.{field}"):
            SMOKE.replace(**changes)


# ------------------------------------------------------------------ a cache entry linked out of the cache
@pytest.mark.usefixtures("own_data_dir")
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


# ------------------------------------------------------------------ loads verify what they load
A = SMOKE.replace(per_class=1)


B = SMOKE.replace(per_class=1, seed=SMOKE.seed + 1)


@pytest.fixture(scope="module")
def pixels():
    return {r: datasets.generate(r, progress=False)[0] for r in (A, B)}


def _no_generate(*args, **kwargs):
    pytest.fail("generated data before refusing")


@pytest.mark.filterwarnings("ignore:regenerating")
@pytest.mark.parametrize("mmap", [True, False])
def test_replace_between_hash_and_load_never_hands_back_other_pixels(tmp_path, monkeypatch, pixels, mmap):
    """A writer replacing images.npy right after its hash was checked (a race the loader once lost):
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


# ------------------------------------------------------------------ class labels, checked when written and read
def test_fractional_class_labels_are_refused_not_truncated(tmp_path):
    x = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"integer class labels, got \[0.5, 1.7\]"):
        write_dataset(tmp_path / "ds", x, np.array([0.5, 1.7]), {"class_names": {0: "a", 1: "b"}})
    assert not (tmp_path / "ds" / "labels.npy").exists()
    with pytest.raises(ValueError, match="integer class labels"):
        GPDataset(x, np.array([0.5, 1.7]))
    with pytest.raises(ValueError, match=r"not among the class_names keys \[0, 1\]"):
        GPDataset(x, np.array([0, 2]), {0: "a", 1: "b"})
    assert GPDataset(x, np.array([0.0, 1.0])).labels.dtype == np.int64     # integral floats: as exact_auc


# ------------------------------------------------------------------ destinations, checked before any work
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


def test_generate_out_empty_is_refused(capsys, tmp_path, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "build_dataset", lambda *a, **k: pytest.fail("generated first"))
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--profile", "smoke", "--out", ""])
    assert e.value.code == 2 and "must name a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_out_refuses_a_non_empty_folder_it_did_not_write(tmp_path, capsys, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "generate", lambda *a, **k: pytest.fail("generated first"))
    out = tmp_path / "mine"
    out.mkdir()
    np.save(out / "images.npy", np.arange(3.0))
    (out / "labels.npy").write_bytes(b"my labels")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli.main(["generate", "--profile", "smoke", "--out", str(out)]) == 2
    line = one_line_error(capsys, "generate")
    assert str(out) in line and "images.npy" in line and "not empty" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_generate_out_still_accepts_an_empty_or_new_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / f"{paths.TMP_PREFIX}images.npy.pid1.abcdefgh.npy").write_bytes(b"orphan")
    for name in ("empty", "new"):
        assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name / "meta.json").is_file()
    # and a folder it wrote is reused
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--out", str(tmp_path / "new")]) == 0


# ------------------------------------------------------------------ memory and disk, checked before any work
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


# ------------------------------------------------------------------ orphaned temporary files
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
