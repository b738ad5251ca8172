"""The package's shared idioms, written once: argument checks, torch threads, the progress switch,
named seed streams, content keys and the writability check.

Every module that checks an argument, sets torch's thread count, shows a tqdm bar, derives a
random stream from a seed, keys something by its content or writes into a folder uses these,
so each idea has one policy:

* **argument checks** (:func:`is_int`, :func:`is_real`, :func:`check_int`): numpy scalars are
  accepted everywhere (``np.int64(3)`` is an int, ``np.float32(0.5)`` a real), bools never;
* **threads** (:func:`torch_threads`): set for a block, the previous count restored after;
* **progress** (:func:`tqdm_disable`): ``progress=False`` or ``TQDM_DISABLE=1`` silences a bar;
  ``progress=True`` shows it on a terminal (tqdm's ``disable=None``);
* **seed streams** (:func:`seed_sequence`, :func:`torch_generator`): one named stream per use of
  a seed; the salts are those of the committed runs, so changing one changes every recorded run;
* **content keys** (:func:`content_key`): a hex prefix of the sha256 of a JSON-able object's
  canonical JSON (sorted keys); the callers' lengths are part of their records' names;
* **writability** (:func:`check_writable`): create a folder and prove it writable with a probe;
* **devices** (:func:`check_device`): a torch device name checked (spelling, availability) before
  any work, one line naming it and what to use instead;
* **members** (:func:`check_members`): values that must come from a fixed set (seeds of a profile).

Imports nothing from the package (torch only inside the functions that need it).

Example
-------
>>> check_int("jobs", 2, low=1)
2
>>> content_key({"b": 1, "a": [1, 2]}, 8)
'3813f940'
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import numbers
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

__all__ = ["is_int", "is_real", "check_int", "torch_threads", "tqdm_disable", "SEED_STREAMS", "seed_sequence",
           "torch_generator", "content_key", "check_writable", "PROBE_PREFIX", "check_device",
           "check_members", "DEVICE_AUTO", "check_labels", "resolve_device", "OPTIMIZERS", "check_optim_real",
           "check_optimizer"]


# ----------------------------------------------------------------------------------- argument checks
def is_int(x: Any) -> bool:
    """True for Python and numpy integers (never bools)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def is_real(x: Any) -> bool:
    """True for Python and numpy integers and floats (never bools)."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def check_int(name: str, value: Any, low: Optional[int] = None, allow_none: bool = False) -> Optional[int]:
    """``int(value)`` if it is an integer ``>= low`` (or None with ``allow_none``), else ``ValueError``
    naming the argument and the accepted range. Example: ``check_int("jobs", np.int64(2), low=1) == 2``."""
    if value is None and allow_none:
        return None
    if not is_int(value) or (low is not None and value < low):
        accepted = "an int" + (f" >= {low}" if low is not None else "") + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return int(value)


#: the optimisers :func:`backdrop_repro.train.make_optimizer` builds
OPTIMIZERS = ("adam", "sgd")
#: the accepted values of every real optimiser setting: (test, words for the error message)
OPTIM_REALS = {"lr": (lambda v: v > 0, "a real > 0"), "weight_decay": (lambda v: v >= 0, "a real >= 0"),
               "momentum": (lambda v: 0 <= v < 1, "a real in [0, 1)")}


def check_optim_real(kind: str, value: Any, name: Optional[str] = None) -> float:
    """``float(value)`` if it is an accepted ``kind`` (``lr``, ``weight_decay``, ``momentum``): Python
    or numpy numbers, never bools; else a one-line ``ValueError`` naming ``name`` (default ``kind``).
    Example: ``check_optim_real("lr", np.float32(0.5)) == 0.5``."""
    ok, accepted = OPTIM_REALS[kind]
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and ok(value)):
        raise ValueError(f"{name or kind} must be {accepted}, got {value!r}")
    return float(value)


def check_optimizer(obj: Any) -> None:
    """The one check of an optimiser's settings, for any frozen dataclass with the fields ``optimizer``
    (one of :data:`OPTIMIZERS`), ``lr``, ``weight_decay`` and ``momentum``: numpy scalars are stored as
    Python numbers; a bad value raises a one-line ``ValueError`` naming the field and what it accepts.
    Used by ``profiles.OptimSection`` and ``train.TrainConfig``."""
    if not (isinstance(obj.optimizer, str) and obj.optimizer in OPTIMIZERS):
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {obj.optimizer!r}")
    object.__setattr__(obj, "optimizer", str(obj.optimizer))
    for name in OPTIM_REALS:
        object.__setattr__(obj, name, check_optim_real(name, getattr(obj, name)))


def check_members(name: str, values: Any, allowed: Any, hint: str = "") -> list:
    """``list(values)`` if every value is in ``allowed``, else ``ValueError`` naming the strays and
    the allowed set (then ``hint``). Example: ``check_members("--seeds", [0, 9], (0, 1))`` raises."""
    values, allowed = list(values), list(allowed)
    stray = [v for v in values if v not in allowed]
    if stray:
        raise ValueError(f"{name} {stray} not among {allowed}" + (f"; {hint}" if hint else ""))
    return values


def check_labels(labels: Any, name: str = "labels", n_classes: Optional[int] = None) -> np.ndarray:
    """Class labels as an int64 array, else one ``ValueError`` naming ``name``: every label must be an
    integer (integer dtype, bools, or floats of integer value such as ``1.0``: the rule of
    :func:`backdrop_repro.auc.exact_auc`) in ``[0, n_classes)`` (``n_classes`` None: ``>= 0``).
    A fractional label is never truncated. Example: ``check_labels([0, 1.0, 2]).tolist() == [0, 1, 2]``.
    """
    try:
        import torch

        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(labels)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be integer class labels, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be integer class labels, got complex values")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) if arr.size else np.zeros(0, bool)
        if bad.any():
            raise ValueError(f"{name} must be integer class labels, got {arr[bad].ravel()[:3].tolist()} (a fractional "
                             "or non-finite label is never truncated)")
    out = arr.astype(np.int64)
    stray = out[(out < 0) | (out >= (n_classes if n_classes is not None else np.iinfo(np.int64).max))]
    if stray.size:
        top = n_classes if n_classes is not None else "inf"
        raise ValueError(f"{name} must be class labels in [0, {top}), got {stray.ravel()[:3].tolist()}")
    return out


# ----------------------------------------------------------------------------------- devices
#: the device name that picks CUDA when there is one, else the CPU
DEVICE_AUTO = "auto"


def check_device(device: Optional[str], what: str = "--device") -> Optional[str]:
    """``device`` (None and ``"auto"`` pass through) if torch can use it on this machine, else one
    ``ValueError`` naming it and what to use instead: a misspelt name (``"cdua"``), CUDA (or MPS)
    on a machine without one, ``cuda:3`` on a machine with two GPUs. Call it before any work
    (datasets, training). Example: ``check_device("cpu") == "cpu"``.
    """
    if device is None or device == DEVICE_AUTO:
        return device
    import torch

    if not isinstance(device, str):
        raise ValueError(f"{what} must be a device name such as 'cpu', 'cuda', 'cuda:0' or 'auto', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{what} {device!r} is not a torch device; use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"{what} {device}: no CUDA device on this machine (torch {torch.__version__}); "
                             "use --device cpu (or auto)")
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"{what} {device}: this machine has {n} CUDA device(s), cuda:0..cuda:{n - 1}")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{what} {device}: no MPS device on this machine; use --device cpu (or auto)")
    elif dev.type != "cpu":
        raise ValueError(f"{what} {device!r}: only cpu, cuda, cuda:N, mps and auto are supported")
    return device


def resolve_device(device: Optional[str], default: Optional[str] = None, what: str = "--device") -> str:
    """The one resolution of a device name: ``device``, else ``default``, else ``"auto"``, checked
    (:func:`check_device`); ``"auto"`` becomes ``"cuda"`` where torch sees a GPU, else ``"cpu"``.
    Every runner (training loop, run core, GPU window) resolves through here.
    Example: ``resolve_device(None, "cpu") == "cpu"``.
    """
    d = check_device(device or default or DEVICE_AUTO, what)
    if d == DEVICE_AUTO:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return d


# ----------------------------------------------------------------------------------- threads
@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None or 0: leave the count as it is), then restore it.

    Example: ``with torch_threads(1): train(...)``.
    """
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------- progress
def _env_disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


