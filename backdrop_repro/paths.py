"""Folders and atomic writes: where the package reads and writes, and how a write never leaves half a file.

The machine a result was made on (CPU, versions, memory and disk) is :mod:`.machine`; argument
checks are :mod:`.checks`.

Environment variables
---------------------
``BACKDROP_REPRO_DATA``
    Data cache (generated and downloaded data). Default: ``pooch.os_cache("backdrop-repro")``.
``BACKDROP_REPRO_OUTPUT``
    Root under which ``figures/`` and ``results/`` are written. Default: the project checkout
    (the folder holding ``pyproject.toml`` next to the package) or, for a non-editable install,
    the current directory. ``make test`` points it at ``.test-out/`` so tests never touch the
    committed figures and results.

A relative value of either (and of ``BACKDROP_REPRO_NOTEBOOKS``) is made absolute once, against
the working directory at start-up (:func:`absolute_env`: when this module is imported, and again
by the CLI and the notebook runner), and written back to ``os.environ``, so the notebook kernels
(which run in ``notebooks/``) inherit the same absolute folders.

Temporary files and folder locks
--------------------------------
Every temporary file of an atomic write starts with :data:`TMP_PREFIX` (``.backdrop-tmp-``) and
carries its writer's process id (``.pid<N>.``), so one killed by SIGKILL is recognisable:
:func:`clean_orphans` removes them (all of them while the caller holds the folder's
:func:`folder_lock`; else those whose writer is dead, and the others once older than
:data:`ORPHAN_AGE_S`). :func:`clean_package_orphans` does it in every folder the package writes
(``figures/``, ``results/*``, the checkpoints); the sweep, the notebook runner and the main job
call it when they start. Writers of shared caches (datasets, Zenodo downloads) hold
:func:`folder_lock` (an advisory ``flock`` on the folder itself; a no-op where ``fcntl`` does
not exist), so two processes never write one folder at the same time.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .machine import free_disk

if TYPE_CHECKING:
    from .profiles import Profile

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, readers still verify hashes
    fcntl = None  # type: ignore[assignment]


#: environment variables holding folders: made absolute once, at start-up (:func:`absolute_env`)
PATH_ENV = ("BACKDROP_REPRO_OUTPUT", "BACKDROP_REPRO_DATA", "BACKDROP_REPRO_NOTEBOOKS")


def absolute_env() -> dict[str, str]:
    """Make the folders in :data:`PATH_ENV` absolute (``~`` expanded, against the current working
    directory) in ``os.environ``; returns the variables that are set. Idempotent: an absolute
    value stays as it is. Child processes (notebook kernels, workers) inherit the absolute values.
    Example: with ``BACKDROP_REPRO_OUTPUT=out`` in ``/home/me``, it becomes ``/home/me/out``.
    """
    out = {}
    for name in PATH_ENV:
        value = os.environ.get(name)
        if value:
            absolute = os.path.abspath(os.path.expanduser(value))
            if absolute != value:
                os.environ[name] = absolute
            out[name] = absolute
    return out


absolute_env()      # at start-up: before anything can change the working directory


def data_dir() -> Path:
    """The data cache directory (created if missing). ``BACKDROP_REPRO_DATA`` naming a file or a
    dangling symbolic link is a ``NotADirectoryError`` naming the variable and the path."""
    env = os.environ.get("BACKDROP_REPRO_DATA")
    if env:
        path = Path(env)
        if path.is_symlink() and not path.exists():
            raise NotADirectoryError(f"BACKDROP_REPRO_DATA={env} is a symbolic link to {os.readlink(path)}, which "
                                     "does not exist; point the variable at a folder (or create the link's target)")
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"BACKDROP_REPRO_DATA={env} is a file, not a folder; point the variable at a "
                                     "folder for the data cache")
    else:
        import pooch

        path = Path(pooch.os_cache("backdrop-repro"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_inside(path: str | os.PathLike, root: str | os.PathLike, what: str = "cache entry") -> Path:
    """``path`` if it resolves inside ``root`` (no symbolic link on the way leads out of it), else a
    ``ValueError`` naming the link's target: a cache never writes through a link into a folder that
    is not its own (a user's ``images.npy`` there would be overwritten). Example:
    ``check_inside(data_dir() / "gp" / key, data_dir())``."""
    path, root = Path(path), Path(root)
    real, top = path.resolve(), root.resolve()
    if real != top and top not in real.parents:
        raise ValueError(f"the {what} {path} is a symbolic link (or inside one) to {real}, outside the cache {root}: "
                         "the cache never writes there; remove the link (the folder it points at is left as it is)")
    return path


def output_root() -> Path:
    """Root folder for ``figures/`` and ``results/`` (see module docstring)."""
    env = os.environ.get("BACKDROP_REPRO_OUTPUT")
    if env:
        return Path(env)
    return checkout_root() or Path.cwd()


def checkout_root() -> "Path | None":
    """The source checkout this package runs from (it holds ``pyproject.toml``), or None when installed."""
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / "pyproject.toml").exists() else None


def figures_dir() -> Path:
    path = output_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(profile: str | Profile) -> Path:
    """``results/<profile>`` (made if missing). A :class:`~backdrop_repro.profiles.Profile` gives its own
    name (no look-up: a worker process needs no table); a name must be in the table."""
    from .profiles import Profile, check

    path = output_root() / "results" / (profile.name if isinstance(profile, Profile) else check(profile))
    path.mkdir(parents=True, exist_ok=True)
    return path


#: prefix of every temporary file this package writes (atomic writes, probes)
TMP_PREFIX = ".backdrop-tmp-"
#: a temporary file older than this (seconds) is an orphan even if no lock says so
ORPHAN_AGE_S = 15 * 60


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Example
    -------
    >>> with atomic_path(tmp / "x.npy") as t:   # doctest: +SKIP
    ...     np.save(t, arr)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.pid{os.getpid()}.",
                                    suffix=suffix or path.suffix or ".tmp")
    except OSError as err:                  # a read-only or immutable folder: name it, not the temp file
        raise _write_error(err, path, f"cannot write {path.name} in the folder {path.parent}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            yield tmp
            if tmp.exists():  # mkstemp creates 0600; give the file the usual umask-based mode
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except OSError as err:              # a full disk, a quota, an immutable file: name the file written
            if err.filename not in (None, str(tmp)) or err.errno is None or type(err).__module__ != "builtins":
                raise                       # about another file (the writer read one), or the package's own error
            raise _write_error(err, path, f"cannot write {path}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_error(err: OSError, path: Path, what: str) -> OSError:
    """``err`` (same class and errno) as one line, ``what`` naming the file written (or its folder) instead of
    the temporary file: ``"[Errno N] <what> (<strerror>)"``, plus the free space on a full disk."""
    import errno

    why = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        try:
            why += f", {free_disk(path.parent) / 2 ** 20:.0f} MB free there: free some space or write elsewhere"
        except OSError:
            pass
    return type(err)(err.errno, f"{what} ({why})")     # the text names it: no second, quoted filename


_held = threading.local()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``folder`` (created if missing) for the ``with`` block.

    The lock is ``flock`` on the folder itself (no lock file), released when the block ends or
    the process dies; it is re-entrant within one thread. Other processes and threads wait.
    Example: ``with folder_lock(cache / "gp" / key): write_dataset(...)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    held = _held.__dict__.setdefault("paths", {})
    if fcntl is None or held.get(key):
        held[key] = held.get(key, 0) + 1
        try:
            yield folder
        finally:
            held[key] -= 1
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held[key] = 1
        try:
            yield folder
        finally:
            held[key] = 0
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holds_lock(folder: str | os.PathLike) -> bool:
    """Whether this thread holds :func:`folder_lock` on ``folder``."""
    return bool(_held.__dict__.get("paths", {}).get(os.path.realpath(folder)))


#: the writer's process id in a temporary file's name (the last ``.pid<N>.`` before mkstemp's 8 characters)
_PID = re.compile(r"\.pid(\d+)\.[A-Za-z0-9_]{8}")


def writer_pid(name: str) -> int | None:
    """The process id recorded in a temporary file's name, or None (older names carry none)."""
    found = _PID.findall(name)
    return int(found[-1]) if found else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_orphans(folder: str | os.PathLike, older_than_s: float | None = ORPHAN_AGE_S,
                  extra_prefixes: tuple[str, ...] = ()) -> list[Path]:
    """Delete temporary files (names starting with :data:`TMP_PREFIX` or ``extra_prefixes``) in ``folder``.

    ``older_than_s=None`` removes all of them: only safe while holding ``folder_lock(folder)``
    (no writer can own one then; :func:`check_writable`'s probe, made before the lock, tolerates
    losing its file), so it raises ``RuntimeError`` otherwise. Otherwise a file whose
    writer (the process id in its name, :func:`writer_pid`) is dead goes at once, any other once
    older than ``older_than_s``. Returns the removed paths.
    Example: ``with folder_lock(d): clean_orphans(d, None)``.
    """
    folder = Path(folder)
    if older_than_s is None and not holds_lock(folder):
        raise RuntimeError(f"clean_orphans({folder}, None) needs folder_lock({folder}) held")
    if not folder.is_dir():
        return []
    now = time.time()
    removed = []
    for p in folder.iterdir():
        if not p.name.startswith((TMP_PREFIX,) + tuple(extra_prefixes)):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                continue
            pid = writer_pid(p.name) if p.name.startswith(TMP_PREFIX) else None
            dead = pid is not None and not _alive(pid)
            if older_than_s is not None and not dead and now - p.lstat().st_mtime < older_than_s:
                continue
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            continue
    return removed


def clean_package_orphans(profile: str | None = None) -> list[Path]:
    """:func:`clean_orphans` (no lock: dead writers' files, and any older than :data:`ORPHAN_AGE_S`)
    in every folder the package writes outside the dataset caches (which clean themselves under
    their lock): ``figures/``, ``results/<profile>/`` (every profile when None) with its
    ``gp_runs/`` and ``notebooks/``, and ``<data cache>/checkpoints/*``. Returns the removed paths.
    Example: ``clean_package_orphans("default")`` at the start of a sweep.
    """
    root = output_root()
    folders = [root / "figures"]
    results = root / "results"
    profile_dirs = [results / profile] if profile else (sorted(results.iterdir()) if results.is_dir() else [])
    for d in profile_dirs:
        folders += [d, d / "gp_runs", d / "notebooks"]
    env = os.environ.get("BACKDROP_REPRO_DATA")
    ckpt = (Path(env) if env else data_dir()) / "checkpoints"
    folders.append(ckpt)
    if ckpt.is_dir():
        folders += sorted(p for p in ckpt.iterdir() if p.is_dir() and not p.is_symlink())
    removed = []
    for folder in folders:
        try:
            removed += clean_orphans(folder)
        except OSError:
            continue
    return removed


def _finite(o: Any) -> Any:
    """``obj`` with every non-finite float replaced by its name as a string ("nan", "inf", "-inf"):
    strict JSON has no NaN, and a diverged run's record must still be readable everywhere."""
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON atomically (non-finite floats become strings)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(obj), indent=2, sort_keys=False, default=_json_default,
                                  allow_nan=False) + "\n")
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ----------------------------------------------------------------------------------- writability
#: prefix of the probe file (the package's temporary-file prefix: orphan clean-ups remove it)
PROBE_PREFIX = ".backdrop-tmp-probe-"


def check_writable(folder: "str | os.PathLike", what: str = "folder",
                   hint: str = "choose another folder or fix its permissions") -> Path:
    """Create ``folder`` if needed and prove it writable with a probe file; else one clear error.

    Raises ``NotADirectoryError`` (a path component is a file) or ``PermissionError`` (read-only),
    both naming the path, then ``hint``. Example: ``check_writable(args.out, "--out")``.
    """
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists() and not p.is_dir():
            raise NotADirectoryError(f"{what} {folder}: {p} exists and is not a folder; choose a folder path")
        if p.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f"{PROBE_PREFIX}pid{os.getpid()}.")
        os.close(fd)
        try:
            os.unlink(probe)
        except FileNotFoundError:       # a concurrent clean_orphans(folder, None) took it: still proven writable
            pass
    except PermissionError as err:
        raise PermissionError(f"{what} {folder} is not writable ({err.strerror or err}); {hint}") from None
    except OSError as err:
        raise OSError(f"{what} {folder} cannot be written ({err.strerror or err})") from None
    return folder
