"""The main job (``make reproduce`` / ``backdrop-repro reproduce``): train, execute, compare.

1. checks, before any work, that ``results/<profile>`` and ``figures/`` are writable and that some
   planned GP run of the profile has a committed counterpart (a record of the same key) in
   ``results/<reference>`` (else the check could only say "nothing compared": a ``ValueError``
   naming the profiles that folder holds);
2. runs the GP sweep of the profile, from scratch unless ``reuse`` (then only missing runs);
3. executes every notebook with papermill into ``results/<profile>/notebooks`` (they load the
   sweep's records; the non-decomposable notebook runs its own, ~1 minute, experiment);
4. compares every fresh GP run with the committed run of the same key in ``results/<reference>``
   (default ``replication``) by the rule of :mod:`backdrop_repro.experiments.gp_sweep.reproduction`
   (per run: identical or numerically different; per configuration and paired gain: the re-run
   seeds' mean within the bound of rounding drift) and writes ``results/<profile>/reproduction.md``
   (after the sweep, and again after the notebooks); it fails (``ReproductionError``, one line)
   when it compared nothing (e.g. every record was reused or copied), a record on either side
   failed or cannot be read, or a configuration moved beyond its bound.

Example: ``reproduce("default")`` (about 15 minutes on 2 CPU cores).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from . import paths, profiles
from .paths import check_writable

__all__ = ["reproduce"]

#: what an unwritable output folder's error adds
_HINT = "fix its permissions or set BACKDROP_REPRO_OUTPUT"


def _say(msg: str) -> None:
    print(f"[backdrop-repro reproduce] {msg}", file=sys.stderr, flush=True)


def reproduce(profile: str | profiles.Profile = profiles.DEFAULT, reuse: bool = False, reference: str | None = "replication",
              jobs: int | None = None) -> Path:
    """Run the whole main job at ``profile`` (a name, resolved once here, or a Profile); return the path
    of the reproduction report."""
    from .experiments.gp_sweep import reproduction as gp_repro
    from .experiments.gp_sweep import run as gp_run
    from .notebooks import run_notebooks

    p = profiles.get(profile)
    if reference is not None:
        profiles.check(reference)
        if reference == p.name:
            raise gp_repro.ReproductionError(f"reference must be another profile than {p.name!r}: a record compared "
                                              "with itself proves nothing")
    paths.absolute_env()
    out = check_writable(paths.output_root() / "results" / p.name, "results folder", _HINT)
    check_writable(paths.output_root() / "figures", "figures folder", _HINT)
    if reference is not None:
        from .experiments.gp_sweep.cli import check_comparable

        check_comparable(p, reference, flag="--reference")     # keys only: before anything is trained
    paths.clean_package_orphans(p.name)     # what a killed run left (.backdrop-tmp-* of dead writers)
    t0 = time.perf_counter()
    _say(f"profile {p.name}: {p.description}")
    _say("GP sweep " + ("(reusing stored run records)" if reuse else "(every run trained from scratch)")
         + f", {jobs or p.sweep.jobs} run(s) at a time")
    sweep = gp_run.run_sweep(p, jobs=jobs, reuse=reuse, progress=True)
    _say(f"GP sweep done: {sweep['n_runs']}/{sweep['n_planned']} runs, {time.perf_counter() - t0:.0f} s")
    swept = (f"GP sweep: {sweep['n_runs']}/{sweep['n_planned']} runs in {time.perf_counter() - t0:.0f} s on "
             f"{os.cpu_count()} CPU(s).")
    path = out / "reproduction.md"
    if reference:
        # written before the notebooks, so a failing notebook leaves the check's report behind
        _, result = gp_repro.write_report(p, reference, path, [swept])
    else:
        paths.write_text(path, f"# Reproduction check: profile `{p.name}`\n\nNo reference profile to compare with.\n")
    run_notebooks(p)
    if reference:
        _, result = gp_repro.write_report(p, reference, path, [swept, f"Wall time of `reproduce` (after set-up, "
                                                                  f"notebooks included): {time.perf_counter() - t0:.0f} s."])
    print(path.read_text())
    if reference:
        gp_repro.check(result)          # nothing compared, a record not judged, or a shift: one line, exit 2
    return path
