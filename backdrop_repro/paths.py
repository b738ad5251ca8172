"""Paths, atomic writes and run metadata shared by every module.

Environment variables
---------------------
``BACKDROP_REPRO_DATA``
    Data cache (generated and downloaded data). Default: ``pooch.os_cache("backdrop-repro")``.
``BACKDROP_REPRO_OUTPUT``
    Root under which ``figures/`` and ``results/`` are written. Default: the project checkout
    (the folder holding ``pyproject.toml`` next to the package) or, for a non-editable install,
    the current directory. ``make test`` points it at ``.test-out/`` so tests never touch the
    committed figures and results.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .profiles import check as check_profile  # noqa: F401  (re-exported: paths take profile names)


def data_dir() -> Path:
    """The data cache directory (created if missing)."""
    env = os.environ.get("BACKDROP_REPRO_DATA")
    if env:
        path = Path(env)
    else:
        import pooch

        path = Path(pooch.os_cache("backdrop-repro"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_root() -> Path:
    """Root folder for ``figures/`` and ``results/`` (see module docstring)."""
    env = os.environ.get("BACKDROP_REPRO_OUTPUT")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").exists():
        return checkout
    return Path.cwd()


def figures_dir() -> Path:
    path = output_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(profile: str) -> Path:
    path = output_root() / "results" / check_profile(profile)
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp creates 0600; give the file the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
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


def versions() -> dict[str, str]:
    """Versions of the software a result depends on (stored in every results JSON)."""
    import numpy
    import scipy
    import torch

    from . import __version__

    return {
        "backdrop_repro": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}",
    }
