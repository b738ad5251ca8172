"""The one judgement of a paired comparison: numbers in, numbers and a status out (no words).

Every experiment compares arms *paired by seed*; :func:`compare` tests several arms against one baseline
(Holm over them) and :func:`judge` gives one comparison its status by the claim grammar
(:data:`backdrop_repro.claims.GRAMMAR`) with the numbers behind it: interval, p, adjusted p, margin
test, TOST, MDE. The words are rendered later from the claims tables (:mod:`backdrop_repro.render`).

>>> comps = compare({0: 0.40, 1: 0.42, 2: 0.38}, {"fine 0.3": {0: 0.45, 1: 0.47, 2: 0.41}})
>>> comps[0]["decision"], round(comps[0]["mean"], 3), round(comps[0]["p"], 3)
('better', 0.043, 0.023)
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from . import claims
from .claims import MARGIN
from .stats import (UNIT, above_chance, holm, learned_over_seeds, margin_test, mde, paired, power_at, summary, tost,
                    trend)

__all__ = ["summary", "paired", "holm", "compare", "decide", "mde", "tost", "power_at", "judge",
           "unfinished_reason", "above_chance", "learned_over_seeds", "trend", "MARGIN", "LEVELLED_LOSS", "UNIT"]

#: a run with a fixed budget has levelled off when its final training loss (running mean) is below this
LEVELLED_LOSS = 0.1


def compare(baseline: Mapping[Any, float], candidates: Mapping[str, Mapping[Any, float]], alpha: float = 0.05,
            level: float = 0.95) -> list[dict[str, Any]]:
    """Each candidate (``{name: {seed: value}}``) against ``baseline`` (``{seed: value}``), paired by seed, Holm
    over the candidates: per candidate ``name``, the :func:`paired` fields, ``p_holm``, ``m_tests`` and
    ``decision`` (:func:`decide`; None with < 2 shared seeds)."""
    rows = [{"name": name, **(paired(baseline, cand, level) or {"n": 0})} for name, cand in candidates.items()]
    adj = holm([r.get("p") for r in rows])
    for r, p in zip(rows, adj):
        r.update(p_holm=p, m_tests=sum(q is not None for q in adj), decision=decide(p, r.get("mean"), alpha))
    return rows


def decide(p: Optional[float], mean: Optional[float], alpha: float = 0.05) -> Optional[str]:
    """``better`` / ``worse`` (p < alpha, by the sign of the mean), else ``no significant difference``; None
    without a p-value. Example: ``decide(0.01, -0.02) == "worse"``."""
    if p is None:
        return None
    if p < alpha:
        return "better" if mean > 0 else "worse" if mean < 0 else "no significant difference"
    return "no significant difference"


def unfinished_reason(stop_reasons: Optional[Mapping[str, int]], n: int, train_loss: Optional[float] = None,
                      levelled: float = LEVELLED_LOSS) -> Optional[str]:
    """Why ``n`` runs had not finished learning, or None: at least half reached the epoch cap (``stop_reasons``
    counts), or a fixed budget ended with mean training loss above ``levelled``. A label for the claims table.
    Example: ``unfinished_reason({"cap": 5}, 10) == '5 of 10 runs reached the epoch cap'``."""
    if stop_reasons:
        capped = int(stop_reasons.get("cap", 0))
        return f"{capped} of {n} runs reached the epoch cap" if capped * 2 >= max(1, n) else None
    if train_loss is not None and train_loss > levelled:
        return f"mean final training loss {train_loss:.2f} after a fixed budget"
    return None


def judge(comp: Mapping[str, Any], *, m: int = 1, p_adjusted: Optional[float] = None, margin: float = MARGIN,
          alpha: float = 0.05, unfinished: Optional[str] = None, family: str = "one comparison",
          fixed_in_advance: bool = False, metric: str = "test accuracy", name: Optional[str] = None) -> dict[str, Any]:
    """One paired comparison: the numbers of a claims row, its status by the grammar (:func:`claims.status`).

    ``comp``: a :func:`paired` result (or a row of :func:`compare`), or ``{seed: difference}``; ``m``: the
    comparisons of its family (the MDE and the margin test use ``alpha / m``); ``p_adjusted``: its Holm-adjusted
    p (default ``comp["p_holm"]`` when ``m > 1``, else ``p``); ``unfinished``: why its runs did not finish, or None.

    Returns (JSON-ready): ``status``, ``name``, ``metric``, ``interval`` (``mean, low, high, level, n``), ``p``,
    ``p_adjusted``, ``m``, ``family``, ``fixed_in_advance``, ``margin``, ``margin_test`` (``p``, ``p_adjusted``,
    ``clears``), ``tost``, ``mde``, ``power_at_observed``, ``unfinished``, ``unfinished_reason``.
    Example: ``judge({s: 0.05 + 0.01 * (s % 3) for s in range(10)})["status"] == "relevant gain"``.
    """
    from scipy import stats

    if not isinstance(comp.get("mean", None), (int, float)):      # {seed: difference}
        vals = [float(v) for v in comp.values()]
        c: dict[str, Any] = summary(vals) if vals else {"n": 0, "mean": None}
        if len(vals) >= 2:
            if np.ptp(vals) <= 1e-12 * max(1.0, float(np.abs(vals).max())):
                c.update(p=1.0 if abs(vals[0]) <= 1e-12 else min(1.0, 2 * 0.5 ** len(vals)), test="sign")
            else:
                c.update(p=float(stats.ttest_1samp(vals, 0.0).pvalue), test="paired t")
        comp = c
    n, mean, sd, p = comp.get("n") or 0, comp.get("mean"), comp.get("sd"), comp.get("p")
    if p_adjusted is None:
        p_adjusted = comp.get("p_holm", p) if m > 1 else p
    md = mde(sd, n, m=m, alpha=alpha)
    eq = tost(comp, margin, alpha / 2) if n >= 2 else None     # at alpha/2: the printed 95 % interval inside ±margin
    mt = margin_test(comp, margin, m)
    if mt is not None:
        mt["clears"] = mt["p_adjusted"] < alpha
    status = claims.status({"unfinished": unfinished, "seeds": n, "p_adj": p_adjusted, "delta": mean, "margin": margin,
                            "margin_p": mt and mt["p_adjusted"], "tost_p": eq and eq["p"], "ci_high": comp.get("high"),
                            "mde": md}, alpha)                      # the one grammar, as data
    return {"name": name if name is not None else comp.get("name"), "metric": metric,
            "interval": {"mean": mean, "low": comp.get("low"), "high": comp.get("high"), "level": 0.95, "n": n},
            "p": p, "p_adjusted": p_adjusted, "m": m, "family": family, "fixed_in_advance": bool(fixed_in_advance),
            "margin": margin, "margin_test": mt, "tost": eq, "mde": md,
            "power_at_observed": power_at(mean, sd, n, m, alpha) if mean is not None else None,
            "unfinished": unfinished is not None, "unfinished_reason": unfinished, "status": status}
