"""The ``backdrop-repro learnability`` command: run (resumably, in priority order) and table the map."""
from __future__ import annotations

import argparse
from typing import Any

from ... import paths, profiles
from ...checks import check_device, check_int
from ...paths import check_writable
from .. import launchers
from .plan import PARTS, map_cells, section
from .report import write_summary
from .run import run_all

__all__ = ["add_cli"]


def check_args(args: argparse.Namespace) -> None:
    """Refuse, before any work, flags that cannot apply and bad values: one ``ValueError`` naming the
    flag. ``--collect-only`` trains nothing, so ``--fresh``, ``--jobs``, ``--device`` and ``--part`` are
    refused with it; ``--jobs`` is an int >= 1; ``--device`` one this machine has; the results folder
    must be writable; ``--part edge``/``twoscale`` need the map's records."""
    section(args.profile)
    if args.collect_only:
        given = [f for f, v in (("--fresh", args.fresh), ("--jobs", args.jobs is not None),
                                ("--device", args.device is not None), ("--part", args.part != "all"),
                                ("--launcher", args.launcher != "local")) if v]
        if given:
            raise ValueError(f"{', '.join(given)}: not with --collect-only (it trains nothing, it tables the records "
                             "present)")
        return
    launchers.check_cli_args(args)
    check_int("--jobs", args.jobs, low=1, allow_none=True)
    check_device(args.device)
    check_writable(paths.output_root() / "results" / args.profile / "learnability",
                   "results folder", "fix its permissions or set BACKDROP_REPRO_OUTPUT")
    if args.part in ("edge", "twoscale") and not map_cells(args.profile):
        raise ValueError(f"--part {args.part} is chosen from the map's records and there are none yet: run "
                         f"`backdrop-repro learnability --profile {args.profile} --part map` first")


def _cmd(args: argparse.Namespace) -> None:
    check_args(args)                                                # before any work
    p = profiles.get(args.profile)                                  # resolved once: the object from here on
    if args.collect_only:
        summary = write_summary(p)
    else:
        parts = PARTS if args.part == "all" else (args.part,)
        summary = run_all(p, parts, jobs=args.jobs, reuse=not args.fresh, device=args.device, progress=True,
                          **launchers.cli_options(args))          # a failed submitit task: LaunchError, one line
    from ... import render, tables

    for scale in ("small", "large"):
        print(f"\n{scale} scale\n" + render.map_table(summary, scale))
    print("\n" + render.edge_table(summary) + "\n\n" + render.findings(tables.learnability_rows(summary)), end="")
    print(f"-> {paths.results_dir(p) / 'learnability.json'}")


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro learnability --profile P [--part map|edge|twoscale|all] [--jobs N] [--fresh]
    [--launcher local|submitit ...] [--collect-only]``."""
    p = subparsers.add_parser("learnability", help="the learnability map, backdrop along its edge, the two-scale task")
    p.add_argument("--profile", choices=profiles.names(), default="learnability")
    p.add_argument("--part", choices=("all",) + PARTS, default="all",
                   help="all (default): map (smaller training sets first), edge, two-scale task, in that order")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the profile's)")
    p.add_argument("--fresh", action="store_true", help="retrain every run from scratch (ignore stored records)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--collect-only", action="store_true", help="train nothing: rebuild the summary from the records")
    launchers.add_cli_arguments(p)
    p.set_defaults(func=_cmd)
