"""Argument checks, written once: numbers, labels, devices, the optimiser's settings, the progress switch.

Every module that checks an argument uses these, so each idea has one policy: numpy scalars are
accepted everywhere (``np.int64(3)`` is an int, ``np.float32(0.5)`` a real), bools never; a bad
value is one ``ValueError`` naming the argument and what it accepts. Devices are checked (spelling,
availability) before any work and resolved in one place (:func:`resolve_device`: ``"auto"`` is CUDA
where torch sees a GPU, else the CPU). The optimiser's settings have one check
(:func:`check_optimizer`), used by a profile's ``OptimSection`` and by ``train.TrainConfig``.
``progress=False`` or ``TQDM_DISABLE=1`` silences a bar (:func:`tqdm_disable`).

Imports nothing from the package (torch only inside the functions that need it).

Example
-------
>>> check_int("jobs", 2, low=1)
2
>>> check_optim_real("lr", 0.5)
0.5
"""
from __future__ import annotations

import numbers
import os
from typing import Any, Literal, Optional, overload

import numpy as np

__all__ = ["is_int", "is_real", "check_int", "check_members", "check_labels", "OPTIMIZERS", "check_optim_real",
           "check_optimizer", "DEVICE_AUTO", "check_device", "resolve_device", "tqdm_disable"]


def is_int(x: Any) -> bool:
    """True for Python and numpy integers (never bools)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def is_real(x: Any) -> bool:
    """True for Python and numpy integers and floats (never bools)."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


@overload
def check_int(name: str, value: Any, low: Optional[int] = ..., allow_none: Literal[False] = ...) -> int: ...
@overload
def check_int(name: str, value: Any, low: Optional[int] = ..., allow_none: bool = ...) -> Optional[int]: ...
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
    assert d is not None
    if d == DEVICE_AUTO:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return d


# ----------------------------------------------------------------------------------- progress
def _env_disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


def tqdm_disable(progress: bool) -> Optional[bool]:
    """tqdm's ``disable`` for a ``progress`` switch: True when ``progress`` is off or ``TQDM_DISABLE``
    is set, else None (tqdm then shows the bar on a terminal only).

    Example: ``tqdm(items, disable=tqdm_disable(progress))``.
    """
    return True if not progress or _env_disabled() else None
