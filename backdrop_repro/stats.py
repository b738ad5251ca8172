"""Statistics, numbers only: paired summaries, Holm, the margin test, TOST, MDE, trend, learning above chance.

Every comparison of the package is *paired by seed* (the same seed gives both arms the same initial
network, data and data order), so the unit of evidence is the per-seed difference ``arm - baseline``.
These functions take numbers and return numbers (dicts of floats), never words: the claim grammar
(:mod:`backdrop_repro.claims`) gives a row of these numbers its status, and the templates
(:mod:`backdrop_repro.render`) word it (in the spirit of google-research's ``rliable``).

* :func:`summary` / :func:`paired`: mean with a 95 % t-interval; the paired t-test (two-sided; the
  exact sign test when every seed gives the same non-zero difference).
* :func:`holm`: Holm's step-down adjustment over a family.
* :func:`margin_test`: one-sided paired t-test that the gain exceeds the margin.
* :func:`tost`: two one-sided tests of equivalence within ±margin.
* :func:`mde` / :func:`power_at`: the minimum detectable effect at 80 % power and the power at an effect
  (two-sided paired t-test at ``alpha / m``, the first step of Holm over ``m``; exact noncentral t).
* :func:`learned_over_seeds`: is a mean accuracy above chance? Two-sided one-sample t-test over seeds
  (the independent unit). :func:`above_chance`: a pooled binomial test, a description only.
* :func:`trend`: one dose-response test (per-seed slope, t-test over seeds).

>>> d = paired({0: 0.40, 1: 0.42, 2: 0.38}, {0: 0.45, 1: 0.47, 2: 0.41})
>>> round(d["mean"], 3), round(d["p"], 3)
(0.043, 0.023)
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["summary", "paired", "holm", "margin_test", "tost", "mde", "power_at", "learned_over_seeds",
           "above_chance", "trend", "UNIT"]

#: the range of an accuracy (or an AUC): intervals of such means are clipped to it (:func:`summary`)
UNIT = (0.0, 1.0)


def margin_test(comp: Mapping[str, Any], margin: float, m: int = 1) -> Optional[dict[str, Any]]:
    """One-sided paired t-test that the mean gain exceeds ``margin`` (H0: mean <= margin), for a
    :func:`paired` result; ``p_adjusted`` is Bonferroni over a family of ``m``. None with < 2 seeds.
    When every seed has the same difference the test is exact: p 0 above the margin, else 1.
    Example: ``margin_test({"n": 10, "mean": 0.1, "sem": 0.01}, 0.03)["p"] < 1e-4``."""
    from scipy import stats

    n, mean, sem = comp.get("n") or 0, comp.get("mean"), comp.get("sem")
    if n < 2 or mean is None:
        return None
    p = float(stats.t.sf((mean - margin) / sem, n - 1)) if sem else (0.0 if mean > margin else 1.0)
    return {"p": p, "p_adjusted": min(1.0, p * m)}


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


def tost(comp: Mapping[str, Any], margin: float = 0.03, alpha: float = 0.05) -> Optional[dict[str, Any]]:
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


def power_at(delta: float, sd: Optional[float], n: Optional[int], m: int = 1, alpha: float = 0.05) -> Optional[float]:
    """Power of the two-sided paired t-test over ``n`` seeds at level ``alpha / m`` (the first step of
    Holm over ``m``) against a true mean difference ``delta``, for per-seed differences of SD ``sd``
    (noncentral t). None with fewer than 2 seeds or no SD. Example: ``power_at(mde(0.04, 10), 0.04, 10)`` ≈ 0.8.
    """
    from scipy import stats

    if sd is None or n is None or n < 2 or not sd > 0:
        return None
    df = n - 1
    crit = stats.t.ppf(1 - alpha / m / 2, df)
    nc = abs(delta) / (sd / math.sqrt(n))
    lower = float(stats.nct.cdf(-crit, df, nc))
    return float(min(1.0, stats.nct.sf(crit, df, nc) + (lower if math.isfinite(lower) else 0.0)))


def learned_over_seeds(values: Sequence[float] | Mapping[Any, float], chance: float, alpha: float = 0.05,
                       pooled: Optional[tuple[int, int]] = None) -> dict[str, Any]:
    """Does a network learn above ``chance``? Decided over seeds (the independent unit): the 95 %
    t-interval of the per-seed accuracies lies above ``chance`` (two-sided one-sample t-test against
    chance, p < ``alpha``, mean above). Returns :func:`summary` fields, ``chance``, ``p``, ``above``,
    ``accuracy`` (the mean) and, with ``pooled=(correct, total)``, ``pooled`` (:func:`above_chance`, a
    description). Example: ``learned_over_seeds([0.50, 0.51, 0.49], 0.5)["above"] is False``."""
    from scipy import stats

    v = list(values.values()) if isinstance(values, Mapping) else list(values)
    out = summary(v)
    p = None
    if len(v) >= 2:
        p = 1.0 if np.ptp(v) == 0 and v[0] == chance else (
            min(1.0, 2 * 0.5 ** len(v)) if np.ptp(v) == 0 else float(stats.ttest_1samp(v, chance).pvalue))
    out.update(chance=chance, p=p, accuracy=out["mean"],
               above=bool(p is not None and p < alpha and out["mean"] > chance))
    if pooled is not None:
        out["pooled"] = above_chance(pooled[0], pooled[1], chance) if pooled[1] else None
    return out


def above_chance(correct: int, total: int, chance: float) -> dict[str, Any]:
    """Exact one-sided binomial test that ``correct`` of ``total`` pooled predictions beat ``chance``.

    A **description** only: the test images are shared by the seeds, so pooled predictions are not
    independent; whether a network learns is decided over seeds by :func:`learned_over_seeds`.
    Returns ``accuracy``, ``p`` and ``above`` (``p < 0.05``).
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
