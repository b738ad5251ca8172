"""The one reader of run records (GP sweep, learnability), used wherever a record is read.

A run record is the JSON file ``results/<profile>/<gp_runs|learnability>/<key>.json`` a run writes
(:func:`backdrop_repro.experiments.gp_sweep.run_one`, :func:`...learnability.run_one`). Every reader
(the tables, ``collect``, the reproduction check, glance, the GPU window) goes through
:func:`inspect` or :func:`read_record`, which check, before anything uses the record:

* **strict JSON** (``NaN``/``Infinity`` literals refused: the package writes non-finite floats
  as strings) holding an object with a ``config`` object, a ``final`` object and a ``history``
  list of objects; a ``key`` that is the file's name;
* a **diverged run** (``final.failed``, e.g. a non-finite loss) is a *status*, ``"failed"``: it is
  returned, and every table and the comparison show it, none counts it;
* otherwise ``final.test_accuracy`` and every other ``*_accuracy`` are finite numbers in [0, 1]
  (per-scale ones too), losses finite, a confusion matrix square with counts adding up to the
  test set;
* **predictions consistent with the stated figures**: per image a class digit below the number of
  classes, one per test (validation) image, and the share of them that is right (labels
  interleave: label = index % classes) equal to ``test_accuracy`` (``val_accuracy``) to rounding;
  each per-scale accuracy (``<split>_scale_accuracy``: right on that scale's length) and the
  confusion matrix (``<split>_confusion``) equal to what the predictions give;
* **what the reader needs is present**: learnability records carry their test predictions (the
  report pools them).

A record that fails is ``"malformed"``: :func:`inspect` says why (naming the file) and touches
nothing. A record whose ``config`` is not its key's (edited under its old key) is ``"other run"``:
:func:`read_record` names it in a warning and never uses it, and a run that writes its own record
there first keeps it as ``<name>.orig-<n>`` (:func:`keep_unusable`; docs/reliability.md, "An edited
record"). :func:`read_record` returns None for it and, only in a working folder of the package
(the spec's own profile folder under the output root, and only for a file no git checkout
tracks), sets it aside as ``<name>.corrupt`` so the run is trained again. A record in a committed
reference folder or in another profile's folder is never renamed or moved.

A run two profiles share (same key) is trained once: :func:`adopt` is the package's only place that
copies a record from one profile's folder into another's, and the copy says where it came from
(``copied_from``).

Example
-------
>>> inspect(Path("missing.json")).status
'missing'
"""
from __future__ import annotations

import json
import math
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import paths

__all__ = ["STATUSES", "RecordError", "Read", "check_record", "parse", "inspect", "read_record", "may_set_aside",
           "set_aside", "adopt", "keep_unusable"]

#: what :func:`inspect` can say of a record file
STATUSES = ("ok", "failed", "malformed", "missing", "other run")


class RecordError(ValueError):
    """A run record that cannot be used (one line: the file, and what is wrong)."""


@dataclass(frozen=True)
class Read:
    """What :func:`inspect` found at ``path``: ``status`` (one of :data:`STATUSES`), the ``record``
    (for ``ok`` and ``failed``), and ``reason`` (for ``malformed`` and ``other run``)."""

    path: Path
    status: str
    record: Optional[dict[str, Any]] = None
    reason: str = ""


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (records are strict JSON)")


def parse(text: str) -> Any:
    """Strict JSON: ``NaN``, ``Infinity`` and ``-Infinity`` literals are a ``ValueError``."""
    return json.loads(text, parse_constant=_no_constant)


def _real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _unit(name: str, x: Any) -> None:
    if not _real(x) or not math.isfinite(x) or not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be a finite number in [0, 1], got {x!r}")


def _n_classes(config: dict[str, Any]) -> Optional[int]:
    try:
        scales = config["data"]["test"]["scales"]
        n = 1
        for s in scales:
            n *= len(s)
        return n if n >= 1 else None
    except (KeyError, TypeError):
        return None


