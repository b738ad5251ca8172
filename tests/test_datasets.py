"""Class recipes, generation of the crosses, the on-disk format and its cache."""
import json
import warnings

import numpy as np
import pytest
import torch

from backdrop_repro import gp
from backdrop_repro.data import datasets
from backdrop_repro.paths import data_dir
from backdrop_repro.data.datasets import PAPER, SMOKE, CacheError, Recipe

#: the paper's lengths on 256² images (the retired "quick" profile's data)
PAPER_256 = Recipe(size=256, scales=((9.5, 10.0), (80.0, 140.0)), power=(0.75, 1.25), per_class=25,
                   seed=0, method="matched")


def test_paper_recipe_classes_names_and_order():
    assert PAPER.size == 1024 and PAPER.per_class == 25 and len(PAPER) == 100
    assert PAPER.scales == ((9.5, 10.0), (80.0, 140.0)) and PAPER.power == (0.75, 1.25)
    assert PAPER.classes == [(9.5, 80.0), (10.0, 80.0), (9.5, 140.0), (10.0, 140.0)]
    assert PAPER.class_names == {0: "9.5-80", 1: "10-80", 2: "9.5-140", 3: "10-140"}
    quick = datasets.split_recipe("quick", "train")
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
    assert ds.recipe == datasets.split_recipe("smoke", "train").replace(method="faithful", per_class=2)
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
