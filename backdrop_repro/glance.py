"""The README's *Results at a glance* block, generated from the committed results (never typed).

``python -m backdrop_repro.glance`` rewrites the block between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` of README.md; ``--check`` exits with 1 if
the block differs from what the results give (the test suite runs the check).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from . import paths, report

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(profile: str, name: str) -> Optional[dict]:
    path = paths.output_root() / "results" / profile / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def gp_block(profile: str = "scaled") -> list[str]:
    """Bullet lines for the GP sweep of ``profile`` (empty if it has no results)."""
    s = _load(profile, "gp_sweep")
    if s is None:
        return []
    v = s["verdict"]
    nb = f"results/{profile}/notebooks/gp-training.ipynb"
    lines = [f"- **2-scale GP task, profile `{profile}`** ({s['n_runs']}/{s['n_planned']} runs; "
             f"[executed notebook]({nb})): {v['overall']}"]
    grid = [c for c in v["comparisons"] if c.get("decision")]
    if grid:
        best = max(grid, key=lambda c: c["mean"])
        worst = min(grid, key=lambda c: c["mean"])
        lines.append(f"  - Range over the {len(grid)} backdrop configurations: from `{worst['name']}` "
                     f"{report.fmt_ci(worst)} to `{best['name']}` {report.fmt_ci(best)} "
                     f"(paired Δ test accuracy vs no backdrop, 95 % CI).")
    for st in v["studies"]:
        c, b = st["comparison"], st["baseline"]
        what = (f"{st['per_class']} training images per class" if st["study"] == "data_size"
                else f"the `{st['method']}` sampler (the paper's construction)")
        lines.append(f"  - With {what}: no backdrop {report.fmt_ci(b, signed=False)}; `{c['name']}` "
                     f"{report.fmt_ci(c)} (p = {report.fmt_p(c['p'])}).")
    if not s["complete"]:
        lines.append(f"  - Provisional: {s['n_planned'] - s['n_runs']} planned runs are not recorded yet.")
    return lines


def nd_block(profile: str = "default") -> list[str]:
    """Bullet lines for the non-decomposable experiment of ``profile`` (its verdict, from the results)."""
    r = _load(profile, "nondecomposable")
    if r is None:
        return []
    from .experiments.nondecomposable.report import verdict

    nb = f"results/{profile}/notebooks/non-decomposable.ipynb"
    return [f"- **Non-decomposable loss (ROC-AUC), profile `{profile}`** ([executed notebook]({nb})): {verdict(r)}"]


def repro_block(profile: str = "default", reference: str = "scaled") -> list[str]:
    """One line: how the profile's fresh GP runs compare with the committed runs of the same key."""
    from collections import Counter

    from .experiments.gp_sweep.report import TOLERANCE, compare_with_reference

    if _load(profile, "gp_sweep") is None:
        return []
    rows = compare_with_reference(profile, reference)
    n = Counter(r["status"] for r in rows)
    diffs = [abs(r["diff"]) for r in rows if r["diff"] is not None]
    return [f"- **Reproduction check** (`make reproduce`, profile `{profile}`, "
            f"[report](results/{profile}/reproduction.md)): of {len(rows)} GP runs, "
            + ", ".join(f"{v} {k}" for k, v in sorted(n.items()))
            + (f"; largest |Δ test accuracy| {max(diffs):.4f}" if diffs else "")
            + f" against `results/{reference}` (tolerance {TOLERANCE} per run)."]


def block() -> str:
    lines = gp_block("scaled") + nd_block("scaled") + repro_block("default")
    return "\n".join([START, *lines, END])


def update(readme: Path, check: bool = False) -> bool:
    """Rewrite (or with ``check`` compare) the block in ``readme``; True if it was up to date."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + block() + tail
    if check:
        return new == text
    if new != text:
        paths.write_text(readme, new)
    return True


if __name__ == "__main__":
    ok = update(paths.output_root() / "README.md", check="--check" in sys.argv)
    sys.exit(0 if ok else 1)
