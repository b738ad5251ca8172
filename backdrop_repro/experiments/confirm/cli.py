"""The ``backdrop-repro confirm`` command: write the pre-registration, train the study, or report it."""
from __future__ import annotations

import argparse
from typing import Any

from ... import profiles
from .. import launchers

__all__ = ["add_cli"]


def _cmd(args: argparse.Namespace) -> None:
    from .plan import section

    p = profiles.get(args.profile)                           # resolved once: the object from here on
    section(p)                                               # a profile with a confirm section, before any work
    if args.write_preregistration:
        if args.collect_only or args.jobs is not None or args.device is not None or args.launcher != "local":
            raise ValueError("--write-preregistration takes no --collect-only/--jobs/--device/--launcher: it only "
                             "writes the file")     # cli.main: `backdrop-repro confirm: error: ...`, exit 2
        from .prereg import write

        pre = write(p)
        print(f"wrote {pre['path']} (sha256 {pre['sha256']}); commit it before the first run")
        return
    if args.collect_only:
        if args.jobs is not None or args.device is not None or args.launcher != "local":
            raise ValueError("--collect-only trains nothing: drop --jobs/--device/--launcher")
        from .report import write_summary

        summary = write_summary(p)
    else:
        from .run import run_study

        launchers.check_cli_args(args)                       # a failed submitit task: LaunchError, one line
        summary = run_study(p, jobs=args.jobs, device=args.device, progress=True, **launchers.cli_options(args))
    from ... import render, tables

    rec = summary["records"]
    print(render.findings(tables.confirm_rows(summary),
                          why=f"the study is {summary['status']} ({rec['valid']} of {rec['planned']} runs)"), end="")


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro confirm --profile P [--write-preregistration | --collect-only] [--jobs N] [--device D]
    [--launcher local|submitit ...]``."""
    p = subparsers.add_parser("confirm", help="the pre-registered confirmatory study of the fine-mask half of the claim")
    p.add_argument("--profile", choices=[n for n in profiles.names() if profiles.get(n).confirm is not None],
                   default="confirm")
    p.add_argument("--write-preregistration", action="store_true",
                   help="write results/<profile>/preregistration.md (refused if it exists); commit it before any run")
    p.add_argument("--collect-only", action="store_true", help="train nothing: rebuild the report from the records")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the profile's, 2)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    launchers.add_cli_arguments(p)
    p.set_defaults(func=_cmd)
