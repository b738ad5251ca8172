"""The README's *Results at a glance* block, generated from the committed results (never typed).

``python -m backdrop_repro.glance`` rewrites the block between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` of README.md; ``--check`` exits with 1 if
the block differs from what the results give (the test suite runs the check) and writes nothing;
``--readme PATH`` names another file. ``--help`` prints the usage, an unknown flag is an error
(exit 2), and nothing is written on any error. A README that is a symbolic link stays one (its
target is rewritten). A summary whose own ``"profile"`` is another profile, an unreadable summary
and a README without the two markers in order are one-line errors naming the file.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from . import paths, report

START, END = "<!-- results:start -->", "<!-- results:end -->"


class GlanceError(ValueError):
    """A summary or README glance cannot use (one line naming the file)."""


def _load(profile: str, name: str) -> Optional[dict]:
    """``results/<profile>/<name>.json``, or None if absent; :class:`GlanceError` naming the file if it
    cannot be read, is not a JSON object, or is the summary of another profile."""
    path = paths.output_root() / "results" / profile / f"{name}.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise GlanceError(f"{path}: cannot be read ({err}); regenerate it from its records") from None
    if not isinstance(data, dict):
        raise GlanceError(f"{path}: not a summary (a JSON {type(data).__name__}, not an object)")
    if data.get("profile") != profile:
        raise GlanceError(f"{path}: a summary of profile {data.get('profile')!r}, not {profile!r}; "
                          "regenerate it from this profile's records")
    return data


def _scale_phrase(s: dict) -> str:
    """``small scale 0.505 (chance 0.5), large scale 0.819 (chance 0.5)`` for no backdrop, or ''."""
    base = next((r for r in s["summary"] if r["study"] == "grid" and r["config"] == "none"), None)
    if not base or not base.get("scales") or len(base["scales"]) != 2:
        return ""
    return ", ".join(f"{n} scale {x['summary']['mean']:.3f} (chance {x['chance']:g})"
                     for n, x in zip(("small", "large"), base["scales"]))


def _carried(c: dict) -> str:
    d = c.get("scale_deltas")
    if not d or not all(d) or len(d) != 2:
        return ""
    return f" [large scale {report.fmt_ci(d[1])}, small scale {report.fmt_ci(d[0])}]"


def gp_claim(profile: str = "replication") -> list[str]:
    """One line: the GP claim's status at ``profile`` (per comparison), with the per-scale result."""
    s = _load(profile, "gp_sweep")
    if s is None:
        return []
    v = s["verdict"]
    if not v.get("claims"):
        return [f"- **GP task** (profile `{profile}`): no verdict yet ({s['n_runs']}/{s['n_planned']} runs)."]
    status = [c["status"] for c in v["claims"]]
    head = ("confirmed" if "confirmed" in status else "not confirmed" if all(x == "not confirmed" for x in status)
            else "contradicted" if all(x == "contradicted" for x in status) else "inconclusive")
    comps = {c["name"]: c for c in v["comparisons"]}
    each = "; ".join(f"`{c['name']}` {report.fmt_ci(comps[c['name']])}{_carried(comps[c['name']])}: {c['status']}"
                     for c in v["claims"])
    sp = _scale_phrase(s)
    n = v["baseline"]["n"] if v.get("baseline") else 0
    partial = "" if s["complete"] else f" (provisional: {s['n_runs']}/{s['n_planned']} runs)"
    return [f"- **Backdrop improves generalisation on the 2-scale GP task: {head}** (profile `{profile}`, "
            f"{v.get('design', {}).get('kind', '')} design, {n} seeds{partial}): {each} (Δ test accuracy vs no "
            "backdrop, 95 % CI)." + (f" Test accuracy without backdrop: {sp}; the likelihood classifier separates "
                                     "both scales. The gain is a gain on the large scale: the small scale is not "
                                     "learned by any network, so fine masks are not tested there."
                                     if sp and "fine-mask half" in v["overall"] else
                                     (f" Test accuracy without backdrop: {sp}." if sp else ""))]


def gp_block(profile: str = "scaled") -> list[str]:
    """Bullet lines for the GP sweep of ``profile`` (empty if it has no results)."""
    s = _load(profile, "gp_sweep")
    if s is None:
        return []
    v = s["verdict"]
    nb = f"results/{profile}/notebooks/gp-training.ipynb"
    kind = v.get("design", {}).get("kind", "")
    lines = [f"- **2-scale GP task, profile `{profile}`** ({kind}; {s['n_runs']}/{s['n_planned']} runs; "
             f"[executed notebook]({nb})): {v['overall']}"]
    from .experiments.gp_sweep.report import study_lines

    lines += [f"  - {t}" for t in study_lines(v)]
    if not s["complete"]:
        lines.append(f"  - Provisional: {s['n_planned'] - s['n_runs']} planned runs are not recorded yet.")
    return lines


