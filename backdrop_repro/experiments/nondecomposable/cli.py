"""The ``backdrop-repro nondecomposable`` command: run the AUC experiment and print its tables."""
from __future__ import annotations

import argparse
from typing import Any

from ... import paths, profiles
from .report import collect
from .run import get_config, read_results, run_experiment

__all__ = ["add_cli"]


def _cmd(args: argparse.Namespace) -> None:
    p = profiles.get(args.profile)                  # resolved once: the object from here on
    if args.collect_only:
        if args.steps is not None or args.seeds is not None:
            raise ValueError("--steps, --seeds: not with --collect-only (it trains nothing, it re-derives the "
                             "comparisons of the committed runs)")
        read_results(paths.results_dir(p) / "nondecomposable.json")   # a NaN or missing AUC: one line, nothing summarised
        result = collect(p)
        print(_words(result), end="")
        print(f"\nrewrote {paths.results_dir(p) / 'nondecomposable.json'} (runs unchanged)")
        return
    overrides = {k: v for k, v in (("steps", args.steps), ("seeds", None if args.seeds is None else tuple(args.seeds)))
                 if v is not None}
    result = run_experiment(p, config=get_config(p, **overrides), progress=True, write=True)
    print(_words(result), end="")
    print(f"\nwrote {paths.results_dir(p) / result['name']}.json (+ .csv) in {result['wall_s']:.1f} s")


def _words(result: dict[str, Any]) -> str:
    from ... import render, tables

    return render.nd_tables(result) + "\n\n" + render.findings(tables.nondecomposable_rows(result))


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro nondecomposable [--profile NAME] [--steps N] [--seeds S ...]``."""
    p = subparsers.add_parser("nondecomposable",
                              help="pairwise-AUC experiment: full batch vs minibatch vs per-sample backdrop")
    p.add_argument("--profile", choices=profiles.names(), default=profiles.DEFAULT)
    p.add_argument("--steps", type=int, default=None, help="override the number of steps")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="seeds to run (default: the profile's); other settings than the profile's are written "
                        "to nondecomposable-custom-<hash>.json, never over the profile's table")
    p.add_argument("--collect-only", action="store_true",
                   help="train nothing: re-derive the comparisons and claims of the profile's committed runs")
    p.set_defaults(func=_cmd)