def _n_test(config: dict[str, Any], n_classes: Optional[int], split: str = "test") -> Optional[int]:
    try:
        per = config["data"][split]["per_class"]
    except (KeyError, TypeError):
        return None
    return per * n_classes if n_classes and isinstance(per, int) and not isinstance(per, bool) else None


def _class_lengths(config: dict[str, Any], n_classes: int) -> Optional[list[list[Any]]]:
    """Per class (label order, the first scale varying fastest: ``Recipe.classes``) its length on each
    scale, or None where the config does not say."""
    try:
        scales = config["data"]["test"]["scales"]
        out = []
        for c in range(n_classes):
            row, rest = [], c
            for s in scales:
                row.append(s[rest % len(s)])
                rest //= len(s)
            out.append(row)
        return out
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def _check_split(final: dict[str, Any], cfg: dict[str, Any], split: str, digits: str, n_cls: Optional[int]) -> None:
    """The ``split``'s predictions (one class digit per image) against the figures ``final`` states of
    them: the accuracy, each per-scale accuracy and the confusion matrix."""
    if n_cls is None:
        return
    bad = next((c for c in digits if not c.isdigit() or int(c) >= n_cls), None)
    if bad is not None:
        raise ValueError(f"{split} prediction {bad!r} is not a class digit 0..{n_cls - 1}")
    n = _n_test(cfg, n_cls, split)
    if n is not None and len(digits) != n:
        raise ValueError(f"{len(digits)} {split} predictions for {n} {split} images")
    if not digits:
        return
    pred = [int(c) for c in digits]
    true = [i % n_cls for i in range(len(pred))]
    tol = 0.5 / len(pred) + 1e-9

    def agree(name: str, stated: Any, right: int) -> None:
        if abs(right / len(pred) - stated) > tol:
            raise ValueError(f"{name} {stated!r} disagrees with its predictions ({right}/{len(pred)} right)")

    if f"{split}_accuracy" in final:
        agree(f"{split}_accuracy", final[f"{split}_accuracy"], sum(p == t for p, t in zip(pred, true)))
    lengths = _class_lengths(cfg, n_cls)
    scale_acc = final.get(f"{split}_scale_accuracy")
    if scale_acc is not None and lengths is not None:
        if len(scale_acc) != len(lengths[0]):
            raise ValueError(f"{split}_scale_accuracy has {len(scale_acc)} scales, the data have {len(lengths[0])}")
        for s, stated in enumerate(scale_acc):
            agree(f"{split}_scale_accuracy[{s}]", stated, sum(lengths[p][s] == lengths[t][s] for p, t in zip(pred, true)))
    conf = final.get(f"{split}_confusion")
    if conf is not None:
        counts = [[0] * n_cls for _ in range(n_cls)]
        for p, t in zip(pred, true):
            counts[t][p] += 1
        if conf != counts:
            raise ValueError(f"{split}_confusion disagrees with its predictions")


