"""The claim grammar (``report.judge`` in ``backdrop_repro/report.py``): one table-driven test per branch, the
comparisons an earlier report misworded, and the committed judgements against their numbers."""
import json
from pathlib import Path

import pytest

from backdrop_repro import claims, render, report

ROOT = Path(__file__).resolve().parents[1]


def comp(mean, low, high, n=30, p=None, sd=None):
    """A paired comparison with the given interval (sem from the half-width, as a t-interval)."""
    from scipy import stats

    t = stats.t.ppf(0.975, n - 1)
    sem = (high - low) / 2 / t
    p = p if p is not None else float(2 * stats.t.sf(abs(mean) / sem, n - 1))
    return {"mean": mean, "low": low, "high": high, "n": n, "sem": sem, "sd": sd or sem * n ** 0.5, "p": p}


# (case, comparison, m, unfinished, expected status)
BRANCHES = [
    ("gain above the margin", comp(0.08, 0.06, 0.10), 1, None, "relevant gain"),
    ("significant gain straddling the margin (replication, fine 0.9 + coarse 0.95)",
     comp(0.028, 0.011, 0.046), 2, None, "significant gain"),
    ("significant gain wholly below the margin (ROC-AUC)", comp(0.005, 0.003, 0.006, n=24), 6, None, "significant gain"),
    ("significantly worse", comp(-0.042, -0.062, -0.021), 1, None, "contradicted"),
    ("interval inside the margin", comp(0.003, -0.011, 0.016, n=10), 1, None, "equivalent"),
    ("upper end below the margin, lower end below −margin, power enough",
     comp(-0.012, -0.032, 0.008, n=30), 1, None, "not confirmed"),
    ("upper end below the margin, but too few seeds to see the margin",
     comp(-0.02, -0.08, 0.028, n=3), 1, None, "inconclusive"),
    ("interval reaches the margin", comp(0.016, -0.008, 0.040, n=10), 1, None, "inconclusive"),
    ("runs capped: no claim even for a gain", comp(0.08, 0.06, 0.10), 1, "10 of 10 runs reached the epoch cap",
     "unfinished"),
    ("runs capped: no claim for a loss", comp(-0.039, -0.070, -0.008, n=10), 1, "mean final training loss 0.28",
     "unfinished"),
]


@pytest.mark.parametrize("case, c, m, unfinished, status", BRANCHES, ids=[b[0] for b in BRANCHES])
def test_every_branch_of_the_grammar(case, c, m, unfinished, status):
    j = report.judge(c, m=m, p_adjusted=min(1.0, c["p"] * m), unfinished=unfinished)
    assert j["status"] == status and j["unfinished"] is (unfinished is not None)
    assert "sentence" not in j and "text" not in j                      # numbers only: the words are render's
    assert set(j) >= {"status", "interval", "p", "p_adjusted", "mde", "margin_test", "tost",
                      "power_at_observed", "unfinished", "family", "fixed_in_advance"}


def test_every_status_has_a_branch_and_a_docs_row(monkeypatch):
    assert {b[-1] for b in BRANCHES} == {g[0] for g in claims.GRAMMAR if g[1] == "primary"}
    doc = (ROOT / "docs" / "claims.md").read_text()
    assert all(f"`{s}`" in doc for s in claims.STATUSES) and doc == render.claims_doc()


# intervals an earlier report called "inside the ±0.03 margin": each reaches below −0.03, so none is equivalent
FALSE = [comp(-0.039, -0.070, -0.008, n=10), comp(-0.044, -0.077, -0.010, n=10), comp(-0.024, -0.072, 0.024, n=10),
         comp(-0.015, -0.045, 0.016, n=10), comp(-0.013, -0.036, 0.010, n=10), comp(-0.003, -0.033, 0.027, n=10)]


@pytest.mark.parametrize("c", FALSE)
def test_no_interval_outside_the_margin_is_equivalent(c):
    j = report.judge(c, p_adjusted=c["p"])
    assert j["status"] != "equivalent" and not j["tost"]["equivalent"]


def test_significance_is_not_read_as_relevance():
    # +0.028 [+0.011, +0.046]: significant after Holm, margin test p = 0.57: not a relevant gain
    d = json.loads((ROOT / "results" / "replication" / "gp_sweep.json").read_text())
    c = next(c for c in d["verdict"]["comparisons"] if c["name"] == "fine 0.9 + coarse 0.95")
    assert render.iv(c) == "+0.028 [+0.011, +0.046]" and c["p_holm"] < 0.05
    j = report.judge(c, m=2, p_adjusted=c["p_holm"], family=c["claim"]["family"], fixed_in_advance=True)
    assert j == c["claim"]                                            # the committed claim is this judgement
    assert j["status"] == "significant gain" and j["margin_test"]["p"] == pytest.approx(0.57, abs=0.005)
    assert not j["margin_test"]["clears"]
    assert 0 < j["power_at_observed"] < 1


def test_learning_is_decided_over_seeds_not_pooled():
    # 30 seeds around 0.505 whose interval reaches chance, though the pooled binomial says p < 0.05
    import numpy as np

    z = np.random.default_rng(0).normal(0, 1, 30)
    v = list(0.505 + 0.016 * (z - z.mean()) / z.std(ddof=1))          # mean 0.505, SD 0.016 exactly
    d = report.learned_over_seeds(v, 0.5, pooled=(15150, 30000))
    assert d["pooled"]["above"] and d["low"] < 0.5 and not d["above"]


def test_no_two_identical_printed_intervals_carry_different_decisions():
    seen: dict[str, set] = {}
    for path in sorted((ROOT / "results").glob("*/*.json")):
        d = json.loads(path.read_text())
        d.pop("runs", None)

        def walk(o):
            if isinstance(o, dict):
                if isinstance(o.get("claim"), dict) and "status" in o["claim"] and o.get("low") is not None:
                    seen.setdefault(render.iv(o), set()).add(o["claim"]["status"])
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(d)
    assert len(seen) > 40
    assert not {k: v for k, v in seen.items() if len(v) > 1}


def test_learnability_comparisons_whose_runs_hit_the_cap_carry_no_claim():
    d = json.loads((ROOT / "results" / "learnability" / "learnability.json").read_text())
    rows = [r for b in d["edge"]["cells"] + d["twoscale"] for r in b["comparisons"] if r.get("claim")]
    assert rows and all((r["claim"]["status"] == "unfinished") == bool(r.get("unfinished")) for r in rows)