def nd_claim(profile: str = "scaled") -> list[str]:
    """One line: the non-decomposable claim's status (validation-chosen backdrop vs full batch)."""
    r = _load(profile, "nondecomposable")
    if r is None:
        return []
    from .experiments.nondecomposable.report import headline

    h = headline(r)
    row = h["vs_full"].get(h["backdrop"]) if h["backdrop"] else None
    if row is None or not row.get("decision"):
        return []
    c = report.claim(row, m=row["m_tests"])
    return [f"- **Per-sample backdrop beats full-batch training on a ROC-AUC loss: {c['status']}** (profile "
            f"`{profile}`, {row['n']} seeds, `{h['backdrop']}` chosen on validation): test AUC "
            f"{report.fmt_ci(row)} (Holm p = {report.fmt_p(row['p_holm'])})."]


def nd_block(profile: str = "default") -> list[str]:
    """Bullet lines for the non-decomposable experiment of ``profile`` (its verdict, from the results)."""
    r = _load(profile, "nondecomposable")
    if r is None:
        return []
    from .experiments.nondecomposable.report import verdict

    nb = f"results/{profile}/notebooks/non-decomposable.ipynb"
    return [f"- **Non-decomposable loss (ROC-AUC), profile `{profile}`** ([executed notebook]({nb})): {verdict(r)}"]


def repro_block(profile: str = "default", reference: str = "replication") -> list[str]:
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


def learn_claim(profile: str = "learnability") -> list[str]:
    """One line: does backdrop move the learnability edge? (the study's generated answer), marked
    provisional while map cells or the two-scale task have no runs."""
    d = _load(profile, "learnability")
    if d is None or not d.get("answer"):
        return []
    empty = [c for c in d.get("map", []) if not c.get("seeds")]
    from .experiments.learnability.report import twoscale_blocks

    two = twoscale_blocks(d)
    missing = ([f"{len(empty)} of {len(d['map'])} map cells"] if empty else []) + \
              (["the two-scale task"] if not two or not all(t.get("comparisons") for t in two) else [])
    state = f"provisional: {' and '.join(missing)} not run yet" if missing else "complete"
    nb = f"results/{profile}/notebooks/learnability.ipynb"
    link = f"; [executed notebook]({nb})" if (paths.output_root() / nb).is_file() else ""
    return [f"- **Does backdrop move the learnability edge?** (profile `{profile}`, {state}{link}): {d['answer']}"]


def block() -> str:
    claims = gp_claim("replication") + nd_claim("scaled") + learn_claim("learnability")
    details = gp_block("replication") + gp_block("scaled") + nd_block("scaled") + repro_block("default")
    lines = (["**Claims** (one line each; details below):", ""] + claims + [""] if claims else []) + \
        (["**Details:**", ""] + details if details else [])
    return "\n".join([START, *lines, END])


def update(readme: Path, check: bool = False) -> bool:
    """Rewrite (or with ``check`` compare) the block in ``readme``; True if it was up to date.
    A symbolic link stays a link (its target is written). ``GlanceError`` (one line, naming the
    file) for a missing or unreadable README or markers missing or out of order; nothing is written then."""
    readme = Path(readme)
    try:
        text = readme.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise GlanceError(f"{readme}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    i, j = text.find(START), text.find(END)
    if i < 0 or j < 0:
        raise GlanceError(f"{readme} has no {START} ... {END} block")
    if j < i or text.count(START) != 1 or text.count(END) != 1:
        raise GlanceError(f"{readme}: the markers {START} and {END} must each appear once, in that order")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + block() + tail
    if check:
        return new == text
    if new != text:
        target = readme.resolve() if readme.is_symlink() else readme
        try:
            paths.write_text(target, new)
        except OSError as err:
            raise GlanceError(f"{target}: cannot be written ({err.strerror or err})") from None
    return True


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m backdrop_repro.glance [--check] [--readme PATH]``: 0 up to date / rewritten,
    1 stale (``--check``), 2 an error (one line)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m backdrop_repro.glance",
                                 description="Rewrite (or check) the README's results block from the committed results.")
    ap.add_argument("--check", action="store_true", help="compare only, write nothing; exit 1 if the block is stale")
    ap.add_argument("--readme", type=Path, default=None, help="the file to update (default: README.md of the output root)")
    args = ap.parse_args(argv)
    readme = args.readme if args.readme is not None else paths.output_root() / "README.md"
    try:
        ok = update(readme, check=args.check)
    except (ValueError, OSError) as err:
        print(f"{ap.prog}: error: {err}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