def check_record(rec: Any, key: Optional[str] = None) -> str:
    """``"ok"`` or ``"failed"`` (a diverged run) for a usable record, else ``ValueError`` saying what
    is wrong (module docstring). ``key``: the name the record's file has (its ``key`` must match).

    Example: ``check_record({"config": {}, "history": [], "final": {"failed": "loss nan"}}) == "failed"``.
    """
    if not isinstance(rec, dict):
        raise ValueError(f"not a run record (a JSON {type(rec).__name__}, not an object)")
    if not isinstance(rec.get("config"), dict):
        raise ValueError('not a run record (no "config" object)')
    if key is not None and "key" in rec and rec["key"] != key:
        raise ValueError(f'its "key" {rec["key"]!r} is not its file name {key!r}')
    final = rec.get("final")
    if not isinstance(final, dict):
        raise ValueError(f'"final" is {type(final).__name__}, not an object')
    hist = rec.get("history")
    if not isinstance(hist, list) or not all(isinstance(h, dict) for h in hist):
        raise ValueError('"history" is missing or not a list of objects')
    preds = rec.get("predictions")
    if preds is not None and (not isinstance(preds, dict) or not all(isinstance(v, str) for v in preds.values())):
        raise ValueError('"predictions" must be an object of strings of class digits')
    if final.get("failed"):
        return "failed"
    if "test_accuracy" not in final:
        raise ValueError('"final" has no test_accuracy and no "failed"')
    for name, v in final.items():
        if name.endswith("_scale_accuracy"):
            if not isinstance(v, list) or not v:
                raise ValueError(f"{name} must be a list of accuracies, got {v!r}")
            for x in v:
                _unit(name, x)
        elif name.endswith("_accuracy"):
            _unit(name, v)
        elif name.endswith("_loss") and (not _real(v) or not math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    cfg = rec["config"]
    n_cls = _n_classes(cfg)
    n_test = _n_test(cfg, n_cls)
    conf = final.get("test_confusion")
    if conf is not None:
        ok = isinstance(conf, list) and all(isinstance(r, list) and all(isinstance(c, int) and not isinstance(c, bool)
                                                                        and c >= 0 for c in r) for r in conf)
        if not ok or (n_cls and (len(conf) != n_cls or any(len(r) != n_cls for r in conf))):
            raise ValueError(f"test_confusion must be a {n_cls}x{n_cls} matrix of counts")
        if n_test is not None and sum(map(sum, conf)) != n_test:
            raise ValueError(f"test_confusion counts {sum(map(sum, conf))} images, the test set has {n_test}")
    val_conf = final.get("val_confusion")
    if val_conf is not None and not (isinstance(val_conf, list) and all(isinstance(r, list) for r in val_conf)):
        raise ValueError("val_confusion must be a matrix of counts")
    if (preds or {}).get("test") is None and cfg.get("experiment") == "learnability":
        raise ValueError('no test "predictions" (the learnability report pools them)')
    for split in ("test", "val"):
        if (preds or {}).get(split) is not None:
            _check_split(final, cfg, split, preds[split], n_cls)
    return "ok"


def inspect(path: "str | Path", spec: Any = None) -> Read:
    """Read and check the record at ``path`` (module docstring); never raises for its content and
    never moves it. Given ``spec`` (a ``RunSpec``/``LearnSpec``), a record of another run (its
    ``config`` is not ``spec.to_dict()``) is ``"other run"``."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Read(path, "missing")
    except (OSError, UnicodeDecodeError) as err:
        return Read(path, "malformed", reason=f"run record {path} cannot be read ({err})")
    try:
        rec = parse(text)
        status = check_record(rec, path.stem if path.suffix == ".json" else None)
    except (ValueError, RecursionError) as err:
        return Read(path, "malformed", reason=f"run record {path} is unreadable ({err})")
    if spec is not None and rec["config"] != spec.to_dict():
        return Read(path, "other run", reason=f"run record {path} is of another run than {getattr(spec, 'key', spec)}")
    return Read(path, status, rec)


def _tracked(path: Path) -> bool:
    """Whether a git checkout tracks ``path`` (a committed file: never renamed). Where git cannot
    tell, a file under a checkout's ``results/`` counts as committed."""
    checkout = paths.checkout_root()
    try:
        rel = path.resolve().relative_to(checkout.resolve()) if checkout else None
    except ValueError:
        rel = None
    if rel is None:
        return False
    try:
        out = subprocess.run(["git", "-C", str(checkout), "ls-files", "--error-unmatch", "--", str(rel)],
                             capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return rel.parts[:1] == ("results",)
    if out.returncode not in (0, 1):        # 128: not a repository here (or git failed)
        return rel.parts[:1] == ("results",)
    return out.returncode == 0


def may_set_aside(path: "str | Path", spec: Any) -> bool:
    """Whether a bad record at ``path`` may be renamed: only in ``spec``'s own profile folder under the
    output root (a working folder of the package) and only when no git checkout tracks the file."""
    if spec is None:
        return False
    path = Path(path)
    own = paths.output_root() / "results" / spec.profile.name
    try:
        if path.resolve().parent.parent != own.resolve() or path.is_symlink():
            return False
    except OSError:
        return False
    return not _tracked(path)


def set_aside(path: "str | Path") -> Path:
    """Rename ``path`` to ``<name>.corrupt`` (replacing an older one); returns the new path."""
    path = Path(path)
    dest = path.with_name(path.name + ".corrupt")
    path.replace(dest)
    return dest


def read_record(path: "str | Path", spec: Any = None, set_aside_bad: Optional[bool] = None) -> Optional[dict[str, Any]]:
    """The record at ``path`` if it is usable (``ok`` or ``failed``) and, given ``spec``, that run's;
    else None. A malformed record is named in a ``RuntimeWarning``; it is set aside
    (``<name>.corrupt``) only where :func:`may_set_aside` allows (``set_aside_bad=None``) or when asked
    (``True``; still never a tracked file), else left as it is.
    """
    found = inspect(path, spec)
    if found.status in ("ok", "failed"):
        return found.record
    if found.status == "malformed":
        allowed = may_set_aside(found.path, spec) if set_aside_bad is None else \
            (bool(set_aside_bad) and not _tracked(found.path))
        if allowed:
            try:
                dest = set_aside(found.path)
                what = f"moved to {dest.name}, the run will be trained again"
            except OSError as err:
                what = f"left in place ({err.strerror or err})"
        else:
            what = "left in place (not a working folder of this run), not used"
        warnings.warn(f"{found.reason}; {what}", RuntimeWarning, stacklevel=2)
    elif found.status == "other run":
        warnings.warn(f"{found.reason} (its config was edited under its old key, or it is another run's): not "
                      f"used; a run of this key keeps it as {found.path.name}.orig-<n> before writing its own",
                      RuntimeWarning, stacklevel=2)
    return None


def keep_unusable(path: "str | Path", spec: Any) -> Optional[Path]:
    """Before a record of ``spec`` is written at ``path``: a file there that is not a usable record of
    ``spec`` (another run's config, e.g. edited under its old key, or malformed and left in place) is
    renamed to ``<name>.orig-<n>`` (the first free ``n``), named in a ``RuntimeWarning``, and returned;
    None when there is nothing to keep (no file, or ``spec``'s own record, which is replaced).
    Example: ``keep_unusable(spec.record_path, spec)`` before ``paths.write_json(spec.record_path, rec)``.
    """
    path = Path(path)
    if not path.exists() or inspect(path, spec).status in ("ok", "failed", "missing"):
        return None
    n = 1
    while path.with_name(f"{path.name}.orig-{n}").exists():
        n += 1
    dest = path.with_name(f"{path.name}.orig-{n}")
    path.replace(dest)
    warnings.warn(f"run record {path} is not a record of this run ({getattr(spec, 'key', spec)}): kept as {dest.name}, "
                  "the run's own record is written in its place", RuntimeWarning, stacklevel=2)
    return dest


def adopt(spec: Any, own: "str | Path", folder: str) -> Optional[dict[str, Any]]:
    """Copy ``spec``'s record from another profile's folder into its own, the one place that copies a
    record between profiles' folders (``find_record`` of the GP sweep and of the learnability map call it).

    Looks, in name order, at ``<output root>/results/*/<folder>/<spec.key>.json`` other than ``own``
    (``folder``: ``"gp_runs"`` or ``"learnability"``), reads each through :func:`read_record` (so a bad
    one there is named and never moved), and writes the first usable one to ``own`` atomically with
    ``copied_from`` set to that profile's name (or kept, when the record was itself a copy), so a
    reproduction check never counts it as a re-run. Returns the copy, or None when no other profile
    holds one. The source is left as it is.
    """
    own = Path(own)
    for other in sorted((paths.output_root() / "results").glob(f"*/{folder}/{spec.key}.json")):
        if other == own:
            continue
        rec = read_record(other, spec)
        if rec is not None:
            rec = {**rec, "copied_from": rec.get("copied_from") or other.parent.parent.name}   # not re-run here
            keep_unusable(own, spec)
            paths.write_json(own, rec)
            return rec
    return None
