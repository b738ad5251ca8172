"""The ``backdrop-repro sweep`` command: run (locally or through submitit) and table the GP sweep."""
from __future__ import annotations

import argparse
from typing import Any

from ... import paths, profiles
from ...checks import check_device, check_int, check_members
from ...paths import check_writable
from .. import launchers
from . import plan as gs
from . import reproduction
from .report import write_tables
from .run import run_sweep, write_references

__all__ = ["add_cli", "check_comparable"]


#: the options that train (given with --collect-only, which trains nothing: an error)
TRAINING_DEFAULTS = {"configs": None, "seeds": None, "jobs": None, "fresh": False, "no_studies": False,
                     "device": None, "launcher": "local"}


def _counterparts(specs: list, reference: str) -> int:
    """How many of ``specs`` have a record of the same key in ``results/<reference>/gp_runs``."""
    folder = reproduction.reference_runs_dir(reference)
    return sum((folder / f"{s.key}.json").exists() for s in specs)


def check_comparable(profile: "str | profiles.Profile", reference: str, configs: Any = None, seeds: Any = None,
                     flag: str = "--compare") -> None:
    """Before any run is trained: one ``ValueError`` when no planned run of ``profile`` (its grid and
    fixed studies; ``configs``/``seeds``: a subset) has a record of the same key in
    ``results/<reference>/gp_runs``, so the reproduction check could only end in "nothing compared".
    It names the profiles whose runs that folder holds and the references holding this profile's
    runs (``flag`` is the option naming the reference). Keys only: nothing is read or trained.

    Example: ``check_comparable("smoke", "replication")`` raises (smoke's runs are smaller than any
    committed profile's); ``check_comparable("default", "replication")`` passes.
    """
    p = profiles.get(profile)
    specs = gs.plan_runs(p, configs, seeds, records=[])
    if _counterparts(specs, reference):
        return
    folder = reproduction.reference_runs_dir(reference)
    held = "" if folder.is_dir() else " (no such folder)"
    others = []
    for name in profiles.names():
        if name == reference:
            continue
        try:
            if _counterparts(gs.plan_runs(name, records=[]), reference):
                others.append(name)
        except (ValueError, KeyError):          # a profile without a sweep plan
            continue
    refs = [r for r in profiles.names() if r != p.name and _counterparts(specs, r)]
    advice = (f"{folder} holds runs of --profile {', '.join(others)}" if others else f"{folder} holds no profile's runs")
    advice += (f"; the runs of {p.name} are held by {flag} {' or '.join(refs)}" if refs else
               f"; no committed reference holds runs of {p.name}: train it with `backdrop-repro sweep --profile "
               f"{p.name}` (no check), or check a profile named above")
    raise ValueError(f"{flag} {reference}: none of the {len(specs)} planned runs of profile {p.name} has a record of "
                     f"the same key in {folder}{held}, so the reproduction check would compare nothing (after "
                     f"training); {advice}")


def check_args(args: argparse.Namespace) -> None:
    """Refuse, before any work, options that do not apply to this invocation (they would be ignored
    silently) and values outside the profile: one ``ValueError`` naming the option."""
    def given(defaults: dict) -> list[str]:
        return [launchers.cli_flag(k) for k, v in defaults.items() if getattr(args, k) != v]

    if args.compare is not None and args.compare == args.profile:
        raise ValueError(f"--compare must name another profile than --profile {args.profile!r}: a record compared "
                         "with itself proves nothing")
    if args.collect_only and given(TRAINING_DEFAULTS):
        raise ValueError(f"{', '.join(given(TRAINING_DEFAULTS))}: not with --collect-only (it trains nothing, it "
                         "tables the records present)")
    launchers.check_cli_args(args)
    p = profiles.get(args.profile)
    if args.seeds is not None:
        check_members("--seeds", args.seeds, sorted(set(p.sweep.seeds) | set(p.sweep.study_seeds or ())),
                      f"profile {p.name!r} tables only its own seeds")
    if args.jobs is not None:
        check_int("--jobs", args.jobs, low=1)
    check_device(args.device)
    if args.compare is not None:        # nothing to compare: said now, not after training
        check_comparable(p, args.compare, args.configs, args.seeds)
    if not args.collect_only:       # a read-only results folder is found before training, not at the first record
        check_writable(paths.output_root() / "results" / p.name / "gp_runs", "results folder",
                       "fix its permissions or set BACKDROP_REPRO_OUTPUT")


def _cmd_sweep(args: argparse.Namespace) -> None:
    import sys

    check_args(args)                                                # before any work
    p = profiles.get(args.profile)                                  # resolved once: the object from here on
    if args.collect_only:
        compared = _compare(args, p)                                # before the tables: whatever they do
        write_references(p)                                         # the likelihood classifier's, if not recorded
        sweep = write_tables(p)
    else:
        try:
            sweep = run_sweep(p, args.configs, args.seeds, studies=not args.no_studies, jobs=args.jobs,
                              reuse=not args.fresh, device=args.device, progress=True, **launchers.cli_options(args))
        except launchers.LaunchError as err:
            print(f"backdrop-repro sweep: error: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        if "launch" in sweep:
            print(f"submitit: {sweep['launch']['submitted']} runs submitted as {sweep['launch']['jobs']} jobs")
        compared = _compare(args, p)
    from ... import render, tables

    print(render.sweep_table(sweep) + f"\n\n{sweep['n_runs']}/{sweep['n_planned']} runs.")
    print(render.findings(tables.gp_sweep_rows(sweep)), end="")
    for f in sweep["reference_missing"]:
        print(f"the likelihood classifier's reference is not recorded ({f}): `backdrop-repro sweep --profile "
              f"{p.name} --collect-only` scores it")
    print(f"-> {paths.results_dir(p) / 'gp_sweep.json'}")
    if compared is not None:
        path, result = compared
        print(f"\nReproduction check against results/{args.compare}:\n" + path.read_text())
        reproduction.check(result)                                  # the same rule and exit status as make reproduce


def _compare(args: argparse.Namespace, p: profiles.Profile):
    """With ``--compare``: write ``results/<profile>/reproduction.md`` (in every case); ``(path, result)``."""
    if not args.compare:
        return None
    path = paths.results_dir(p) / "reproduction.md"
    _, result = reproduction.write_report(p, args.compare, path)
    return path, result


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro sweep --profile P [--configs ...] [--seeds ...] [--jobs N] [--fresh]
    [--launcher local|submitit [--partition ...] ...] [--collect-only]``."""
    p = subparsers.add_parser("sweep", help="train the GP sweep (grid, data-size curve, robustness row)")
    p.add_argument("--profile", choices=profiles.names(), default=profiles.DEFAULT)
    p.add_argument("--configs", nargs="+", choices=gs.CONFIGS, default=None, help="subset of configurations")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default: the profile's)")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the profile's)")
    p.add_argument("--fresh", action="store_true", help="retrain every run from scratch (ignore stored records)")
    p.add_argument("--no-studies", action="store_true", help="only the grid (no data-size / robustness runs)")
    p.add_argument("--compare", default=None, metavar="PROFILE", choices=profiles.names(),
                   help="compare each run with the committed run of the same key in results/PROFILE")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--collect-only", action="store_true",
                   help="train nothing: rebuild the tables from the run records present (the collect step; "
                        "the likelihood classifier's reference is scored first if it is not recorded)")
    launchers.add_cli_arguments(p)
    p.set_defaults(func=_cmd_sweep)

