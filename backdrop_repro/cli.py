"""backdrop-repro: data, experiments and notebooks of 'Backdrop: Stochastic Backpropagation'.

Sub-commands: generate, fetch, sweep, nondecomposable, notebooks, reproduce. Each library module that offers a sub-command defines ``add_cli(subparsers)``; this file only
collects them, so the CLI and the notebooks call the same functions.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from . import profiles

#: modules that register sub-commands (missing ones are skipped)
CLI_MODULES = ("datasets", "zenodo", "experiments.gp_report", "nondecomposable")


def _cmd_notebooks(args: argparse.Namespace) -> None:
    from .notebooks import run_notebooks

    run_notebooks(args.profile, args.names or None)


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
    p = sub.add_parser("reproduce", help="the main job: run every notebook at --profile (same as `notebooks`)")
    p.add_argument("--profile", choices=profiles.names(), default=profiles.DEFAULT)
    p.set_defaults(func=_cmd_notebooks, names=None)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, ConnectionError) as err:
        print(f"backdrop-repro {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
