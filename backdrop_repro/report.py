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

from .stats import UNIT, above_chance, holm, learned_over_seeds, mde, paired, power_at, summary, tost, trend

__all__ = ["summary", "paired", "holm", "compare", "decide", "sentence", "fmt_ci", "fmt_p", "markdown_table",
           "DECISIONS", "mde", "tost", "power_at", "judge", "claim", "GRAMMAR", "STATUSES", "GAINS", "DEFINITIONS",
           "definitions_text", "grammar_markdown", "digits_for", "interval_phrase", "unfinished_reason",
           "above_chance", "learned_over_seeds", "learned_text", "trend", "CLAIMS", "MARGIN", "LEVELLED_LOSS"]

#: the equivalence margin of the package's claims: a change of test accuracy smaller than this is
#: too small to matter for a method sold as a regulariser (the gaps it should close are ≥ 0.1)
MARGIN = 0.03

DECISIONS = ("better", "worse", "no significant difference")


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


# --- the claim grammar ------------------------------------------------------------------------

#: the claim grammar, in the order the rules are tried: ``(status, when it applies, what the sentence says)``.
#: :func:`judge` applies it; ``docs/claims.md`` is generated from it (:func:`grammar_markdown`).
GRAMMAR = (
    ("unfinished", "the runs of either arm did not finish their budget (at least half reached the epoch cap, or a "
     "fixed budget ended with mean training loss above `LEVELLED_LOSS`)",
     "no claim: the accuracy is that of unfinished runs; the interval is given as a description"),
    ("relevant gain", "adjusted p < α, mean > 0, and the margin test (one-sided t-test of gain > margin, "
     "Bonferroni over the family) rejects at α",
     "a gain that clears the margin of relevance"),
    ("significant gain", "adjusted p < α and mean > 0, but the margin test does not reject",
     "a significant gain not shown to clear the margin of relevance (it may be too small to matter)"),
    ("contradicted", "adjusted p < α and mean < 0", "significantly worse"),
    ("equivalent", "not significant, and TOST against ±margin rejects at α/2 (the printed 95 % interval lies inside "
     "the margin; per comparison)",
     "equivalent to no change within the margin"),
    ("not confirmed", "not significant, the 95 % interval's upper end is below +margin and the design's MDE is at "
     "most the margin (it had the power to see a gain of the margin)",
     "gains of the margin or more excluded; no equivalence shown (the lower end may reach below −margin)"),
    ("inconclusive", "none of the above (the interval reaches the margin, or the design could not see a gain of "
     "the margin, or fewer than 2 seeds)",
     "the data neither show a change nor exclude a gain of the margin"),
)
#: the statuses of :data:`GRAMMAR`, in rule order
STATUSES = tuple(g[0] for g in GRAMMAR)
#: statuses that carry a positive claim of a gain (the headline counts them)
GAINS = ("relevant gain", "significant gain")
#: old name kept for callers that list the outcomes
CLAIMS = STATUSES
#: a run with a fixed budget has levelled off when its final training loss (running mean) is below this
LEVELLED_LOSS = 0.1

#: the terms of the grammar, defined once (README, docs and every notebook's findings quote this)
DEFINITIONS = {
    "Holm": "Holm's step-down correction: each p-value is adjusted for the number of comparisons asked together "
            "(the family), so that the chance of any false “significant” in the family stays below α = 0.05",
    "margin": f"margin of relevance ±{MARGIN:g} test accuracy: a change smaller than this is too small to matter",
    "margin test": "one-sided paired t-test that the gain exceeds the margin (Bonferroni over the family)",
    "TOST": "two one-sided tests: the change is shown to lie inside ±margin (equivalence; run at α/2, so that it "
            "agrees with the printed 95 % interval)",
    "MDE": "minimum detectable effect: the smallest true gain the design (seeds, SD, Holm over the family) "
           "detects with 80 % power",
    "design": "how a GP sweep's comparisons were planned (`gp_sweep.report.design_of`): *confirmatory*, fixed in "
              "advance with each seed its own data; *exploratory*, any other (a grid, from which later choices are made); "
              "*descriptive* (a profile's `sweep.design`), fixed in advance but too few seeds to be sized for power "
              "(`default`, `paper-cpu`): its statuses follow this grammar and read as a description, not a test of "
              "the claim",
}


