"""Generating, caching and reading the datasets of class recipes (``backdrop-repro generate``: :mod:`..cli`).

The recipes (:class:`Recipe`, :data:`PAPER`, :data:`SMOKE`, :func:`split_recipe`,
:func:`class_spectrum`) live in :mod:`backdrop_repro.data.recipes` and are re-exported here. A class
sample is ``Σ_s power_s · S_s`` with each base field ``S_s`` a standardised GP sample (:mod:`backdrop_repro.gp`) used
exactly once in the whole dataset. Samples are interleaved one per class in turn (label
``i % n_classes``), as in the paper's pickle.

On disk (one folder per dataset; :mod:`backdrop_repro.data.files`, its public names re-exported here):
``images.npy`` (float32 ``N × H × W``, memory-mappable), ``labels.npy`` (int64 ``N``) and ``meta.json`` (recipe or source, class names, versions and the
sha256 of both ``.npy`` files). Every write is atomic, writers hold the folder's lock
(:func:`backdrop_repro.paths.folder_lock`) and every read hashes the very bytes it hands back
(one open file per ``.npy``: hashed, then parsed or memory-mapped from the same descriptor), so a
concurrent writer can make a read fail (``CacheError``) but never return another dataset's
pixels. Destinations and the memory/disk a dataset needs are checked before anything is
generated (:func:`check_resources`); orphaned temporary files are removed on the next build.

Example
-------
>>> ds = build_dataset(SMOKE, progress=False)          # doctest: +SKIP
>>> image, label = ds[0]; image.shape, label           # doctest: +SKIP
(torch.Size([1, 64, 64]), 0)
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .. import gp
from .files import (FORMAT_VERSION, CacheError, GPDataset, read_dataset, read_meta,  # noqa: F401
                    write_dataset)
from ..checks import tqdm_disable
from ..paths import check_writable
from ..seeds import content_key
from ..machine import available_memory, free_disk
from ..paths import check_inside, clean_orphans, data_dir, folder_lock, TMP_PREFIX
from .recipes import (MIN_SIZE_PER_LENGTH, PAPER, SMOKE, SPLITS, Recipe, class_spectrum,  # noqa: F401
                      split_recipe)

__all__ = [
    "Recipe", "PAPER", "SMOKE", "SPLITS", "split_recipe", "FORMAT_VERSION", "CacheError", "GPDataset",
    "class_spectrum", "base_field_plan", "generate", "write_dataset", "read_dataset",
    "build_dataset", "recipe_key", "estimate_bytes", "check_resources", "ResourceError",
]

#: a dataset may use at most this fraction of the available memory (it is generated in memory)
MEMORY_FRACTION = 0.8


class ResourceError(ValueError):
    """A dataset would need more memory or disk than is available (raised before generating)."""


def base_field_plan(recipe: Recipe) -> list[list[tuple[int, int, int]]]:
    """For each sample (in dataset order), the base fields it sums: ``(scale, length_index, use)``.

    Base field ``(s, a, u)`` is sample ``u`` of ``SeedSequence(seed, spawn_key=(s, a))`` at
    length ``scales[s][a]``; ``u`` counts the uses of that length in dataset order, so no base
    field is used twice. Example: ``base_field_plan(SMOKE)[2] == [(0, 0, 1), (1, 1, 0)]``.
    """
    used: dict[tuple[int, int], int] = {}
    plan = []
    classes = recipe.classes
    for i in range(len(recipe)):
        lengths = classes[i % recipe.n_classes]
        row = []
        for s, cl in enumerate(lengths):
            a = recipe.scales[s].index(cl)
            u = used.get((s, a), 0)
            used[(s, a)] = u + 1
            row.append((s, a, u))
        plan.append(row)
    return plan


def _base_seed(recipe: Recipe, s: int, a: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(recipe.seed, spawn_key=(s, a))


def estimate_bytes(recipe: Recipe) -> int:
    """Bytes of the dataset's images: ``N × size × size × 4`` (float32; labels are negligible).

    Example: ``estimate_bytes(SMOKE) == 8 * 64 * 64 * 4``.
    """
    return len(recipe) * recipe.size * recipe.size * 4


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} PB"  # pragma: no cover


def check_resources(recipe: Recipe, directory: str | Path | None = None) -> int:
    """Refuse (``ResourceError``, one line) a dataset that cannot fit, before generating it.

    Memory: the images are generated in memory, so :func:`estimate_bytes` must stay below
    ``MEMORY_FRACTION`` (80 %) of :func:`backdrop_repro.machine.available_memory` (skipped where
    that is unknown). Disk (if ``directory`` is given): the estimate must fit in the free space
    of its file system. Returns the estimate. Example: ``check_resources(SMOKE)`` -> ``131072``.
    """
    need = estimate_bytes(recipe)
    what = (f"{len(recipe)} images of {recipe.size}×{recipe.size} float32 "
            f"({recipe.n_classes} classes × per_class {recipe.per_class}) need {_fmt_bytes(need)}")
    avail = available_memory()
    if avail is not None and need > MEMORY_FRACTION * avail:
        raise ResourceError(f"{what} of memory, more than {MEMORY_FRACTION:.0%} of the {_fmt_bytes(avail)} "
                            "available; lower --per-class (per_class) or the image size")
    if directory is not None:
        free = free_disk(directory)
        if need > free:
            raise ResourceError(f"{what} of disk, but {directory} has only {_fmt_bytes(free)} free; "
                                "free some space, choose another --out or lower --per-class")
    return need


def generate(recipe: Recipe, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Generate the dataset in memory: ``images`` float32 ``(N, size, size)``, ``labels`` int64 ``(N,)``.

    Refuses (``ResourceError``) a dataset larger than the available memory allows, before
    computing anything (:func:`check_resources`).
    Example: ``images, labels = generate(SMOKE, progress=False)`` gives ``(8, 64, 64)`` and
    ``[0, 1, 2, 3, 0, 1, 2, 3]``.
    """
    from tqdm import tqdm

    check_resources(recipe)
    n = recipe.size
    plan = base_field_plan(recipe)
    images = np.empty((len(recipe), n, n), dtype=np.float32)
    labels = np.arange(len(recipe), dtype=np.int64) % recipe.n_classes
    for i, row in enumerate(tqdm(plan, desc=f"GP {n}² {recipe.method}", unit="img", disable=tqdm_disable(progress))):
        acc = np.zeros((n, n), dtype=np.float64)
        for s, a, u in row:
            cl = recipe.scales[s][a]
            field = gp.sample_field(n, cl, 1, _base_seed(recipe, s, a), method=recipe.method,
                                    dtype=np.float64, start=u)[0]
            acc += recipe.power[s] * field
        images[i] = acc
    return images, labels


