"""The on-disk format of a GP class dataset, and the torch ``Dataset`` that reads it.

One folder per dataset: ``images.npy`` (float32 ``N × H × W``, memory-mappable), ``labels.npy``
(int64 ``N``) and ``meta.json`` (recipe or source, class names, versions and the sha256 of both
``.npy`` files). Writes are atomic and hold the folder's lock
(:func:`backdrop_repro.paths.folder_lock`); every read hashes the very bytes it hands back (one
open descriptor per file: hashed, then parsed or memory-mapped), so a concurrent writer can make
a read fail with :class:`CacheError` but never slip in another dataset's pixels. Everything here
is re-exported by :mod:`backdrop_repro.data.datasets`.

Example
-------
>>> folder = write_dataset(tmp / "ds", np.zeros((2, 8, 8)), np.array([0, 1]), {})   # doctest: +SKIP
>>> read_dataset(folder)[1][1]                                                    # doctest: +SKIP
1
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checks import check_labels
from ..paths import check_writable
from ..machine import versions
from ..paths import atomic_path, clean_orphans, folder_lock, write_json

if TYPE_CHECKING:  # pragma: no cover
    from .recipes import Recipe

__all__ = ["FORMAT_VERSION", "CacheError", "GPDataset", "write_dataset", "read_dataset", "read_meta"]

#: bump when the generator or the on-disk format changes (invalidates cached datasets)
FORMAT_VERSION = 2


class CacheError(ValueError):
    """A dataset file on disk is missing, corrupted or does not match its ``meta.json``."""


def _sha256(f: "str | Path | Any") -> str:
    """sha256 of a file: a path, or an open binary file read from its current position to EOF."""
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return _sha256(fh)
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 22), b""):
        h.update(chunk)
    return h.hexdigest()


def _file_id(f: Any) -> tuple[int, int, int, int]:
    st = os.fstat(f.fileno())
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _load_npy(path: Path, expected: str | None, mmap: bool) -> tuple[np.ndarray, tuple]:
    """Open ``path`` once; check the sha256 of what that descriptor reads (if ``expected``);
    parse (or memory-map) the array from the *same* descriptor. Returns ``(array, file id)``.

    Writers only ever replace files (atomic rename), never modify them, so the bytes mapped
    from the open descriptor are the bytes hashed even if the path is replaced meanwhile.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise CacheError(f"{path}: missing") from None
    with f:
        fid = _file_id(f)
        if expected is not None:
            got = _sha256(f)
            if got != expected:
                raise CacheError(f"{path}: sha256 {got} does not match {expected} recorded in meta.json")
            f.seek(0)
        try:
            if not mmap:
                return np.lib.format.read_array(f, allow_pickle=False), fid
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject:
                raise ValueError("object arrays are not allowed")
            if int(np.prod(shape)) == 0:
                return np.zeros(shape, dtype=dtype), fid
            arr = np.memmap(f, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C",
                            offset=f.tell())
            return arr, fid
        except (ValueError, EOFError, OSError) as err:
            raise CacheError(f"{path}: unreadable .npy file ({err})") from None