def definitions_text(terms: Sequence[str] = ("Holm", "margin", "margin test", "TOST", "MDE")) -> str:
    """``*Holm*: ...; *TOST*: ...`` for the ``terms`` of :data:`DEFINITIONS` (one line of markdown)."""
    return "; ".join(f"*{t}*: {DEFINITIONS[t]}" for t in terms) + "."


def grammar_markdown() -> str:
    """The claim grammar as a markdown table (status, when it applies, what its sentence says)."""
    return markdown_table(["status", "when it applies (rules tried in this order)", "the sentence says"],
                          [[f"`{s}`", w, t] for s, w, t in GRAMMAR])


def digits_for(values: Sequence[Optional[float]], marks: Sequence[float] = (0.0, -MARGIN, MARGIN), base: int = 3,
               most: int = 6) -> int:
    """The fewest decimals (from ``base`` to ``most``) at which every value keeps, once rounded, its side
    of every mark (0 and ±margin by default) and a non-zero value does not print as zero.
    Example: ``digits_for([0.0004, 0.0021])`` is 4 (``+0.000`` would hide that the end is above 0)."""
    vals = [float(v) for v in values if v is not None]
    for d in range(base, most + 1):
        ok = True
        for v in vals:
            r = round(v, d)
            if v != 0 and r == 0:
                ok = False
            for c in marks:
                if (v > c) != (r > c) or (v < c) != (r < c):
                    ok = False
        if ok:
            return d
    return most


def fmt_ci(d: Mapping[str, Any], digits: Optional[int] = None, signed: bool = True,
           marks: Sequence[float] = (0.0, -MARGIN, MARGIN)) -> str:
    """``+0.043 [−0.010, +0.096]``: a mean with its interval (just the mean without one). Without
    ``digits``, as many decimals as :func:`digits_for` needs for the ``marks`` (at least 3)."""
    vals = [d.get("mean"), d.get("low"), d.get("high")]
    if digits is None:
        digits = digits_for(vals, marks)
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if d.get("low") is None:
        return f.format(d["mean"])
    return f"{f.format(d['mean'])} [{f.format(d['low'])}, {f.format(d['high'])}]"


def _side(x: float, margin: float) -> str:
    if x < -margin:
        return f"below −{margin:g}"
    if x == -margin:
        return f"at −{margin:g}"
    if x < margin:
        return f"inside ±{margin:g}"
    if x == margin:
        return f"at +{margin:g}"
    return f"above +{margin:g}"


def interval_phrase(low: float, high: float, margin: float = MARGIN) -> str:
    """What an interval ``[low, high]`` shows, both ends: against 0 (``above 0`` / ``below 0`` /
    ``includes 0``) and against ±``margin`` (``inside the ±m margin``, ``above the +m margin``,
    ``below the −m margin``, or ``lower end …, upper end …`` with each end's side).
    Example: ``interval_phrase(-0.033, 0.027)`` ->
    ``'includes 0; lower end below −0.03, upper end inside ±0.03'``."""
    zero = "above 0" if low > 0 else "below 0" if high < 0 else "includes 0"
    if -margin < low and high < margin:
        where = f"inside the ±{margin:g} margin"
    elif low > margin:
        where = f"above the +{margin:g} margin"
    elif high < -margin:
        where = f"below the −{margin:g} margin"
    else:
        where = f"lower end {_side(low, margin)}, upper end {_side(high, margin)}"
    return f"{zero}; {where}"


