"""The ``backdrop-repro confirm`` command: write the pre-registration, train the study, or report it."""
from __future__ import annotations

import argparse
from typing import Any

from ... import profiles

__all__ = ["add_cli"]


def _cmd(args: argparse.Namespace) -> None:
    from .plan import section

    p = profiles.get(args.profile)                           # resolved once: the object from here on
    section(p)                                               # a profile with a confirm section, before any work
    if args.write_preregistration:
        if args.collect_only or args.jobs is not None or args.device is not None:
            raise SystemExit("--write-preregistration takes no --collect-only/--jobs/--device: it only writes the file")
        from .prereg import write

        pre = write(p)
        print(f"wrote {pre['path']} (sha256 {pre['sha256']}); commit it before the first run")
        return
    if args.collect_only:
        if args.jobs is not None or args.device is not None:
            raise SystemExit("--collect-only trains nothing: drop --jobs/--device")
        from .report import write_summary

        summary = write_summary(p)
    else:
        from .run import run_study

        summary = run_study(p, jobs=args.jobs, device=args.device, progress=True)
    print(summary.get("answer", ""))


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro confirm --profile P [--write-preregistration | --collect-only] [--jobs N] [--device D]``."""
    p = subparsers.add_parser("confirm", help="the pre-registered confirmatory study of the fine-mask half of the claim")
    p.add_argument("--profile", choices=[n for n in profiles.names() if profiles.get(n).confirm is not None],
                   default="confirm")
    p.add_argument("--write-preregistration", action="store_true",
                   help="write results/<profile>/preregistration.md (refused if it exists); commit it before any run")
    p.add_argument("--collect-only", action="store_true", help="train nothing: rebuild the report from the records")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the profile's, 2)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=_cmd)
