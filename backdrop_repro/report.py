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
* Power and the wording of claims: :func:`mde` (the smallest mean difference a design detects
  with 80 % power), :func:`tost` (equivalence within a stated margin), :func:`claim` (one of
  ``confirmed`` / ``not confirmed`` / ``inconclusive`` / ``contradicted`` with its sentence),
  :func:`above_chance` (exact binomial test of pooled predictions against chance) and
  :func:`trend` (one pre-specified dose-response test: per-seed slope of the gain on the mask
  probability, t-test over seeds).

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

__all__ = ["summary", "paired", "holm", "compare", "decide", "sentence", "fmt_ci", "fmt_p", "markdown_table",
           "DECISIONS", "mde", "tost", "claim", "above_chance", "trend", "CLAIMS", "MARGIN"]

#: outcomes of a claim (see :func:`claim`)
CLAIMS = ("confirmed", "not confirmed", "inconclusive", "contradicted")
#: the equivalence margin of the package's claims: a change of test accuracy smaller than this is
#: too small to matter for a method sold as a regulariser (the gaps it should close are ≥ 0.1)
MARGIN = 0.03

DECISIONS = ("better", "worse", "no significant difference")


def _t_quantile(level: float, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df))


def summary(values: Sequence[float], level: float = 0.95,
            bounds: Optional[tuple[float, float]] = None) -> dict[str, Any]:
    """``n, mean, sd, sem, low, high``: mean of ``values`` with its ``level`` t-interval.

    With one value ``sd``, ``sem``, ``low`` and ``high`` are None. ``bounds`` (e.g. ``(0, 1)`` for an
    accuracy) clips the interval to the range the quantity can take: the true mean always lies in
    that range, so clipping removes only impossible values and keeps the t-interval's coverage
    (the seed stays the unit; the mean stays inside the interval). ``clipped`` says whether it did.
    Example: ``summary([0.4, 0.5])["mean"] == 0.45``; ``summary([0.5, 1.0], bounds=(0, 1))["high"] == 1.0``.
    """
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if v.size == 0:
        raise ValueError("values must not be empty")
    if bounds is not None and not (len(bounds) == 2 and bounds[0] < bounds[1]):
        raise ValueError(f"bounds must be None or (low, high) with low < high, got {bounds!r}")
    out: dict[str, Any] = {"n": int(v.size), "mean": float(v.mean()), "sd": None, "sem": None, "low": None, "high": None}
    if v.size >= 2:
        sd = float(v.std(ddof=1))
        sem = sd / math.sqrt(v.size)
        h = _t_quantile(level, v.size - 1) * sem
        out.update(sd=sd, sem=sem, low=out["mean"] - h, high=out["mean"] + h)
        if bounds is not None:
            lo, hi = max(out["low"], float(bounds[0])), min(out["high"], float(bounds[1]))
            out.update(low=lo, high=hi, clipped=bool(lo != out["low"] or hi != out["high"]))
    return out


#: the range of an accuracy (or an AUC): intervals of such means are clipped to it (:func:`summary`)
UNIT = (0.0, 1.0)


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
        r["decision"] = decide(p, r.get("mean"), alpha)
    return rows


def decide(p: Optional[float], mean: Optional[float], alpha: float = 0.05) -> Optional[str]:
    """The decision of one comparison from its (adjusted) p-value and mean difference: ``better``
    (``p < alpha``, mean > 0), ``worse`` (``p < alpha``, mean < 0), else ``no significant
    difference``; None without a p-value. Example: ``decide(0.01, -0.02) == "worse"``."""
    if p is None:
        return None
    if p < alpha and mean > 0:
        return "better"
    if p < alpha and mean < 0:
        return "worse"
    return "no significant difference"


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
    if p == 0:
        return "0 (below 1e-300)"   # below the smallest double: the test is overwhelming
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


def mde(sd: float, n: int, m: int = 1, alpha: float = 0.05, power: float = 0.8) -> Optional[float]:
    """Minimum detectable effect: the smallest true mean paired difference that a two-sided paired
    t-test over ``n`` seeds, at level ``alpha / m`` (Bonferroni, the first step of Holm over ``m``
    comparisons), detects with probability ``power``, for per-seed differences of SD ``sd``.

    Exact (noncentral t). None with fewer than 2 seeds or no SD.
    Example: ``round(mde(0.04, 10), 3) == 0.04`` (about one SD at 10 seeds).
    """
    from scipy import optimize, stats

    if sd is None or n is None or n < 2 or not sd > 0:
        return None
    df, a = n - 1, alpha / m
    crit = stats.t.ppf(1 - a / 2, df)

    def pw(delta: float) -> float:
        nc = delta / (sd / math.sqrt(n))
        lower = float(stats.nct.cdf(-crit, df, nc))       # the wrong-sign rejections: tiny, may be NaN
        return float(stats.nct.sf(crit, df, nc)) + (lower if math.isfinite(lower) else 0.0) - power

    hi = sd / math.sqrt(n)
    while pw(hi) < 0:                       # bracket: double until the power exceeds the target
        hi *= 2
        if hi / (sd / math.sqrt(n)) > 60:   # beyond any useful design (and the noncentral t's range)
            return None
    return float(optimize.brentq(pw, 1e-12 * sd, hi))


