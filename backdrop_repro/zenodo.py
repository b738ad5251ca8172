"""The authors' Zenodo record (DOI 10.5281/zenodo.1252464) through pooch, loaded safely.

Three data routes lead to the same on-disk format (:func:`backdrop_repro.datasets.read_dataset`):

1. generate locally (``backdrop-repro generate --recipe paper``; no network, the default);
2. download the paper's own dataset from Zenodo (``backdrop-repro fetch dataset``);
3. the same from a mirror: set ``BACKDROP_REPRO_ZENODO_URL`` to a folder URL holding
   ``dataset.zip`` / ``samples.zip`` (the tests serve one from 127.0.0.1).

Every download is checked against the md5 published on the record (pooch downloads to a
temporary file and moves it into the cache only when the hash matches). The authors stored
the dataset as a Python pickle, and unpickling untrusted bytes can run arbitrary code, so it
is read with :class:`RestrictedUnpickler`: a pure-Python unpickler that resolves only the
handful of numpy globals an array needs, validates every dtype and array state before numpy
sees it, and refuses anything else *before* calling it. The result is converted once to the
project's ``.npy`` format (``<cache>/zenodo/paper-<md5>/``); later loads are memory maps.

Cache: ``paths.data_dir() / "zenodo"`` (``BACKDROP_REPRO_DATA`` moves it). Downloads hold the
cache folder's lock (:func:`backdrop_repro.paths.folder_lock`; a second process waits, then finds
the verified file), and first remove what killed downloads left behind: pooch's partial
``tmpXXXXXXXX`` files in the cache and our ``.backdrop-tmp-*`` extraction files.
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Optional

import numpy as np

from .paths import atomic_path, clean_orphans, data_dir, folder_lock

DOI = "10.5281/zenodo.1252464"
#: Default download location (the record's files); ``BACKDROP_REPRO_ZENODO_URL`` overrides it.
DEFAULT_URL = "https://zenodo.org/records/1252464/files/"
URL_ENV = "BACKDROP_REPRO_ZENODO_URL"
#: The record's files and their published checksums.
HASHES: dict[str, str] = {
    "dataset.zip": "md5:7374717f83aa0cf0107fc852a1e11221",
    "samples.zip": "md5:9d2d24fb52d9264ea7fc91db20933a23",
}
#: how often a failed download (connection error or hash mismatch) is retried
RETRIES = 2
OFFLINE_HINT = ("the default main job needs no network: build the same dataset locally with "
                "`backdrop-repro generate --recipe paper`")


class UnsafePickleError(ValueError):
    """The pickle asks for something the restricted unpickler does not allow."""


# --------------------------------------------------------------------------------------------
# registry and download
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where the Zenodo files and their conversions live: ``paths.data_dir() / "zenodo"``."""
    path = data_dir() / "zenodo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_url() -> str:
    """The folder URL the files are downloaded from (``BACKDROP_REPRO_ZENODO_URL`` or Zenodo)."""
    url = os.environ.get(URL_ENV) or DEFAULT_URL
    return url if url.endswith("/") else url + "/"


def make_registry(hashes: Optional[Mapping[str, str]] = None, url: Optional[str] = None,
                  path: Optional[os.PathLike] = None, retries: Optional[int] = None):
    """Build the ``pooch.Pooch`` for the record.

    ``hashes`` maps file name -> ``"md5:<hex>"`` (default :data:`HASHES`; tests pass the md5 of a
    small zip they serve), ``url`` the base URL (default :func:`base_url`), ``path`` the cache
    folder (default :func:`cache_dir`), ``retries`` how often a failed download is retried
    (default :data:`RETRIES`).

    Example: ``make_registry().fetch("dataset.zip")`` -> local path of the verified zip.
    """
    import pooch

    retries = RETRIES if retries is None else retries
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    hashes = dict(HASHES if hashes is None else hashes)
    for name, h in hashes.items():
        if not re.fullmatch(r"(md5|sha1|sha256):[0-9a-f]+", str(h)):
            raise ValueError(f"hashes[{name!r}] must look like 'md5:<hex>', got {h!r}")
    url = url or base_url()
    return pooch.create(path=Path(path) if path else cache_dir(), base_url=url if url.endswith("/") else url + "/",
                        registry=hashes, retry_if_failed=retries)


