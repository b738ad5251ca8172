"""The main job (``make reproduce`` / ``backdrop-repro reproduce``): train, execute, compare.

1. checks that ``results/<profile>`` and ``figures/`` are writable (before any work);
2. runs the GP sweep of the profile, from scratch unless ``reuse`` (then only missing runs);
3. executes every notebook with papermill into ``results/<profile>/notebooks`` (they load the
   sweep's records; the non-decomposable notebook runs its own, ~1 minute, experiment);
4. compares every fresh GP run with the committed run of the same key in ``results/<reference>``
   (default ``replication``) and writes ``results/<profile>/reproduction.md`` (per-run tolerance
   :data:`backdrop_repro.experiments.gp_sweep.report.TOLERANCE`); it fails (``ReproductionError``) when it
   compared nothing (e.g. every record was reused or copied) or a run differs beyond the tolerance.

Example: ``reproduce("default")`` (about 15 minutes on 2 CPU cores).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from . import paths, profiles
from ._shared import check_writable

__all__ = ["reproduce"]

#: what an unwritable output folder's error adds
_HINT = "fix its permissions or set BACKDROP_REPRO_OUTPUT"


def _say(msg: str) -> None:
    print(f"[backdrop-repro reproduce] {msg}", file=sys.stderr, flush=True)


def reproduce(profile: str = profiles.DEFAULT, reuse: bool = False, reference: str | None = "replication",
              jobs: int | None = None) -> Path:
    """Run the whole main job at ``profile``; return the path of the reproduction report."""
    from .experiments.gp_sweep import report as gp_report
    from .experiments.gp_sweep import run as gp_run
    from .notebooks import run_notebooks

    p = profiles.get(profile)
    if reference is not None:
        profiles.check(reference)
        if reference == p.name:
            raise gp_report.ReproductionError(f"reference must be another profile than {p.name!r}: a record compared "
                                              "with itself proves nothing")
    paths.absolute_env()
    out = check_writable(paths.output_root() / "results" / p.name, "results folder", _HINT)
    check_writable(paths.output_root() / "figures", "figures folder", _HINT)
    paths.clean_package_orphans(p.name)     # what a killed run left (.backdrop-tmp-* of dead writers)
    t0 = time.perf_counter()
    _say(f"profile {p.name}: {p.description}")
    _say("GP sweep " + ("(reusing stored run records)" if reuse else "(every run trained from scratch)")
         + f", {jobs or p.sweep.jobs} run(s) at a time")
    sweep = gp_run.run_sweep(p, jobs=jobs, reuse=reuse, progress=True)
    _say(f"GP sweep done: {sweep['n_runs']}/{sweep['n_planned']} runs, {time.perf_counter() - t0:.0f} s")
    run_notebooks(p.name)
    lines = [f"# Reproduction check: profile `{p.name}`", ""]
    rows = None
    if reference:
        rows = gp_report.compare_with_reference(p, reference)
        lines += [f"Each GP run of this `make reproduce` against the committed run with the same key in "
                  f"`results/{reference}/gp_runs/` (runs are keyed by everything that defines them):", "",
                  gp_report.reproduction_table(rows)]
    else:
        lines.append("No reference profile to compare with.")
    lines += ["", f"Wall time of `reproduce` (after set-up): {time.perf_counter() - t0:.0f} s on "
              f"{os.cpu_count()} CPU(s)."]
    report = paths.write_text(out / "reproduction.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    if rows is not None:
        gp_report.check_reproduction(rows, reference)      # nothing compared, or a run differs: exit != 0
    return report
