"""backdrop-repro: data, experiments and notebooks of 'Backdrop: Stochastic Backpropagation'.

Sub-commands: generate, fetch, sweep, nondecomposable, learnability, confirm, notebooks, reproduce. Each library module that offers a sub-command defines ``add_cli(subparsers)``; this file only
collects them, so the CLI and the notebooks call the same functions.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import gp, paths, profiles
from .data.datasets import SPLITS, build_dataset, split_recipe

#: modules that register sub-commands (missing ones are skipped)
CLI_MODULES = ("data.zenodo", "experiments.gp_sweep.cli", "experiments.nondecomposable.cli",
               "experiments.learnability.cli", "experiments.confirm.cli")


def _cmd_generate(args: argparse.Namespace) -> None:
    rec = split_recipe(profiles.get(args.profile), args.split)     # the front door: resolved once
    changes = {}
    if args.method:
        changes["method"] = args.method
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.per_class is not None:
        changes["per_class"] = args.per_class
    if changes:
        rec = rec.replace(**changes)
    ds = build_dataset(rec, directory=args.out, progress=True)
    print(f"{len(ds)} images {tuple(ds.images.shape[1:])}, classes {ds.class_names} -> {ds.path}")


def _folder(value: str) -> Path:
    """An ``--out`` folder: a non-empty path (``''`` would be the working folder, ``Path('')`` is ``.``)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"must name a folder, got {value!r}")
    return Path(value)


def _add_generate(sub: argparse._SubParsersAction) -> None:
    """``backdrop-repro generate [--profile P] [--split train|val|test] [--method ...] [--out DIR]``."""
    p = sub.add_parser("generate", help="generate (or reuse) a multi-scale GP class dataset",
                       description="Generate one split of a profile's GP crosses dataset into the "
                                   "data cache (or --out), reusing a verified cached copy.")
    p.add_argument("--profile", choices=profiles.names(), default=profiles.DEFAULT)
    p.add_argument("--split", choices=SPLITS, default="train")
    p.add_argument("--method", choices=gp.METHODS, default=None, help="override the recipe's sampler")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    p.add_argument("--per-class", type=int, default=None, help="override samples per class")
    p.add_argument("--out", type=_folder, default=None, help="dataset folder (default: cache/gp/<recipe key>)")
    p.set_defaults(func=_cmd_generate)


def _cmd_notebooks(args: argparse.Namespace) -> None:
    from .notebooks import run_notebooks

    run_notebooks(profiles.get(args.profile), args.names or None)      # resolved once, here


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from .reproduce import reproduce

    reproduce(profiles.get(args.profile), reuse=args.reuse, reference=args.reference, jobs=args.jobs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backdrop-repro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    for name in CLI_MODULES:
        try:
            mod = importlib.import_module(f"backdrop_repro.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"backdrop_repro.{name}":
                continue
            raise
        if hasattr(mod, "add_cli"):
            mod.add_cli(sub)
    p = sub.add_parser("notebooks", help="execute the notebooks with papermill into results/<profile>/notebooks")
    p.add_argument("--profile", choices=profiles.names(), default=profiles.DEFAULT)
    p.add_argument("names", nargs="*", help="notebook names (default: all)")
    p.set_defaults(func=_cmd_notebooks)
    p = sub.add_parser("reproduce", help="the main job: train the GP sweep from scratch, execute every notebook, "
                                         "compare with the committed record")
    p.add_argument("--profile", choices=profiles.names(), default=profiles.DEFAULT)
    p.add_argument("--reuse", action="store_true", help="reuse stored run records (default: train every run)")
    p.add_argument("--reference", choices=profiles.names(), default="replication",
                   help="committed profile whose runs the fresh ones are compared with (default: replication)")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the profile's)")
    p.set_defaults(func=_cmd_reproduce)
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback of an error (also: BACKDROP_REPRO_DEBUG=1)")
    for command in sub.choices.values():     # `backdrop-repro sweep ... --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error")
    return parser


#: the exceptions a user can cause (bad values, files, disk, device, network, damaged caches and
#: records, failed notebooks, a failed reproduction check): one line, exit status 2
EXPECTED = (ValueError, TypeError, OSError, MemoryError, RuntimeError)


def error_line(err: BaseException) -> str:
    """The one-line message of an expected failure: its text on one line, the file an ``OSError``
    names, and a hint where the exception carries none (``MemoryError``)."""
    msg = " ".join(str(err).split())
    if isinstance(err, MemoryError):
        msg = f"out of memory{f' ({msg})' if msg else ''}: lower the sizes (--per-class, --jobs) or free memory"
    msg = msg or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in msg:
        msg = f"{err.filename}: {msg}"
    return msg


def _debug(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("BACKDROP_REPRO_DEBUG", "") not in ("", "0")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one sub-command; returns the exit status.

    One policy for expected failures: every exception a user can cause (:data:`EXPECTED`: bad
    values and types, flags that do not apply, missing or unwritable files and folders, a full
    disk, a device this machine lacks, network errors, damaged caches and run records, a failed
    notebook, a failed reproduction check: ``ValueError``, ``TypeError``, ``OSError`` and its
    subclasses, ``MemoryError``, and the package's own ``RuntimeError`` subclasses such as
    ``ReproductionError`` and ``NotebookError``) prints one line
    ``backdrop-repro <command>: error: <message>`` on stderr and returns 2, with no traceback
    unless ``--debug`` (or ``BACKDROP_REPRO_DEBUG=1``); Ctrl-C returns 130 quietly. Inputs are
    checked before any work starts. Anything else (a bare ``RuntimeError`` included) is a bug and
    keeps its traceback. Relative folders in the environment are made absolute first
    (:func:`backdrop_repro.paths.absolute_env`).
    Example: ``main(["generate", "--profile", "smoke"])`` -> ``0``.
    """
    paths.absolute_env()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        if _debug(args):
            raise
        return 130
    except EXPECTED as err:
        if type(err) is RuntimeError or _debug(args):   # a bare RuntimeError is a bug (torch's included)
            raise
        print(f"backdrop-repro {args.command}: error: {error_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