def _fetch(registry, fname: str, processor: Optional[Callable] = None, progress: bool = True) -> Any:
    """``registry.fetch`` with one-line, actionable errors for network problems."""
    import pooch
    import requests

    progress = progress and not _tqdm_disabled()
    url = registry.get_url(fname)
    root = Path(registry.abspath)
    try:
        with folder_lock(root):
            clean_download_orphans(root)
            return registry.fetch(fname, processor=processor,
                                  downloader=pooch.HTTPDownloader(progressbar=progress))
    except requests.exceptions.HTTPError as err:
        status = getattr(err.response, "status_code", None)
        if status == 404:
            raise FileNotFoundError(f"{url} does not exist (HTTP 404); check {URL_ENV} or use: "
                                    f"{OFFLINE_HINT}") from None
        raise ConnectionError(f"downloading {url} failed (HTTP {status}); {OFFLINE_HINT}") from None
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as err:
        raise ConnectionError(f"the download of {fname} from {url} was interrupted "
                              f"({type(err).__name__}); nothing was kept, try again, or: {OFFLINE_HINT}") from None
    except requests.exceptions.RequestException as err:
        raise ConnectionError(f"cannot reach {url} ({type(err).__name__}: network unreachable?); "
                              f"{OFFLINE_HINT}") from None


#: pooch's partial downloads: ``tempfile.NamedTemporaryFile`` names (``tmp`` + 8 characters)
_POOCH_TMP = re.compile(r"tmp[a-z0-9_]{8}")
#: sub-folders of the cache whose files are written only under the cache folder's lock
_EXTRACT_DIRS = ("dataset-extract-", "samples-")


