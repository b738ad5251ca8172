"""backdrop-repro: data, experiments and notebooks of 'Backdrop: Stochastic Backpropagation'.

Sub-commands: generate, fetch, sweep, nondecomposable, learnability, notebooks, reproduce. Each library module that offers a sub-command defines ``add_cli(subparsers)``; this file only
collects them, so the CLI and the notebooks call the same functions.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from . import profiles

#: modules that register sub-commands (missing ones are skipped)
CLI_MODULES = ("data.datasets", "data.zenodo", "experiments.gp_sweep.cli", "experiments.nondecomposable.cli",
               "experiments.learnability.cli")


def _cmd_notebooks(args: argparse.Namespace) -> None:
    from .notebooks import run_notebooks

    run_notebooks(args.profile, args.names or None)


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from .reproduce import reproduce

    reproduce(args.profile, reuse=args.reuse, reference=args.reference, jobs=args.jobs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backdrop-repro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
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
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one sub-command; returns the exit status.

    Expected failures (bad values and types, missing or unwritable files and folders, network
    errors, damaged caches, a failed reproduction check: ``ValueError``, ``TypeError``, ``OSError``
    and its subclasses such as ``FileNotFoundError``, ``PermissionError``, ``ConnectionError``, and
    the package's own ``RuntimeError`` subclasses such as ``ReproductionError``) print one line
    ``backdrop-repro <command>: error: <message>`` on stderr and return 2; Ctrl-C returns 130
    quietly. Anything else is a bug and keeps its traceback.
    Example: ``main(["generate", "--profile", "smoke"])`` -> ``0``.
    """
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as err:
        if type(err) is RuntimeError:           # a bare RuntimeError is a bug (torch's included): keep the traceback
            raise
        msg = " ".join(str(err).split()) or type(err).__name__
        if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in msg:
            msg = f"{err.filename}: {msg}"
        print(f"backdrop-repro {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
