"""The claim grammar as data, and the claims table every study writes (``results/<profile>/claims.csv``).

A *row* is one comparison (or one level against chance) as plain numbers: who was compared with
what, on which task, scale and metric, over how many seeds, the paired difference with its 95 %
interval, the p-values (raw and Holm-adjusted over its family), the margin test, TOST, the planned
and realised MDE, the epochs each arm trained, why it is unfinished (if it is), and its **status**.
The status is not typed by a study: :func:`status` derives it from the row's numbers through
:data:`GRAMMAR`, and :func:`check` refuses a row whose status disagrees with its numbers, whose
margin the metric cannot reach, or whose fields are out of range. Words come later, from templates
over the table (:mod:`backdrop_repro.render`).

>>> r = row(study="demo", experiment="gp_sweep", design="confirmatory", arm="a", baseline="none",
...         seeds=30, delta=0.05, ci_low=0.04, ci_high=0.06, p=1e-6, p_adj=2e-6, family_size=2,
...         margin=0.03, margin_p=1e-4, tost_p=1.0, mde=0.02, baseline_mean=0.4)
>>> r["status"]
'relevant gain'
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["COLUMNS", "GRAMMAR", "STATUSES", "DESIGNS", "ROLES", "GAINS", "MARGIN", "ALPHA", "status", "row", "check",
           "write", "read", "ClaimsError"]

#: the relevance margin of test accuracy: a change smaller than this is too small to matter
MARGIN = 0.03
ALPHA = 0.05

#: how a comparison was planned (design belongs to a comparison, not to a profile)
DESIGNS = ("confirmatory", "exploratory", "descriptive")
#: what a row is: the tested comparison (``primary``), a per-scale or other secondary endpoint
#: (``secondary``: an interval, no test in the family), a level against chance (``level``)
ROLES = ("primary", "secondary", "level")

#: the claim grammar, in the order the rules are tried: (status, role, when it applies, what it means)
GRAMMAR: tuple[tuple[str, str, str, str], ...] = (
    ("unfinished", "primary", "the runs of either arm did not finish their budget (more than the study's share "
     "reached the epoch cap or failed, or a fixed budget ended with the training loss still high)",
     "no claim: the interval describes unfinished runs"),
    ("relevant gain", "primary", "Holm-adjusted p < α, mean > 0, and the one-sided margin test (gain > margin, "
     "Bonferroni over the family) rejects at α", "a gain that clears the margin of relevance"),
    ("significant gain", "primary", "Holm-adjusted p < α and mean > 0; the margin test does not reject",
     "a real gain, not shown to clear the margin (it may be too small to matter)"),
    ("contradicted", "primary", "Holm-adjusted p < α and mean < 0", "significantly worse"),
    ("equivalent", "primary", "not significant, and TOST against ±margin rejects at α/2 (the 95 % interval lies "
     "inside ±margin)", "equivalent to no change within the margin"),
    ("not confirmed", "primary", "not significant, the interval's upper end is below +margin and the MDE is at "
     "most the margin", "gains of the margin or more excluded (no equivalence shown)"),
    ("inconclusive", "primary", "none of the above", "neither a change shown nor a gain of the margin excluded"),
    ("description", "secondary", "a secondary endpoint (per scale, or a comparison outside the family)",
     "an interval, not a test"),
    ("above chance", "level", "two-sided one-sample t-test over seeds against chance: p < α, mean above",
     "the network learned something"),
    ("not above chance", "level", "otherwise", "no learning shown"),
)
STATUSES = tuple(g[0] for g in GRAMMAR)
#: statuses that claim a gain
GAINS = ("relevant gain", "significant gain")

#: the columns of the claims table, in order: name -> (type, may be empty)
COLUMNS: dict[str, tuple[type, bool]] = {
    "study": (str, False), "experiment": (str, False), "design": (str, False), "design_why": (str, True),
    "role": (str, False), "task": (str, True), "scale": (str, True), "arm": (str, False), "baseline": (str, False),
    "metric": (str, False), "seeds": (int, False), "baseline_mean": (float, True), "ceiling": (float, True),
    "delta": (float, True), "ci_low": (float, True), "ci_high": (float, True), "p": (float, True),
    "p_adj": (float, True), "family": (str, True), "family_size": (int, True), "margin": (float, True),
    "margin_p": (float, True), "tost_p": (float, True), "mde_planned": (float, True), "mde": (float, True),
    "epochs_arm": (float, True), "epochs_baseline": (float, True), "unfinished": (str, True),
    "prereg_status": (str, True), "status": (str, False),
}


class ClaimsError(ValueError):
    """A claims row or table that cannot be judged or read (one line naming the row and the field)."""


def _num(x: Any) -> Optional[float]:
    return None if x is None or x == "" else float(x)


def status(r: dict[str, Any], alpha: float = ALPHA) -> str:
    """The grammar's status of a row from its numbers (role, unfinished, p_adj, delta, margin_p, tost_p,
    ci_high, mde, margin). Refuses (:class:`ClaimsError`) a margin the metric cannot reach: one larger than
    the room between the baseline and the metric's ceiling."""
    role = r.get("role", "primary")
    if role == "secondary":
        return "description"
    if role == "level":
        p, d = _num(r.get("p")), _num(r.get("delta"))
        return "above chance" if p is not None and d is not None and p < alpha and d > 0 else "not above chance"
    margin, ceiling, base = _num(r.get("margin")), _num(r.get("ceiling")), _num(r.get("baseline_mean"))
    if margin is not None and ceiling is not None and base is not None and base + margin > ceiling:
        raise ClaimsError(f"{_name(r)}: margin {margin:g} cannot be reached (baseline {base:.3f}, ceiling "
                          f"{ceiling:g}); state relevance on a scale that can reach it")
    if r.get("unfinished"):
        return "unfinished"
    n, p_adj, delta = int(r.get("seeds") or 0), _num(r.get("p_adj")), _num(r.get("delta"))
    if n < 2 or p_adj is None or delta is None:
        return "inconclusive"
    if p_adj < alpha and delta > 0:
        mp = _num(r.get("margin_p"))
        return "relevant gain" if mp is not None and mp < alpha else "significant gain"
    if p_adj < alpha and delta < 0:
        return "contradicted"
    if margin is None:
        return "inconclusive"
    tp, high, mde = _num(r.get("tost_p")), _num(r.get("ci_high")), _num(r.get("mde"))
    if tp is not None and tp < alpha / 2:
        return "equivalent"
    if high is not None and high < margin and mde is not None and mde <= margin:
        return "not confirmed"
    return "inconclusive"


