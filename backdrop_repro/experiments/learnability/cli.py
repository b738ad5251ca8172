"""The ``backdrop-repro learnability`` command: run (resumably, in priority order) and table the map."""
from __future__ import annotations

import argparse
from typing import Any

from ... import paths, profiles
from .plan import PARTS
from .report import edge_table, map_table, write_summary
from .run import run_all

__all__ = ["add_cli"]


def _cmd(args: argparse.Namespace) -> None:
    if args.collect_only:
        summary = write_summary(args.profile)
    else:
        parts = PARTS if args.part == "all" else (args.part,)
        summary = run_all(args.profile, parts, jobs=args.jobs, reuse=not args.fresh, device=args.device, progress=True)
    for scale in ("small", "large"):
        print(f"\n{scale} scale\n" + map_table(summary, scale))
    print("\n" + edge_table(summary))
    print(f"\n{summary['answer']}\n-> {paths.results_dir(summary['profile']) / 'learnability.json'}")


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro learnability --profile P [--part map|edge|twoscale|all] [--jobs N] [--fresh]
    [--collect-only]``."""
    p = subparsers.add_parser("learnability", help="the learnability map, backdrop along its edge, the two-scale task")
    p.add_argument("--profile", choices=profiles.names(), default="learnability")
    p.add_argument("--part", choices=("all",) + PARTS, default="all",
                   help="all (default): map (smaller training sets first), edge, two-scale task, in that order")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the profile's)")
    p.add_argument("--fresh", action="store_true", help="retrain every run from scratch (ignore stored records)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--collect-only", action="store_true", help="train nothing: rebuild the summary from the records")
    p.set_defaults(func=_cmd)