def read_meta(directory: Path) -> dict:
    """``meta.json`` of a dataset folder as a dict (``CacheError`` naming the file otherwise)."""
    meta_path = directory / "meta.json"
    try:
        meta = json.loads(meta_path.read_bytes())
    except FileNotFoundError:
        raise CacheError(f"{meta_path}: missing") from None
    except IsADirectoryError:
        raise CacheError(f"{meta_path}: is a folder, not a file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CacheError(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise CacheError(f"{meta_path}: expected a JSON object, got a JSON {type(meta).__name__}")
    sha = meta.get("sha256")
    if not isinstance(sha, dict) or not all(isinstance(sha.get(n), str) for n in ("images.npy", "labels.npy")):
        raise CacheError(f"{meta_path}: no sha256 recorded for images.npy and labels.npy")
    if not isinstance(meta.get("class_names", {}), dict):
        raise CacheError(f"{meta_path}: class_names must be a JSON object")
    return meta


def _check_class_labels(labels: Any, class_names: Any = None) -> np.ndarray:
    """int64 labels: integers >= 0 (:func:`~backdrop_repro.checks.check_labels`: 1.7 is refused, never
    truncated) and, given ``class_names``, among its keys. ``ValueError`` naming the strays."""
    out = check_labels(labels, "labels")
    if class_names:
        try:
            keys = {int(k) for k in class_names}
        except (TypeError, ValueError):
            return out
        stray = sorted(set(np.unique(out).tolist()) - keys)
        if stray:
            raise ValueError(f"labels {stray[:3]} are not among the class_names keys {sorted(keys)}")
    return out


def write_dataset(directory: str | Path, images: np.ndarray, labels: np.ndarray, meta: dict) -> Path:
    """Write ``images.npy`` (float32 N×H×W), ``labels.npy`` (int64 N) and ``meta.json`` atomically.

    ``meta`` (JSON-serialisable: recipe or source, ``class_names``...) is stored with
    ``format_version``, ``versions`` and ``sha256`` (of both ``.npy`` files) added. ``meta.json``
    is written last, so an interrupted write never verifies. The folder is locked
    (:func:`backdrop_repro.paths.folder_lock`) while writing, and orphaned temporary files of
    killed writers are removed first. Returns ``directory``.
    Example: ``write_dataset(tmp / "ds", images, labels, {"class_names": {0: "a"}})``.
    """
    directory = Path(directory)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    labels = _check_class_labels(labels, (meta or {}).get("class_names") if isinstance(meta, dict) else None)
    check_writable(directory, "dataset folder")
    with folder_lock(directory):
        clean_orphans(directory, None)
        meta_path = directory / "meta.json"
        if meta_path.is_file():
            meta_path.unlink()                   # the old hash must never vouch for new files
        digests = {}
        for name, arr, dt in (("images.npy", images, np.float32), ("labels.npy", labels, np.int64)):
            with atomic_path(directory / name) as tmp:
                np.save(tmp, np.ascontiguousarray(arr, dtype=dt))
                digests[name] = _sha256(tmp)
        full = dict(meta)
        full.setdefault("class_names", {})
        full["class_names"] = {str(k): v for k, v in full["class_names"].items()}
        full.update(format_version=FORMAT_VERSION, shape=list(images.shape), versions=versions(),
                    sha256=digests)
        write_json(meta_path, full)
    return directory


class GPDataset(Dataset):
    """A GP class dataset: ``images`` (N, H, W) float32 (possibly a memmap), ``labels`` (N,) int64.

    ``ds[i]`` is ``(tensor (1, H, W) float32, int label)``; ``class_names`` is ``{label: name}``;
    ``meta`` the stored ``meta.json`` (empty for in-memory data). Pickling a memory-mapped
    dataset (DataLoader workers) sends the file name; unpickling maps the file again and, if it
    was replaced since, checks its sha256 against ``meta`` (``CacheError`` if it changed).

    Example
    -------
    >>> ds = GPDataset(np.zeros((2, 8, 8), np.float32), np.array([0, 1]), {0: "a", 1: "b"})
    >>> ds[1][0].shape, ds[1][1], len(ds)
    (torch.Size([1, 8, 8]), 1, 2)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, class_names: dict[int, str] | None = None,
                 meta: dict | None = None, path: Path | None = None, file_id: tuple | None = None) -> None:
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise ValueError(f"images must be (N, H, W) and labels (N,), got {images.shape} and {labels.shape}")
        self.images = images
        self.labels = _check_class_labels(labels, class_names)
        self.class_names = {int(k): str(v) for k, v in (class_names or {}).items()}
        self.meta = meta or {}
        self.path = path
        self.file_id = file_id

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getstate__(self) -> dict:
        # DataLoader workers: send the file name, not the (memory-mapped) pixels
        state = dict(self.__dict__)
        if isinstance(self.images, np.memmap) and self.path is not None:
            state["images"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("file_id", None)
        if self.images is None:
            path = Path(self.path) / "images.npy"
            with open(path, "rb") as f:
                same = self.file_id is not None and _file_id(f) == tuple(self.file_id)
            expected = None if same else (self.meta.get("sha256") or {}).get("images.npy", "")
            images, _ = _load_npy(path, expected, mmap=True)
            if images.shape[0] != self.labels.shape[0]:
                raise CacheError(f"{path}: replaced since it was loaded; load the dataset again")
            self.images = images

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(np.array(self.images[i], dtype=np.float32, copy=True))
        return x.unsqueeze(0), int(self.labels[i])

    @property
    def recipe(self) -> "Recipe | None":
        from .recipes import Recipe

        r = self.meta.get("recipe")
        try:
            return Recipe.from_dict(r) if r else None
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def __repr__(self) -> str:
        return f"GPDataset(n={len(self)}, shape={tuple(self.images.shape[1:])}, classes={self.class_names})"


def read_dataset(directory: str | Path, mmap: bool = True, verify: bool = True) -> GPDataset:
    """Load a dataset written by :func:`write_dataset`, checking the sha256 of the bytes it loads.

    Each ``.npy`` is opened once: the bytes read through that descriptor are hashed and the
    array is parsed (``mmap=False``) or memory-mapped (``mmap=True``) from the same descriptor,
    so a concurrent replace cannot slip other data in between check and load. Raises
    ``CacheError`` naming the file when ``meta.json`` is missing, not a JSON object or lacks the
    hashes, when a file is missing, its hash differs or its shape/dtype does not match.
    ``verify=False`` skips hashing (shape and dtype are still checked).
    Example: ``ds = read_dataset(build_dataset(SMOKE).path)``.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    expected = meta["sha256"]
    images, fid = _load_npy(directory / "images.npy", expected["images.npy"] if verify else None, mmap)
    labels, _ = _load_npy(directory / "labels.npy", expected["labels.npy"] if verify else None, mmap=False)
    if list(images.shape) != meta.get("shape") or images.dtype != np.float32 or labels.dtype != np.int64 \
            or images.ndim != 3 or labels.shape != images.shape[:1]:
        raise CacheError(f"{directory / 'images.npy'}: shape/dtype {images.shape}/{images.dtype} "
                         f"(labels {labels.shape}/{labels.dtype}) does not match meta.json {meta.get('shape')}")
    try:
        names = {int(k): v for k, v in meta.get("class_names", {}).items()}
    except (TypeError, ValueError):
        raise CacheError(f"{directory / 'meta.json'}: class_names keys must be integer labels") from None
    return GPDataset(images, labels, names, meta, path=directory, file_id=fid)