def _name(r: dict[str, Any]) -> str:
    where = ", ".join(str(r[k]) for k in ("task", "scale") if r.get(k))
    return f"{r.get('study', '?')}: {r.get('arm', '?')} vs {r.get('baseline', '?')}" + (f" ({where})" if where else "")


def check(r: dict[str, Any]) -> dict[str, Any]:
    """``r`` with every column typed, after checking it: known columns only, types, the closed sets
    (design, role, status), probabilities in [0, 1], an interval around its mean, and a status that
    agrees with the numbers (:func:`status`). A :class:`ClaimsError` names the row and the field."""
    unknown = sorted(set(r) - set(COLUMNS))
    if unknown:
        raise ClaimsError(f"{_name(r)}: unknown column(s) {unknown}")
    out: dict[str, Any] = {}
    for col, (kind, empty) in COLUMNS.items():
        v = r.get(col)
        if v is None or v == "":
            if not empty:
                raise ClaimsError(f"{_name(r)}: column {col!r} is empty")
            out[col] = None
            continue
        try:
            v = kind(v)
        except (TypeError, ValueError):
            raise ClaimsError(f"{_name(r)}: column {col!r} must be {kind.__name__}, got {v!r}") from None
        if kind is float and not math.isfinite(v):
            raise ClaimsError(f"{_name(r)}: column {col!r} must be a finite number, got {v!r}")
        out[col] = v
    for col, allowed in (("design", DESIGNS), ("role", ROLES), ("status", STATUSES)):
        if out[col] not in allowed:
            raise ClaimsError(f"{_name(r)}: {col} must be one of {allowed}, got {out[col]!r}")
    for col in ("p", "p_adj", "margin_p", "tost_p"):
        if out[col] is not None and not 0 <= out[col] <= 1:
            raise ClaimsError(f"{_name(r)}: {col} must be in [0, 1], got {out[col]!r}")
    if out["seeds"] < 0:
        raise ClaimsError(f"{_name(r)}: seeds must be >= 0, got {out['seeds']}")
    lo, d, hi = out["ci_low"], out["delta"], out["ci_high"]
    if None not in (lo, d, hi) and not lo - 1e-12 <= d <= hi + 1e-12:
        raise ClaimsError(f"{_name(r)}: the interval [{lo}, {hi}] does not hold its mean {d}")
    want = status(out)
    if out["status"] != want:
        raise ClaimsError(f"{_name(r)}: status {out['status']!r} disagrees with its numbers (the grammar gives {want!r})")
    return out


def row(**fields: Any) -> dict[str, Any]:
    """A checked row from keyword fields (missing optional columns empty, ``role`` primary, the status
    derived by :func:`status`)."""
    r = {c: None for c in COLUMNS}
    r.update(role="primary", metric="test accuracy")
    r.update(fields)
    r["status"] = status(r)
    return check(r)


def _csv_text(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else (repr(v) if isinstance(v, float) else v)) for k, v in r.items()})
    return buf.getvalue()


def write(folder: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Check every row and write ``folder/claims.csv`` (atomically); returns its path."""
    from . import paths

    rows = [check(dict(r)) for r in rows]
    path = Path(folder) / "claims.csv"
    paths.write_text(path, _csv_text(rows))
    return path


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of a claims table, each checked (:func:`check`); a missing file, a wrong header or a bad row is a
    :class:`ClaimsError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ClaimsError(f"{path}: no claims table; run the study's analysis (backdrop-repro claims)") from None
    rd = csv.DictReader(io.StringIO(text))
    if rd.fieldnames != list(COLUMNS):
        raise ClaimsError(f"{path}: header {rd.fieldnames} is not the claims table's {list(COLUMNS)}")
    out = []
    for i, r in enumerate(rd, start=2):
        try:
            out.append(check(dict(r)))
        except ClaimsError as err:
            raise ClaimsError(f"{path}, line {i}: {err}") from None
    return out


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as JSON (one object per row, the columns in order)."""
    return json.dumps([dict(r) for r in rows], indent=1)
