"""Reading the authors' pickle safely: the restricted unpickler and the dataset's layout check.

The authors stored the Zenodo dataset (:mod:`.zenodo`) as a Python pickle, and unpickling
untrusted bytes can run arbitrary code, so it is read with :class:`RestrictedUnpickler`: a
pure-Python unpickler that resolves only the handful of numpy globals an array needs, validates
every dtype and array state before numpy sees it, and refuses anything else *before* calling it.
:func:`parse_authors_dataset` then checks the unpickled object against a recipe. Imports nothing
from the package; :mod:`.zenodo` uses it.
"""
from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path
from typing import IO, Any, Optional

import numpy as np

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "safe_load_pickle", "pickle_member_name",
           "parse_authors_dataset", "fmt_cl"]


class UnsafePickleError(ValueError):
    """The pickle asks for something the restricted unpickler does not allow."""


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
        state = self.stack[-1]          # type: ignore[attr-defined]  # the pure-Python unpickler's stack
        inst = self.stack[-2]           # type: ignore[attr-defined]
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
        pickle._Unpickler.load_build(self)          # type: ignore[attr-defined]

    dispatch[pickle.BUILD[0]] = _load_build_checked     # type: ignore[assignment]


class _BoundedFile:
    """A read-only file whose ``read(n)`` refuses ``n`` beyond the bytes left in the file: a length
    field of a damaged or hostile pickle (``BINBYTES8``, ``FRAME``...) cannot make the unpickler
    allocate more than the file holds (it would end in a ``MemoryError`` with no message)."""

    def __init__(self, f: IO[bytes], source: str):
        self.f, self.source = f, source
        self.size = os.fstat(f.fileno()).st_size

    def read(self, n: int = -1) -> bytes:
        if n is not None and n >= 0 and n > self.size - self.f.tell():
            raise UnsafePickleError(f"{self.source}: a length field asks for {n} bytes at offset {self.f.tell()}, "
                                    f"but the file holds only {self.size} bytes: the pickle is damaged or "
                                    "crafted; delete it and download it again")
        return self.f.read(n)

    def readline(self, *args: Any) -> bytes:
        return self.f.readline(*args)

    def readinto(self, buf: Any) -> int:
        if len(buf) > self.size - self.f.tell():
            self.read(len(buf))
        return self.f.readinto(buf)     # type: ignore[attr-defined]  # a binary file


def safe_load_pickle(path: os.PathLike, source: Optional[str] = None) -> Any:
    """Load a pickle of numpy arrays/ints/strings/lists/dicts with :class:`RestrictedUnpickler`.

    Raises ``ValueError`` (:class:`UnsafePickleError` for refused content) naming ``source``.
    Example: ``pairs, names = safe_load_pickle("GP_9.5-10+80-140.gp")``.
    """
    source = source or Path(path).name
    with open(path, "rb") as f:
        try:
            obj = RestrictedUnpickler(_BoundedFile(f, source), source=source).load()  # type: ignore[arg-type]
        except UnsafePickleError:
            raise
        except MemoryError:
            raise ValueError(f"{source}: loading it needs more memory than is available (a damaged length "
                             "field?); delete it and download it again") from None
        except (pickle.UnpicklingError, EOFError, TypeError, IndexError, KeyError, AttributeError) as err:
            raise ValueError(f"{source} is not a readable pickle ({type(err).__name__}: {err})") from None
        if f.read(1):
            raise ValueError(f"{source}: trailing bytes after the pickle")
    return obj


# --------------------------------------------------------------------------------------------
# the layout of the authors' dataset pickle
# --------------------------------------------------------------------------------------------
def fmt_cl(cl: float) -> str:
    """Correlation length as the authors wrote it in names: ``10`` not ``10.0``, ``9.5``."""
    return str(int(cl)) if float(cl) == int(cl) else str(float(cl))


def pickle_member_name(recipe: Any) -> str:
    """Base name of the pickle inside ``dataset.zip`` for ``recipe``: ``GP_9.5-10+80-140.gp``."""
    return "GP_" + "+".join("-".join(fmt_cl(c) for c in scale) for scale in recipe.scales) + ".gp"


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