def clean_download_orphans(root: os.PathLike) -> list[Path]:
    """Remove the temporary files of killed downloads/extractions in the Zenodo cache ``root``.

    Call it holding ``folder_lock(root)`` (every download does): then no writer owns them.
    Returns the removed paths. Example: ``with folder_lock(cache_dir()): clean_download_orphans(cache_dir())``.
    """
    root = Path(root)
    removed = clean_orphans(root, None)
    for p in root.iterdir() if root.is_dir() else ():
        if p.is_file() and _POOCH_TMP.fullmatch(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
        elif p.is_dir() and p.name.startswith(_EXTRACT_DIRS):
            removed += clean_orphans(p, older_than_s=0)
    return removed


def _tqdm_disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


# --------------------------------------------------------------------------------------------
# pooch processors: extract zip members atomically
# --------------------------------------------------------------------------------------------
class ExtractMembers:
    """pooch processor: extract the zip members whose name matches ``pattern`` into ``dest``.

    Each member is written to a temporary file and renamed, so an interrupted extraction never
    leaves a file a later call would trust; members are re-extracted when pooch has just
    (re)downloaded the zip. Only the base name of a member is used (no path traversal).
    Returns the extracted paths sorted by member name. ``what`` names the expectation in the
    error raised when nothing matches (``ValueError`` listing the zip's members).

    Example: ``registry.fetch("dataset.zip", processor=ExtractMembers(r"GP_.*\\.gp$", dest))``.
    """

    def __init__(self, pattern: str, dest: os.PathLike, what: Optional[str] = None, single: bool = False):
        self.regex = re.compile(pattern)
        self.dest = Path(dest)
        self.what = what or f"a member matching {pattern!r}"
        self.single = single

    def members(self, zip_path: os.PathLike) -> list[str]:
        """Names of the members of ``zip_path`` that match (``ValueError`` if none)."""
        try:
            with zipfile.ZipFile(zip_path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
        except zipfile.BadZipFile as err:
            raise ValueError(f"{Path(zip_path).name} is not a valid zip file: {err}") from None
        found = sorted(n for n in names if self.regex.search(n))
        if not found:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") or "none"
            raise ValueError(f"{Path(zip_path).name} has no {self.what} (its members: {shown})")
        if self.single and len(found) > 1:
            raise ValueError(f"{Path(zip_path).name} has several members matching {self.what}: {found}")
        return found

    def __call__(self, fname: str, action: str, pooch: Any = None) -> list[Path]:
        found = self.members(fname)
        self.dest.mkdir(parents=True, exist_ok=True)
        out = []
        with zipfile.ZipFile(fname) as zf:
            for name in found:
                target = self.dest / Path(name).name
                if action in ("download", "update") or not target.exists():
                    try:
                        with atomic_path(target) as tmp, zf.open(name) as src, open(tmp, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 22)   # zipfile checks the CRC at EOF
                    except (zipfile.BadZipFile, EOFError) as err:
                        raise ValueError(f"{Path(fname).name}: member {name} is damaged ({err})") from None
                out.append(target)
        return out


# --------------------------------------------------------------------------------------------
# restricted unpickling
# --------------------------------------------------------------------------------------------
_SAFE_KINDS = "biuf"   # bool, int, uint, float: fixed-size, no Python objects inside


def _safe_dtype_of(obj: Any, what: str) -> np.dtype:
    if not isinstance(obj, np.dtype) or obj.hasobject or obj.kind not in _SAFE_KINDS \
            or obj.fields is not None or obj.subdtype is not None:
        raise UnsafePickleError(f"{what}: only plain numeric dtypes are allowed, got {obj!r}")
    return obj


def _make_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """Stand-in for ``numpy.dtype`` during unpickling: numeric type codes only, always a copy."""
    if not isinstance(obj, str) or not re.fullmatch(r"[<>|=]?[biuf]\d{1,2}|[?bBhHiIlLqQefdg]", obj):
        raise UnsafePickleError(f"numpy.dtype({obj!r}) is not allowed: only numeric type codes")
    # copy=True: the BUILD step then sets the state of a private copy, never of numpy's singleton
    return _safe_dtype_of(np.dtype(obj, bool(align), True), "numpy.dtype")


class _Token:
    """What the global ``numpy.ndarray`` resolves to: a marker that cannot be called or built."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<numpy.ndarray marker>"


_NDARRAY = _Token()


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """Stand-in for ``numpy.core.multiarray._reconstruct``: an empty plain ndarray only."""
    if subtype is not _NDARRAY or shape != (0,) or dtype not in (b"b", "b"):
        raise UnsafePickleError(f"_reconstruct{(subtype, shape, dtype)!r} is not allowed")
    return np.ndarray((0,), dtype=np.int8)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Stand-in for ``numpy._core.numeric._frombuffer`` (protocol-5 arrays)."""
    dtype = _safe_dtype_of(dtype, "array")
    if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F") or not _is_shape(shape) \
            or len(buf) != math.prod(shape) * dtype.itemsize:
        raise UnsafePickleError("a protocol-5 array with an inconsistent buffer, shape or order")
    return np.frombuffer(bytearray(buf), dtype=dtype).reshape(shape, order=order)


def _latin1_encode(obj: Any, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode`` (how protocol <= 2 pickles store ``bytes``)."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode({type(obj).__name__}, {encoding!r}) is not allowed")
    return obj.encode("latin1")


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, tuple) and all(type(s) is int and s >= 0 for s in shape)


#: the only globals a pickle may name, mapped to validating stand-ins
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _make_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle._Unpickler):   # the pure-Python unpickler: BUILD can be checked
    """Unpickler for ``[[array, int], ...]``/``{int: str}`` data; refuses everything else.

    Allowed: the pickle opcodes for None/bool/int/float/str/bytes/list/tuple/dict, and numpy
    arrays of numeric dtype (the globals in ``_ALLOWED``, each replaced by a validating
    stand-in). The state of every dtype and array is checked before ``__setstate__`` runs, so
    no object dtype (raw pointers) can be smuggled in. Any other global, or a BUILD on anything
    else, raises :class:`UnsafePickleError` (a ``ValueError``) *before* it is called.
    ``encoding="latin1"`` also reads Python 2 pickles.

    Example: ``RestrictedUnpickler(open(path, "rb"), source="dataset.zip").load()``.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: IO[bytes], source: str = "pickle"):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refusing to load the global {module}.{name} (only numpy arrays, "
                "ints, strings, lists and dicts are allowed); nothing was executed") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: persistent ids are not allowed")

    def _load_build_checked(self) -> None:
        state = self.stack[-1]
        inst = self.stack[-2]
        if isinstance(inst, np.dtype):
            # (version, endian, subarray, names, fields, elsize, alignment, flags[, metadata])
            ok = (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                  and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)
                  and state[5:7] == (-1, -1) and state[7] == 0 and (len(state) == 8 or state[8] is None))
            if not ok:
                raise UnsafePickleError(f"{self.source}: unexpected dtype state {state!r}")
        elif type(inst) is np.ndarray:
            # (version, shape, dtype, is_fortran, raw data)
            ok = (isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and _is_shape(state[1])
                  and isinstance(state[2], np.dtype) and isinstance(state[3], bool)
                  and isinstance(state[4], (bytes, bytearray, str)))
            if ok:
                _safe_dtype_of(state[2], f"{self.source}: array")
                ok = len(state[4]) == math.prod(state[1]) * state[2].itemsize
            if not ok:
                shown = tuple(type(v).__name__ for v in state) if isinstance(state, tuple) else state
                raise UnsafePickleError(f"{self.source}: unexpected array state {shown!r}")
        else:
            raise UnsafePickleError(f"{self.source}: setting the state of a {type(inst).__name__} is not allowed")
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build_checked


def safe_load_pickle(path: os.PathLike, source: Optional[str] = None) -> Any:
    """Load a pickle of numpy arrays/ints/strings/lists/dicts with :class:`RestrictedUnpickler`.

    Raises ``ValueError`` (:class:`UnsafePickleError` for refused content) naming ``source``.
    Example: ``pairs, names = safe_load_pickle("GP_9.5-10+80-140.gp")``.
    """
    source = source or Path(path).name
    with open(path, "rb") as f:
        try:
            obj = RestrictedUnpickler(f, source=source).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, IndexError, KeyError, AttributeError) as err:
            raise ValueError(f"{source} is not a readable pickle ({type(err).__name__}: {err})") from None
        if f.read(1):
            raise ValueError(f"{source}: trailing bytes after the pickle")
    return obj


# --------------------------------------------------------------------------------------------
# the paper's dataset
# --------------------------------------------------------------------------------------------
def _fmt_cl(cl: float) -> str:
    """Correlation length as the authors wrote it in names: ``10`` not ``10.0``, ``9.5``."""
    return str(int(cl)) if float(cl) == int(cl) else str(float(cl))


def pickle_member_name(recipe: Any) -> str:
    """Base name of the pickle inside ``dataset.zip`` for ``recipe``: ``GP_9.5-10+80-140.gp``."""
    return "GP_" + "+".join("-".join(_fmt_cl(c) for c in scale) for scale in recipe.scales) + ".gp"


def _parse_name(name: Any) -> Optional[tuple[float, ...]]:
    try:
        return tuple(sorted(float(p) for p in str(name).split("-")))
    except ValueError:
        return None


def _same_name(a: Any, b: Any) -> bool:
    pa, pb = _parse_name(a), _parse_name(b)
    return pa == pb if pa is not None and pb is not None else str(a) == str(b)


def parse_authors_dataset(obj: Any, recipe: Any, source: str = "dataset"
                          ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Check the unpickled ``[[[array, label], ...], {label: name}]`` against ``recipe``.

    Checks: the layout; every image a 2-D float32 array of ``recipe.size``²; labels ints that
    are keys of the name dict; the names equal ``recipe.class_names`` (compared as sets of
    correlation lengths, so ``'10-80'`` == ``'10.0-80.0'``); every class equally often.
    ``per_class`` is not enforced (it is stored in the metadata instead).
    Returns ``images`` (N, size, size) float32, ``labels`` (N,) int64 and the names {int: str}.
    Example: ``images, labels, names = parse_authors_dataset(safe_load_pickle(p), PAPER)``.
    """
    def bad(msg: str) -> ValueError:
        return ValueError(f"{source}: {msg}")

    if not isinstance(obj, (list, tuple)) or len(obj) != 2:
        raise bad("expected a pickle of [list of [image, label] pairs, {label: name}]")
    pairs, names = obj
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise bad("the first element must be a non-empty list of [image, label] pairs")
    if not isinstance(names, dict) or not all(type(k) is int and isinstance(v, str) for k, v in names.items()):
        raise bad("the second element must be a dict {int label: str name}")
    expected = {int(k): v for k, v in recipe.class_names.items()}
    if set(names) != set(expected) or not all(_same_name(names[k], expected[k]) for k in expected):
        raise bad(f"class names {names} do not match the recipe's {expected}")
    size = int(recipe.size)
    images = np.empty((len(pairs), size, size), dtype=np.float32)
    labels = np.empty(len(pairs), dtype=np.int64)
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise bad(f"item {i} is not an [image, label] pair")
        image, label = pair
        if type(image) is not np.ndarray or image.dtype != np.float32 or image.shape != (size, size):
            raise bad(f"item {i}: expected a float32 array of shape {(size, size)}, got "
                      f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}")
        if type(label) is not int or label not in names:
            raise bad(f"item {i}: label {label!r} is not one of {sorted(names)}")
        images[i] = image
        labels[i] = label
    counts = np.bincount(labels, minlength=len(names))
    if counts.min() != counts.max():
        raise bad(f"classes are unbalanced: {dict(enumerate(counts.tolist()))}")
    return images, labels, dict(names)


