"""The authors' Zenodo record (DOI 10.5281/zenodo.1252464) through pooch, loaded safely.

Three data routes lead to the same on-disk format (:func:`backdrop_repro.data.files.read_dataset`):

1. generate locally (``backdrop-repro generate --profile paper --method faithful``: the same recipe,
   not the same pixels; no network, the default);
2. download the paper's own dataset from Zenodo (``backdrop-repro fetch dataset``);
3. the same from a mirror: set ``BACKDROP_REPRO_ZENODO_URL`` to a folder URL holding
   ``dataset.zip`` / ``samples.zip`` (the tests serve one from 127.0.0.1).

Every download is checked against the md5 published on the record (pooch downloads to a
temporary file and moves it into the cache only when the hash matches). The authors stored
the dataset as a Python pickle, and unpickling untrusted bytes can run arbitrary code, so it
is read with :class:`~.safe_pickle.RestrictedUnpickler` (:mod:`.safe_pickle`): a pure-Python unpickler that
resolves only the handful of numpy globals an array needs, validates every dtype and array state
before numpy sees it, and refuses anything else *before* calling it. The result is converted once to the
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
import re
import shutil
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..checks import tqdm_disable
from ..machine import free_disk
from ..paths import atomic_path, check_inside, clean_orphans, data_dir, folder_lock
from .safe_pickle import fmt_cl, parse_authors_dataset, pickle_member_name, safe_load_pickle

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
#: the command that builds the paper's dataset locally: the same recipe (the paper's construction),
#: not the same pixels (those are the authors' random draws)
OFFLINE_COMMAND = "backdrop-repro generate --profile paper --method faithful"
OFFLINE_HINT = (f"the default main job needs no network: `{OFFLINE_COMMAND}` builds a dataset of the same "
                "recipe locally (the same recipe, not the same pixels)")


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


def check_url(url: str) -> str:
    """``url`` if it is an ``http(s)://host/...`` folder URL, else one ``ValueError`` naming it (and
    ``BACKDROP_REPRO_ZENODO_URL``): downloads go through HTTP only, so a mirror given as ``ftp://``,
    ``file://`` or without a scheme is a wrong setting, not a network failure.
    Example: ``check_url("https://zenodo.org/records/1252464/files/")``."""
    from urllib.parse import urlparse

    parts = urlparse(str(url))
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the download URL {url!r} (set by {URL_ENV} or url=) must be an http:// or https:// "
                         f"folder URL such as {DEFAULT_URL}; other schemes are not supported")
    return str(url)


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
    url = check_url(url or base_url())
    return pooch.create(path=Path(path) if path else cache_dir(), base_url=url if url.endswith("/") else url + "/",
                        registry=hashes, retry_if_failed=retries)


def _fetch(registry, fname: str, processor: Optional[Callable] = None, progress: bool = True) -> Any:
    """``registry.fetch`` with one-line, actionable errors for network problems."""
    import pooch
    import requests

    progress = tqdm_disable(progress) is None
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
    except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema) as err:
        raise ValueError(f"the download URL {url} is not valid ({type(err).__name__}); check {URL_ENV}") from None
    except requests.exceptions.RequestException as err:
        raise ConnectionError(f"cannot reach {url} ({type(err).__name__}: network unreachable?); "
                              f"{OFFLINE_HINT}") from None
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise
        mirror = os.environ.get(URL_ENV)
        where = (f"the mirror set by {URL_ENV}={mirror} serves other content (an HTML page, another file?): "
                 f"check {URL_ENV}" if mirror else "the download was damaged or the record changed; try again")
        raise ValueError(f"{fname} from {url} does not match its published checksum "
                         f"{registry.registry.get(fname)}: {where}") from None


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

    def members(self, zip_path: str | os.PathLike) -> list[str]:
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
        check_inside(self.dest, Path(fname).parent, "extraction folder")
        self.dest.mkdir(parents=True, exist_ok=True)
        out = []
        with zipfile.ZipFile(fname) as zf:
            todo = [n for n in found if action in ("download", "update") or not (self.dest / Path(n).name).exists()]
            need = sum(zf.getinfo(n).file_size for n in todo)
            free = free_disk(self.dest)
            if need > free:                 # the sizes the zip declares, checked before a byte is written
                raise OSError(f"{Path(fname).name}: extracting {len(todo)} member(s) needs {need / 2 ** 20:.0f} MiB "
                              f"(as the zip declares) and {self.dest} has {free / 2 ** 20:.0f} MiB free; free space or "
                              "move the cache with BACKDROP_REPRO_DATA")
            for name in found:
                target = self.dest / Path(name).name
                if action in ("download", "update") or not target.exists():
                    try:
                        with atomic_path(target) as tmp, zf.open(name) as src, open(tmp, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 22)   # zipfile checks the CRC at EOF
                    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
                        raise ValueError(f"{Path(fname).name}: member {name} is damaged ({err})") from None
                out.append(target)
        return out


# --------------------------------------------------------------------------------------------
# the paper's dataset (its pickle is read and checked in safe_pickle.py)
# --------------------------------------------------------------------------------------------
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
    """The paper's dataset from Zenodo as a :class:`~backdrop_repro.data.files.GPDataset`.

    First call: download ``dataset.zip`` (md5-verified, pooch progress bar if ``progress``),
    extract the pickle, load it with :class:`RestrictedUnpickler`, check it against ``recipe``
    (default ``datasets.PAPER``: 4 classes '9.5-80', '10-80', '9.5-140', '10-140' of 1024²
    float32 images), and write it once in the project's format under
    ``<cache>/zenodo/paper-<md5>/`` (the extracted pickle is then deleted). Later calls only
    memory-map that folder (no network, no request). ``hashes``/``url`` override the registry
    (mirrors, tests). Images: (N, size, size) float32; labels (N,) int64.

    Raises ``ConnectionError`` (offline: suggests :data:`OFFLINE_COMMAND`),
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
        check_inside(target, cache_dir())
        datasets.write_dataset(target, images, labels, meta)
    finally:
        Path(pickle_path).unlink(missing_ok=True)
    return datasets.read_dataset(target, mmap=True)