def unfinished_reason(stop_reasons: Optional[Mapping[str, int]], n: int, train_loss: Optional[float] = None,
                      levelled: float = LEVELLED_LOSS) -> Optional[str]:
    """Why a group of ``n`` runs had not finished learning at the end of its budget, or None: a
    convergence budget (``stop_reasons`` counts, e.g. ``{"cap": 6, "patience": 4}``) where at least
    half of the runs reached the cap, or a fixed budget (no ``stop_reasons``) whose mean final
    training loss is above ``levelled``. Example: ``unfinished_reason({"cap": 5}, 10)`` ->
    ``'5 of 10 runs reached the epoch cap'``."""
    if stop_reasons:
        capped = int(stop_reasons.get("cap", 0))
        return f"{capped} of {n} runs reached the epoch cap" if capped * 2 >= max(1, n) else None
    if train_loss is not None and train_loss > levelled:
        return f"mean final training loss {train_loss:.2f} after a fixed budget"
    return None


def judge(comp: Mapping[str, Any], *, m: int = 1, p_adjusted: Optional[float] = None, margin: float = MARGIN,
          alpha: float = 0.05, unfinished: Optional[str] = None, family: str = "one comparison",
          fixed_in_advance: bool = False, metric: str = "test accuracy", name: Optional[str] = None) -> dict[str, Any]:
    """The one claim of the package: judge one paired comparison by :data:`GRAMMAR`.

    ``comp``: a :func:`paired` result (or a row of :func:`compare`), or ``{seed: difference}``
    (candidate − baseline per seed); ``m``: comparisons in its family (Holm over them; the MDE and the
    margin test use ``alpha / m``); ``p_adjusted``: its Holm-adjusted p-value over the family (default
    ``comp["p_holm"]`` when ``m > 1``, else its own ``p``); ``unfinished``: why its runs did not finish
    (:func:`unfinished_reason`), or None; ``family`` (a name) and ``fixed_in_advance`` are recorded.

    Returns a dict (JSON-ready): ``status`` (one of :data:`STATUSES`), ``sentence`` (also ``text``), ``name``,
    ``interval`` (``mean, low, high, level, n``), ``p``, ``p_adjusted``, ``m``, ``family``, ``fixed_in_advance``,
    ``margin``, ``margin_test`` (``p``, ``p_adjusted``, ``clears``), ``tost`` (``p``, ``equivalent``), ``mde``,
    ``power_at_observed`` (power of the family's test at the observed mean), ``unfinished`` (bool) and
    ``unfinished_reason``.

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
    n, mean, sem, sd = comp.get("n") or 0, comp.get("mean"), comp.get("sem"), comp.get("sd")
    p = comp.get("p")
    if p_adjusted is None:
        p_adjusted = comp.get("p_holm", p) if m > 1 else p
    md = mde(sd, n, m=m, alpha=alpha)
    eq = tost(comp, margin, alpha / 2) if n >= 2 else None     # at alpha/2: the printed 95 % interval inside ±margin
    if n >= 2 and sem:
        mp = float(stats.t.sf((mean - margin) / sem, n - 1))
    elif n >= 2 and mean is not None:                         # every seed the same difference
        mp = 0.0 if mean > margin else 1.0
    else:
        mp = None
    margin_test = None if mp is None else {"p": mp, "p_adjusted": min(1.0, mp * m), "clears": min(1.0, mp * m) < alpha}
    out: dict[str, Any] = {
        "name": name if name is not None else comp.get("name"), "metric": metric,
        "interval": {"mean": mean, "low": comp.get("low"), "high": comp.get("high"), "level": 0.95, "n": n},
        "p": p, "p_adjusted": p_adjusted, "m": m, "family": family, "fixed_in_advance": bool(fixed_in_advance),
        "margin": margin, "margin_test": margin_test, "tost": eq, "mde": md,
        "power_at_observed": power_at(mean, sd, n, m, alpha) if mean is not None else None,
        "unfinished": unfinished is not None, "unfinished_reason": unfinished}
    sig = p_adjusted is not None and p_adjusted < alpha
    if unfinished is not None:
        status = "unfinished"
    elif n < 2 or p_adjusted is None:
        status = "inconclusive"
    elif sig and mean > 0:
        status = "relevant gain" if margin_test and margin_test["clears"] else "significant gain"
    elif sig and mean < 0:
        status = "contradicted"
    elif eq is not None and eq["equivalent"]:
        status = "equivalent"
    elif comp.get("high") is not None and comp["high"] < margin and md is not None and md <= margin:
        status = "not confirmed"
    else:
        status = "inconclusive"
    out["status"] = status
    out["sentence"] = out["text"] = _sentence(out, comp)
    return out


def _sentence(j: Mapping[str, Any], comp: Mapping[str, Any]) -> str:
    """The sentence of one judgement: the status, then what the interval shows (both ends), then the tests."""
    iv, m, mg, status = j["interval"], j["m"], j["margin"], j["status"]
    if iv["n"] < 2 or iv["low"] is None:
        return f"{status}: fewer than 2 paired seeds, no interval"
    ci = fmt_ci(iv)
    ptxt = (f"Holm-adjusted p = {fmt_p(j['p_adjusted'])} over {m} comparisons ({j['family']})" if m > 1
            else f"p = {fmt_p(j['p_adjusted'])}, one comparison")
    where = f"{j['metric']} change {ci} (95 % CI over {iv['n']} seeds: {interval_phrase(iv['low'], iv['high'], mg)}; {ptxt})"
    mt, eq, md = j["margin_test"], j["tost"], j["mde"]
    mdt = f"MDE {md:.3f}" if md is not None else "no MDE (no spread)"
    mtp = "—" if mt is None else fmt_p(mt["p"]) + (f" (×{m} for the family: {fmt_p(mt['p_adjusted'])})" if m > 1 else "")
    if status == "unfinished":
        return f"unfinished, no claim: {j['unfinished_reason']}; {where}, a description of unfinished runs only"
    if status == "relevant gain":
        return f"relevant gain: {where}; margin test p = {mtp}: the gain clears +{mg:g}"
    if status == "significant gain":
        below = (f"the whole interval lies below +{mg:g}: too small to matter" if iv["high"] < mg else
                 f"the gain is not shown to clear +{mg:g}")
        return f"significant gain, not shown relevant: {where}; margin test p = {mtp}: {below}"
    if status == "contradicted":
        return f"contradicted (significantly worse): {where}"
    if status == "equivalent":
        return f"equivalent to no change within ±{mg:g}: {where}; TOST p = {fmt_p(eq['p'])}"
    if status == "not confirmed":
        return (f"not confirmed: {where}; gains of +{mg:g} or more excluded, {mdt} (80 % power); "
                f"equivalence not shown (TOST p = {fmt_p(eq['p']) if eq else '—'})")
    why = (f"with {iv['n']} seeds the design sees only gains ≥ {md:.3f} (MDE, 80 % power), more than the margin"
           if md is not None and md > mg else f"the interval reaches +{mg:g}" if iv["high"] >= mg else
           "no power estimate")
    return f"inconclusive: {where}; {why}"


def claim(comp: Mapping[str, Any], m: int = 1, margin: float = MARGIN, alpha: float = 0.05,
          p_key: str = "p_holm", **kw: Any) -> dict[str, Any]:
    """Deprecated spelling of :func:`judge` (``p_key`` names the deciding p-value of ``comp``)."""
    return judge(comp, m=m, p_adjusted=comp.get(p_key, comp.get("p")), margin=margin, alpha=alpha, **kw)


def learned_text(d: Mapping[str, Any]) -> str:
    """``0.505 [0.49995, 0.510] (not above chance 0.5 over 30 seeds, t-test p = 0.052; pooled exact
    binomial p = 0.045 on 30000 predictions, a description)`` for a :func:`learned_over_seeds` result."""
    ci = fmt_ci(d, signed=False, marks=(d["chance"],))
    s = (f"{ci} ({'above' if d['above'] else 'not above'} chance {d['chance']:g} over {d['n']} seeds, "
         f"t-test p = {fmt_p(d['p'])}")
    pl = d.get("pooled")
    if pl:
        s += f"; pooled exact binomial p = {fmt_p(pl['p'])} on {pl['total']} predictions, a description"
    return s + ")"


