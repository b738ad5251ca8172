"""One standard of evidence for every experiment: paired comparisons, Holm, intervals, verdicts.

Every experiment of the package compares configurations *paired by seed* (the same seed gives
every configuration the same initial network, data and data order), so the unit of evidence is
the per-seed difference ``candidate - baseline``:

* :func:`paired` : mean difference, its standard error, a 95 % t-interval and the two-sided
  p-value of the paired t-test (:func:`scipy.stats.ttest_rel`). When every seed gives the same
  non-zero difference the t-test is undefined; the exact two-sided sign test is used instead.
* :func:`holm` : Holm's step-down correction of the p-values of the configurations compared
  against the same baseline (controls the family-wise error rate at ``alpha``).
* :func:`compare` : both, for a baseline and several candidates, with a decision per candidate
  (``better`` / ``worse`` / ``no significant difference``).
* :func:`sentence` and :func:`markdown_table` : how results are worded and tabled.

Example
-------
>>> base = {0: 0.40, 1: 0.42, 2: 0.38}
>>> comps = compare(base, {"fine 0.3": {0: 0.45, 1: 0.47, 2: 0.41}})
>>> comps[0]["decision"], round(comps[0]["mean"], 3), round(comps[0]["p"], 3)
('better', 0.043, 0.023)
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["summary", "paired", "holm", "compare", "sentence", "fmt_ci", "fmt_p", "markdown_table", "DECISIONS"]

DECISIONS = ("better", "worse", "no significant difference")


def _t_quantile(level: float, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df))


def summary(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """``n, mean, sd, sem, low, high``: mean of ``values`` with its ``level`` t-interval.

    With one value ``sd``, ``sem``, ``low`` and ``high`` are None.
    Example: ``summary([0.4, 0.5])["mean"] == 0.45``.
    """
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if v.size == 0:
        raise ValueError("values must not be empty")
    out: dict[str, Any] = {"n": int(v.size), "mean": float(v.mean()), "sd": None, "sem": None, "low": None, "high": None}
    if v.size >= 2:
        sd = float(v.std(ddof=1))
        sem = sd / math.sqrt(v.size)
        h = _t_quantile(level, v.size - 1) * sem
        out.update(sd=sd, sem=sem, low=out["mean"] - h, high=out["mean"] + h)
    return out


def paired(baseline: Mapping[Any, float], candidate: Mapping[Any, float], level: float = 0.95) -> Optional[dict[str, Any]]:
    """Paired difference ``candidate - baseline`` over the keys (seeds) both have.

    Returns :func:`summary` of the differences plus ``t``, ``p`` (two-sided) and ``test``
    (``"paired t"``, ``"sign"`` when every difference is the same non-zero number, or ``"none"``
    when all are zero, with ``p = 1``), or None with fewer than 2 shared seeds.
    Example: ``paired({0: 0.4, 1: 0.5}, {0: 0.5, 1: 0.7})["mean"] == 0.15``.
    """
    from scipy import stats

    keys = sorted(set(baseline) & set(candidate))
    if len(keys) < 2:
        return None
    a = np.array([float(baseline[k]) for k in keys])
    b = np.array([float(candidate[k]) for k in keys])
    d = b - a
    out = summary(d, level)
    out["seeds"] = keys
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):   # constant up to rounding
        if abs(d[0]) <= 1e-12:
            out.update(t=None, p=1.0, test="none")
        else:                                   # exact two-sided sign test: all n signs agree
            out.update(t=None, p=min(1.0, 2 * 0.5 ** len(d)), test="sign")
        return out
    res = stats.ttest_rel(b, a)
    out.update(t=float(res.statistic), p=float(res.pvalue), test="paired t")
    return out


def holm(pvalues: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm-adjusted p-values (same order; None stays None and does not count as a test).

    Example: ``holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]``.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[Optional[float]] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def compare(baseline: Mapping[Any, float], candidates: Mapping[str, Mapping[Any, float]], alpha: float = 0.05,
            level: float = 0.95) -> list[dict[str, Any]]:
    """Each candidate against ``baseline``, paired by seed, Holm-corrected across candidates.

    ``baseline``: ``{seed: value}``; ``candidates``: ``{name: {seed: value}}``. Returns one dict
    per candidate (input order): ``name``, the :func:`paired` fields, ``p_holm`` and ``decision``
    (``better`` if ``p_holm < alpha`` and the mean difference is positive, ``worse`` if negative,
    else ``no significant difference``). Candidates with < 2 shared seeds get ``decision`` None.
    """
    rows = []
    for name, cand in candidates.items():
        d = paired(baseline, cand, level)
        rows.append({"name": name, **(d or {"n": 0})})
    adj = holm([r.get("p") for r in rows])
    for r, p in zip(rows, adj):
        r["p_holm"] = p
        r["m_tests"] = sum(q is not None for q in adj)
        if p is None:
            r["decision"] = None
        elif p < alpha and r["mean"] > 0:
            r["decision"] = "better"
        elif p < alpha and r["mean"] < 0:
            r["decision"] = "worse"
        else:
            r["decision"] = "no significant difference"
    return rows


def fmt_ci(d: Mapping[str, Any], digits: int = 3, signed: bool = True) -> str:
    """``+0.043 [−0.010, +0.096]``: a mean with its interval (just the mean without one)."""
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if d.get("low") is None:
        return f.format(d["mean"])
    return f"{f.format(d['mean'])} [{f.format(d['low'])}, {f.format(d['high'])}]"


def fmt_p(p: Optional[float]) -> str:
    """p-values as text: ``0.031``, ``2.1e-05``, ``—`` for None."""
    if p is None:
        return "—"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}".rstrip("0").rstrip(".") if p < 1 else "1"


def sentence(comp: Mapping[str, Any], metric: str = "test accuracy", baseline: str = "the baseline",
             digits: int = 3, alpha: float = 0.05) -> str:
    """One sentence for one row of :func:`compare`, worded by its numbers.

    Example: "`fine 0.3` changes test accuracy by +0.043 [-0.010, +0.096] against the baseline
    (paired over 3 seeds, Holm-adjusted p = 0.31): no significant difference."
    """
    if comp.get("decision") is None:
        return f"`{comp['name']}`: fewer than 2 seeds shared with {baseline}, no comparison."
    sem = comp.get("sem")
    k = comp["mean"] / sem if sem and comp["test"] == "paired t" else None
    size = f", {abs(k):.1f} standard errors" if k is not None else ""
    test = {"paired t": "", "sign": ", exact sign test", "none": ", identical in every seed"}[comp["test"]]
    tail = {"better": f"better than {baseline} at the {alpha:g} level after Holm's correction",
            "worse": f"worse than {baseline} at the {alpha:g} level after Holm's correction",
            "no significant difference": "no significant difference after Holm's correction"}[comp["decision"]]
    return (f"`{comp['name']}` changes {metric} by {fmt_ci(comp, digits)} (95 % CI) against {baseline} "
            f"(paired over {comp['n']} seeds{size}{test}; p = {fmt_p(comp['p'])}, Holm-adjusted "
            f"p = {fmt_p(comp['p_holm'])} over {comp['m_tests']} comparison{'s' if comp['m_tests'] != 1 else ''}): {tail}.")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table. Example: ``markdown_table(["a"], [[1]])`` -> ``'| a |\\n|---|\\n| 1 |'``."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