def _recipe_dict(recipe: Any, per_class: int) -> dict:
    """The recipe the data were checked against, with the ``per_class`` actually found."""
    import dataclasses

    if hasattr(recipe, "replace") and hasattr(recipe, "to_dict"):
        return recipe.replace(per_class=per_class).to_dict()
    d = dataclasses.asdict(recipe) if dataclasses.is_dataclass(recipe) and not isinstance(recipe, type) else dict(vars(recipe))
    return {**d, "per_class": per_class}


# --------------------------------------------------------------------------------------------
# the individual samples
# --------------------------------------------------------------------------------------------
SAMPLE_LENGTHS = (9.5, 10.0, 60.0, 80.0, 140.0, 200.0)
_SAMPLE_RE = r"(^|/)final_size-\d+_corr-{cl}_v(\d+)\.npy$"


def check_sample_length(cl: Any) -> float:
    """``float(cl)`` if ``samples.zip`` holds samples of that correlation length (:data:`SAMPLE_LENGTHS`),
    else one ``ValueError`` listing them. Example: ``check_sample_length(80) == 80.0``."""
    try:
        value = float(cl)
    except (TypeError, ValueError):
        value = math.nan
    if value not in SAMPLE_LENGTHS:
        raise ValueError(f"samples.zip holds no samples of correlation length {cl!r}: choose --cls among "
                         f"{', '.join(fmt_cl(c) for c in SAMPLE_LENGTHS)}")
    return value


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
    check_sample_length(cl)             # before the 1.6 GB download
    pattern = _SAMPLE_RE.format(cl=re.escape(fmt_cl(cl)) + (r"(\.0)?" if cl == int(cl) else ""))
    hashes = dict(HASHES if hashes is None else hashes)
    extract = ExtractMembers(pattern, _keyed_dir("samples", hashes, "samples.zip"),
                             what=f"samples of correlation length {fmt_cl(cl)} (available: {SAMPLE_LENGTHS})")
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
    if args.what == "dataset" and args.cls:
        raise ValueError("--cls applies to `fetch samples` only (the dataset holds its four classes)")
    for cl in args.cls or ():          # every length checked before the first download
        check_sample_length(cl)
    check_url(base_url())
    if args.what == "dataset":
        ds = fetch_paper_dataset(progress=progress)
        counts = np.bincount(np.asarray(ds.labels), minlength=len(ds.class_names)).tolist()
        print(f"paper dataset: {len(ds.labels)} images of {ds.images.shape[1]}x{ds.images.shape[2]}, "
              f"classes {dict(ds.class_names)}, per class {counts}; cached in {_paper_dir(HASHES)}")
    else:
        for cl in args.cls or SAMPLE_LENGTHS:
            xs = fetch_samples(cl, progress=progress)
            print(f"correlation length {fmt_cl(cl)}: {len(xs)} samples of shape {xs[0].shape} "
                  f"in {Path(xs[0].filename).parent}")  # type: ignore[attr-defined]  # memory-mapped


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro fetch dataset|samples [--cls CL ...] [--no-progress]``."""
    p = subparsers.add_parser(
        "fetch", help="download the authors' Zenodo data (md5-verified, cached; needs network)",
        description=f"Download from Zenodo (DOI {DOI}) or from the mirror in ${URL_ENV}. "
                    f"Offline? `{OFFLINE_COMMAND}` builds a dataset of the same recipe locally "
                    "(the same recipe, not the same pixels).")
    p.add_argument("what", choices=("dataset", "samples"),
                   help="dataset: the paper's 4-class dataset (dataset.zip, 386 MB); "
                        "samples: individual GP samples (samples.zip, 1.6 GB)")
    p.add_argument("--cls", type=float, action="append",
                   help=f"correlation length of the samples (repeatable; default all of {SAMPLE_LENGTHS})")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(func=_cmd_fetch)