def tost(comp: Mapping[str, Any], margin: float = MARGIN, alpha: float = 0.05) -> Optional[dict[str, Any]]:
    """Two one-sided tests of equivalence for a :func:`paired` result: is the mean difference
    inside ``(-margin, +margin)``? Returns ``margin``, ``p`` (the larger one-sided p-value) and
    ``equivalent`` (``p < alpha``, i.e. the 90 % interval lies inside the margin), or None
    without an SD. Example: a mean of 0.001 with SE 0.005 over 30 seeds is equivalent at ±0.03.
    """
    from scipy import stats

    sem, n = comp.get("sem"), comp.get("n")
    if not sem or not n or n < 2:
        return None
    df = n - 1
    p_low = float(stats.t.sf((comp["mean"] + margin) / sem, df))     # H0: mean <= -margin
    p_high = float(stats.t.cdf((comp["mean"] - margin) / sem, df))   # H0: mean >= +margin
    p = max(p_low, p_high)
    return {"margin": margin, "p": p, "equivalent": p < alpha}


def claim(comp: Mapping[str, Any], m: int = 1, margin: float = MARGIN, alpha: float = 0.05,
          p_key: str = "p_holm") -> dict[str, Any]:
    """Word one comparison (a row of :func:`compare` or :func:`paired`) by its numbers and power.

    ``m``: comparisons in its family (for the minimum detectable effect); ``p_key``: the p-value
    that decides (``p_holm`` in a family, ``p`` for one pre-planned comparison). Returns
    ``status`` (one of :data:`CLAIMS`), ``mde``, ``tost`` and ``text``:

    * ``confirmed``: better at ``alpha`` (after Holm when ``p_key`` is ``p_holm``);
    * ``contradicted``: significantly worse;
    * ``not confirmed``: not better, the data exclude gains above the interval's upper end, which
      lies below ``margin``, and the design had the power to see a gain of ``margin`` (its
      ``mde`` is at most ``margin``: with few seeds a narrow interval can come from an SD that
      happens to be small, and proves nothing); TOST says whether it is equivalent to no change;
    * ``inconclusive``: not better, and either the interval still reaches ``margin`` or the design
      could detect only gains of at least its ``mde`` > ``margin``.
    """
    p = comp.get(p_key, comp.get("p"))
    md = mde(comp.get("sd"), comp.get("n"), m=m, alpha=alpha)
    eq = tost(comp, margin, alpha)
    det = f"could detect only gains ≥ {md:.3f} with 80 % power" if md is not None else "has no power estimate"
    if p is not None and p < alpha and comp["mean"] > 0:
        mdt = f"; minimum detectable effect at 80 % power {md:.3f}" if md is not None else ""
        status, text = "confirmed", f"confirmed (gain {fmt_ci(comp)}{mdt})"
    elif p is not None and p < alpha and comp["mean"] < 0:
        status, text = "contradicted", f"contradicted: worse by {fmt_ci(comp)}"
    elif comp.get("high") is not None and comp["high"] < margin and md is not None and md <= margin:
        eqt = (f"; equivalent to no change within ±{margin:g} (TOST p = {fmt_p(eq['p'])})" if eq and eq["equivalent"]
               else "")
        status, text = "not confirmed", f"not confirmed; gains above {comp['high']:+.3f} excluded{eqt}"
    else:
        status = "inconclusive"
        why = (f"{fmt_ci(comp)} reaches the ±{margin:g} margin" if comp.get("high") is None or comp["high"] >= margin
               else f"{fmt_ci(comp)} lies inside the ±{margin:g} margin, but with {comp.get('n')} seeds")
        text = f"inconclusive: {why}, and the design {det}"
    return {"status": status, "mde": md, "tost": eq, "text": text}


def above_chance(correct: int, total: int, chance: float) -> dict[str, Any]:
    """Exact one-sided binomial test that ``correct`` of ``total`` predictions beat ``chance``.

    Returns ``accuracy``, ``p`` and ``above`` (``p < 0.05``). Used on the test predictions pooled
    over seeds (the test images are shared by the seeds, so this asks whether the network class
    beats chance on this test set, not how much it varies between seeds).
    Example: ``above_chance(436, 1000, 0.25)["above"] is True``.
    """
    from scipy import stats

    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"correct must be in [0, total] with total > 0, got {correct}/{total}")
    p = float(stats.binomtest(int(correct), int(total), chance, alternative="greater").pvalue)
    return {"accuracy": correct / total, "correct": int(correct), "total": int(total), "chance": chance,
            "p": p, "above": p < 0.05}


def trend(points: Mapping[Any, Sequence[tuple[float, float]]], level: float = 0.95) -> Optional[dict[str, Any]]:
    """Dose-response as one comparison: for each seed the least-squares slope of the gain on the
    dose (e.g. the mask probability), then the mean slope over seeds with its interval and the
    two-sided one-sample t-test p-value. ``points``: ``{seed: [(dose, gain), ...]}`` (seeds with
    fewer than 2 distinct doses are dropped). None with fewer than 2 seeds.
    Example: gains that rise by 0.1 per unit dose in every seed give a mean slope of 0.1.
    """
    from scipy import stats

    slopes = {}
    for seed, pts in points.items():
        x = np.array([float(a) for a, _ in pts])
        y = np.array([float(b) for _, b in pts])
        if len(set(x.tolist())) < 2:
            continue
        xc = x - x.mean()
        slopes[seed] = float((xc * (y - y.mean())).sum() / (xc * xc).sum())
    if len(slopes) < 2:
        return None
    v = list(slopes.values())
    out = summary(v, level)
    if np.ptp(v) == 0:
        out.update(t=None, p=min(1.0, 2 * 0.5 ** len(v)) if v[0] != 0 else 1.0)
    else:
        res = stats.ttest_1samp(v, 0.0)
        out.update(t=float(res.statistic), p=float(res.pvalue))
    out["slopes"] = slopes
    return out