def _keyed_dir(prefix: str, hashes: Mapping[str, str], fname: str) -> Path:
    """``<cache>/zenodo/<prefix>-<first 12 hex digits of the zip's hash>``: one folder per zip."""
    if fname not in hashes:
        raise ValueError(f"hashes must have an entry for {fname!r}, got {sorted(hashes)}")
    return cache_dir() / f"{prefix}-{hashes[fname].split(':')[1][:12]}"


def _paper_dir(hashes: Mapping[str, str]) -> Path:
    return _keyed_dir("paper", hashes, "dataset.zip")


def paper_dataset_cached(hashes: Optional[Mapping[str, str]] = None) -> bool:
    """Whether the converted paper dataset, or ``dataset.zip``, is in the cache (no network).

    Example: ``ds = fetch_paper_dataset() if paper_dataset_cached() else build_dataset(PAPER)``.
    """
    hashes = HASHES if hashes is None else hashes
    return (_paper_dir(hashes) / "meta.json").exists() or (cache_dir() / "dataset.zip").exists()


def fetch_paper_dataset(progress: bool = True, *, recipe: Any = None,
                        hashes: Optional[Mapping[str, str]] = None, url: Optional[str] = None):
    """The paper's dataset from Zenodo as a :class:`~backdrop_repro.datasets.GPDataset`.

    First call: download ``dataset.zip`` (md5-verified, pooch progress bar if ``progress``),
    extract the pickle, load it with :class:`RestrictedUnpickler`, check it against ``recipe``
    (default ``datasets.PAPER``: 4 classes '9.5-80', '10-80', '9.5-140', '10-140' of 1024²
    float32 images), and write it once in the project's format under
    ``<cache>/zenodo/paper-<md5>/`` (the extracted pickle is then deleted). Later calls only
    memory-map that folder (no network, no request). ``hashes``/``url`` override the registry
    (mirrors, tests). Images: (N, size, size) float32; labels (N,) int64.

    Raises ``ConnectionError`` (offline: suggests ``backdrop-repro generate --recipe paper``),
    ``ValueError`` (hash mismatch, refused pickle, wrong layout or classes).
    Example: ``ds = fetch_paper_dataset(); x, y = ds[0]  # x: (1, 1024, 1024)``.
    """
    from . import datasets

    recipe = datasets.PAPER if recipe is None else recipe
    hashes = dict(HASHES if hashes is None else hashes)
    target = _paper_dir(hashes)
    if (target / "meta.json").exists():
        try:
            return datasets.read_dataset(target, mmap=True)
        except ValueError as err:   # a damaged conversion: rebuild it from the (verified) zip
            print(f"warning: {err}; converting dataset.zip again", file=sys.stderr)
            shutil.rmtree(target, ignore_errors=True)
    member = pickle_member_name(recipe)
    extract = ExtractMembers(r"(^|/)" + re.escape(member) + "$",
                             _keyed_dir("dataset-extract", hashes, "dataset.zip"),
                             what=f"member {member!r}", single=True)
    (pickle_path,) = _fetch(make_registry(hashes, url), "dataset.zip", processor=extract, progress=progress)
    try:
        obj = safe_load_pickle(pickle_path, source=f"dataset.zip:{member}")
        images, labels, names = parse_authors_dataset(obj, recipe, source=f"dataset.zip:{member}")
        del obj
        meta = {"source": "zenodo", "doi": DOI, "file": "dataset.zip", "md5": hashes["dataset.zip"],
                "member": member, "class_names": {str(k): v for k, v in names.items()},
                "recipe": _recipe_dict(recipe, per_class=int(len(labels) // len(names))),
                "order": "as in the authors' pickle (one sample of each class in turn)"}
        datasets.write_dataset(target, images, labels, meta)
    finally:
        Path(pickle_path).unlink(missing_ok=True)
    return datasets.read_dataset(target, mmap=True)


def _recipe_dict(recipe: Any, per_class: int) -> dict:
    """The recipe the data were checked against, with the ``per_class`` actually found."""
    import dataclasses

    if hasattr(recipe, "replace") and hasattr(recipe, "to_dict"):
        return recipe.replace(per_class=per_class).to_dict()
    d = dataclasses.asdict(recipe) if dataclasses.is_dataclass(recipe) else dict(vars(recipe))
    return {**d, "per_class": per_class}


# --------------------------------------------------------------------------------------------
# the individual samples
# --------------------------------------------------------------------------------------------
SAMPLE_LENGTHS = (9.5, 10.0, 60.0, 80.0, 140.0, 200.0)
_SAMPLE_RE = r"(^|/)final_size-\d+_corr-{cl}_v(\d+)\.npy$"


def fetch_samples(cls: float, progress: bool = True, *, hashes: Optional[Mapping[str, str]] = None,
                  url: Optional[str] = None) -> list[np.ndarray]:
    """The authors' individual GP samples of correlation length ``cls`` from ``samples.zip``.

    ``cls`` is one of :data:`SAMPLE_LENGTHS` (9.5, 10, 60, 80, 140, 200; 50 samples each, 4 for
    60 and 200). Downloads the 1.6 GB zip once (md5-verified), extracts the members
    ``final_size-1024_corr-<cls>_v<i>.npy`` into ``<cache>/zenodo/samples-<md5>/`` and returns them
    as read-only memory maps loaded with ``numpy.load(allow_pickle=False)``, ordered by ``i``.
    Each: (1024, 1024) float. Example: ``x = fetch_samples(80)[0]``.
    """
    try:
        cl = float(cls)
    except (TypeError, ValueError):
        raise ValueError(f"cls must be a correlation length such as {SAMPLE_LENGTHS}, got {cls!r}") from None
    if not math.isfinite(cl) or cl <= 0:
        raise ValueError(f"cls must be a positive correlation length such as {SAMPLE_LENGTHS}, got {cls!r}")
    pattern = _SAMPLE_RE.format(cl=re.escape(_fmt_cl(cl)) + (r"(\.0)?" if cl == int(cl) else ""))
    hashes = dict(HASHES if hashes is None else hashes)
    extract = ExtractMembers(pattern, _keyed_dir("samples", hashes, "samples.zip"),
                             what=f"samples of correlation length {_fmt_cl(cl)} (available: {SAMPLE_LENGTHS})")
    paths = _fetch(make_registry(hashes, url), "samples.zip", processor=extract, progress=progress)
    paths = sorted(paths, key=lambda p: int(re.search(r"_v(\d+)\.npy$", p.name).group(1)))
    out = []
    for p in paths:
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"{p.name}: {err} (loaded with allow_pickle=False: "
                             "object arrays are refused)") from None
        if arr.ndim != 2 or arr.dtype.kind != "f":
            raise ValueError(f"{p.name}: expected a 2-D float array, got {arr.dtype} {arr.shape}")
        out.append(arr)
    return out


# --------------------------------------------------------------------------------------------
# CLI: backdrop-repro fetch dataset|samples
# --------------------------------------------------------------------------------------------
def _cmd_fetch(args: argparse.Namespace) -> None:
    progress = not args.no_progress
    if args.what == "dataset":
        ds = fetch_paper_dataset(progress=progress)
        counts = np.bincount(np.asarray(ds.labels), minlength=len(ds.class_names)).tolist()
        print(f"paper dataset: {len(ds.labels)} images of {ds.images.shape[1]}x{ds.images.shape[2]}, "
              f"classes {dict(ds.class_names)}, per class {counts}; cached in {_paper_dir(HASHES)}")
    else:
        for cl in args.cls or SAMPLE_LENGTHS:
            xs = fetch_samples(cl, progress=progress)
            print(f"correlation length {_fmt_cl(cl)}: {len(xs)} samples of shape {xs[0].shape} "
                  f"in {Path(xs[0].filename).parent}")


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro fetch dataset|samples [--cls CL ...] [--no-progress]``."""
    p = subparsers.add_parser(
        "fetch", help="download the authors' Zenodo data (md5-verified, cached; needs network)",
        description=f"Download from Zenodo (DOI {DOI}) or from the mirror in ${URL_ENV}. "
                    "Offline? `backdrop-repro generate --recipe paper` builds the same dataset locally.")
    p.add_argument("what", choices=("dataset", "samples"),
                   help="dataset: the paper's 4-class dataset (dataset.zip, 386 MB); "
                        "samples: individual GP samples (samples.zip, 1.6 GB)")
    p.add_argument("--cls", type=float, action="append",
                   help=f"correlation length of the samples (repeatable; default all of {SAMPLE_LENGTHS})")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(func=_cmd_fetch)