def tqdm_disable(progress: bool) -> Optional[bool]:
    """tqdm's ``disable`` for a ``progress`` switch: True when ``progress`` is off or ``TQDM_DISABLE``
    is set, else None (tqdm then shows the bar on a terminal only).

    Example: ``tqdm(items, disable=tqdm_disable(progress))``.
    """
    return True if not progress or _env_disabled() else None


# ----------------------------------------------------------------------------------- seed streams
#: the named random streams derived from one run's seed: ``("salt", s)`` is
#: ``SeedSequence([seed, s])``; ``("offset", k)`` is a torch generator seeded with ``seed + k``.
#: These values made the committed run records: keep them.
SEED_STREAMS: dict[str, tuple[str, int]] = {
    "gp_masks": ("offset", 10 ** 6),     # the backdrop masks of a GP-sweep network
    "nd_split": ("salt", 7041),          # the non-decomposable experiment's data split
    "nd_masks": ("salt", 991),           # its per-sample masks and minibatch order
    "nd_fidelity": ("salt", 5003),       # its gradient-fidelity draws
}


def _stream(name: str) -> tuple[str, int]:
    if name not in SEED_STREAMS:
        raise ValueError(f"stream must be one of {tuple(SEED_STREAMS)}, got {name!r}")
    return SEED_STREAMS[name]


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """``SeedSequence([seed, salt])`` of a ``("salt", ...)`` stream. Example: ``seed_sequence(0, "nd_split")``."""
    kind, salt = _stream(stream)
    if kind != "salt":
        raise ValueError(f"stream {stream!r} is a torch generator stream: use torch_generator")
    return np.random.SeedSequence([int(seed), salt])


def torch_generator(seed: int, stream: str) -> "Any":
    """A ``torch.Generator`` of the named stream of ``seed``. Example: ``torch_generator(3, "gp_masks")``."""
    import torch

    kind, value = _stream(stream)
    start = int(seed) + value if kind == "offset" else int(seed_sequence(seed, stream).generate_state(1)[0])
    return torch.Generator().manual_seed(start)


# ----------------------------------------------------------------------------------- content keys
def content_key(obj: Any, length: int) -> str:
    """The first ``length`` hex digits of the sha256 of ``json.dumps(obj, sort_keys=True)``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:length]


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