def recipe_key(recipe: Recipe) -> str:
    """16-hex-digit key of the recipe and ``FORMAT_VERSION`` (the cache folder name)."""
    return content_key({"recipe": recipe.to_dict(), "format_version": FORMAT_VERSION}, 16)


def _existing(directory: Path, recipe: Recipe, explicit: bool) -> tuple[GPDataset | None, str | None]:
    """The verified dataset of ``recipe`` in ``directory``, or why it must be (re)generated.

    A folder chosen by the caller (``explicit``) that holds something else (another recipe,
    another source, a ``meta.json`` that is not a dataset's) is refused with ``ValueError``.
    """
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        if explicit:
            foreign = sorted(p.name for p in directory.iterdir() if not p.name.startswith(TMP_PREFIX))
            if foreign:
                shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                raise ValueError(f"{directory} is not empty ({shown}) and holds no backdrop-repro dataset: "
                                 "--out writes images.npy, labels.npy and meta.json and would overwrite your "
                                 "files; choose an empty or new folder for --out")
        return None, None
    try:
        meta = read_meta(directory)
    except CacheError as err:
        if explicit:
            raise ValueError(f"{meta_path} is not a backdrop-repro dataset's ({err}); choose an empty "
                             "folder for --out or delete that file") from None
        return None, str(err)
    if meta.get("recipe") != recipe.to_dict() or meta.get("source", "generated") != "generated":
        if explicit:
            key = meta.get("recipe_key") or meta.get("source") or "unknown"
            raise ValueError(f"{directory} holds another dataset (recipe {key}, asked for "
                             f"{recipe_key(recipe)}); choose another folder for --out or delete it first")
        return None, "it holds a different recipe"
    if meta.get("format_version") != FORMAT_VERSION:
        return None, f"format version {meta.get('format_version')} is not {FORMAT_VERSION}"
    try:
        return read_dataset(directory), None
    except CacheError as err:
        return None, str(err)


def build_dataset(recipe: Recipe, cache_dir: str | Path | None = None, progress: bool = True,
                  directory: str | Path | None = None) -> GPDataset:
    """Generate the dataset of ``recipe`` or reuse its verified cache.

    The dataset lives in ``directory`` if given, else ``<cache_dir or data_dir()/"gp">/<recipe_key>``.
    Before generating anything: the folder must be writable (``NotADirectoryError``,
    ``PermissionError``), a ``directory`` given by the caller must not hold another dataset nor,
    without a dataset's ``meta.json``, any file at all (``ValueError``: never overwrite a user's
    own ``images.npy``), and the data must fit in memory and on disk (:class:`ResourceError`).
    The folder is locked while it is checked and written (concurrent builds wait), and
    orphaned temporary files are removed. A cached copy is used only if its ``meta.json`` holds
    the same recipe and format version and both files match their sha256; otherwise
    (corrupted, truncated, mismatched) it is regenerated with a warning.
    Example: ``ds = build_dataset(SMOKE, progress=False)``.
    """
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    explicit = directory is not None
    if directory is None:
        root = Path(cache_dir) if cache_dir is not None else data_dir() / "gp"
        directory = root / recipe_key(recipe)
    directory = check_writable(Path(directory), "--out" if explicit else "dataset folder")
    with folder_lock(directory):
        clean_orphans(directory, None)
        ds, reason = _existing(directory, recipe, explicit)
        if ds is not None:
            return ds
        if not explicit:                    # a cache entry linked out of the cache: never written through
            check_inside(directory, root)
        check_resources(recipe, directory)
        if reason:
            warnings.warn(f"regenerating the GP dataset in {directory}: {reason}", stacklevel=2)
        images, labels = generate(recipe, progress=progress)
        meta = {"source": "generated", "recipe": recipe.to_dict(), "recipe_key": recipe_key(recipe),
                "class_names": recipe.class_names, "classes": [list(c) for c in recipe.classes],
                "order": "interleaved: label = index % n_classes"}
        write_dataset(directory, images, labels, meta)
        return read_dataset(directory)
