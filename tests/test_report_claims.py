"""The claim grammar (``report.judge`` in ``backdrop_repro/report.py``): one table-driven test per branch, each
false sentence an earlier report printed, and a scan of every generated interval sentence of the committed
results against its numbers."""
import json
import re
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
    assert j["status"] == status
    assert j["sentence"].startswith(status.split(" ")[0])
    assert _check_sentence(j["sentence"]) >= 1 and j["unfinished"] is (unfinished is not None)
    assert set(j) >= {"status", "sentence", "interval", "p", "p_adjusted", "mde", "margin_test", "tost",
                      "power_at_observed", "unfinished", "family", "fixed_in_advance"}


def test_every_status_has_a_branch_and_a_docs_row(monkeypatch):
    assert {b[-1] for b in BRANCHES} == set(report.STATUSES)
    doc = (ROOT / "docs" / "claims.md").read_text()
    assert all(f"`{s}`" in doc for s in claims.STATUSES) and doc == render.claims_doc()
    assert set(report.STATUSES) <= set(claims.STATUSES)          # judge's statuses are the grammar's


# false sentences an earlier report printed, each with what the grammar must say instead
FALSE = [
    # "lies inside the ±0.03 margin" for intervals that do not
    (comp(-0.039, -0.070, -0.008, n=10), "below 0; lower end below −0.03, upper end inside ±0.03"),
    (comp(-0.044, -0.077, -0.010, n=10), "lower end below −0.03, upper end inside ±0.03"),
    (comp(-0.024, -0.072, 0.024, n=10), "lower end below −0.03, upper end inside ±0.03"),
    (comp(-0.015, -0.045, 0.016, n=10), "lower end below −0.03, upper end inside ±0.03"),
    (comp(-0.013, -0.036, 0.010, n=10), "lower end below −0.03, upper end inside ±0.03"),
    (comp(-0.003, -0.033, 0.027, n=10), "lower end below −0.03, upper end inside ±0.03"),
]


@pytest.mark.parametrize("c, phrase", FALSE)
def test_no_interval_outside_the_margin_is_called_inside(c, phrase):
    s = report.judge(c, p_adjusted=c["p"])["sentence"]
    assert "inside the ±0.03 margin" not in s and phrase in s
    _check_sentence(s)


def test_significance_is_not_read_as_relevance():
    # +0.028 [+0.011, +0.046]: significant after Holm, margin test p = 0.57: not a relevant gain
    d = json.loads((ROOT / "results" / "replication" / "gp_sweep.json").read_text())
    c = next(c for c in d["verdict"]["comparisons"] if c["name"] == "fine 0.9 + coarse 0.95")
    assert report.fmt_ci(c) == "+0.028 [+0.011, +0.046]" and c["p_holm"] < 0.05
    j = report.judge(c, m=2, p_adjusted=c["p_holm"], family=c["claim"]["family"], fixed_in_advance=True)
    assert j == c["claim"]                                            # the committed claim is this judgement
    assert j["status"] == "significant gain" and j["margin_test"]["p"] == pytest.approx(0.57, abs=0.005)
    assert "not shown relevant" in j["sentence"] and not j["margin_test"]["clears"]
    assert 0 < j["power_at_observed"] < 1


def test_digits_keep_decisions_apart():
    a = {"mean": 0.0019, "low": 0.00031, "high": 0.0035}
    assert report.fmt_ci(a) == "+0.0019 [+0.0003, +0.0035]"            # not "+0.002 [+0.000, +0.003]"
    assert report.fmt_ci({"mean": 0.0, "low": -0.00002, "high": 0.00002}) == "+0.00000 [-0.00002, +0.00002]"
    assert report.digits_for([0.0299, 0.0301]) == 4 and report.digits_for([0.4]) == 3


def test_learning_is_decided_over_seeds_not_pooled():
    # 30 seeds around 0.505 whose interval reaches chance, though the pooled binomial says p < 0.05
    import numpy as np

    z = np.random.default_rng(0).normal(0, 1, 30)
    v = list(0.505 + 0.016 * (z - z.mean()) / z.std(ddof=1))          # mean 0.505, SD 0.016 exactly
    d = report.learned_over_seeds(v, 0.5, pooled=(15150, 30000))
    assert d["pooled"]["above"] and d["low"] < 0.5 and not d["above"]
    assert "not above chance 0.5 over 30 seeds" in report.learned_text(d) and "a description" in report.learned_text(d)


# --- every generated interval sentence of the committed results, against its numbers ---------------------

NUM = r"([+\-−]?\d+\.\d+)"
SENT = re.compile(NUM + r" \[" + NUM + r", " + NUM + r"\] \(95 % CI over (\d+) seeds: (above 0|below 0|includes 0); "
                  r"(inside the ±([\d.]+) margin|above the \+([\d.]+) margin|below the −([\d.]+) margin|"
                  r"lower end ([^,]+), upper end ([^;]+));")


def _f(x: str) -> float:
    return float(x.replace("−", "-"))


def _side_ok(x: float, phrase: str) -> bool:
    kind, v = phrase.split(" ", 1)
    m = _f(v.lstrip("±+").lstrip("−")) if not v.startswith("−") else _f(v[1:])
    return {"below": x < -m, "at": abs(abs(x) - m) < 1e-12, "inside": -m < x < m, "above": x > m}[kind]


def _check_sentence(text: str) -> int:
    """Assert every interval sentence of ``text`` says what its printed numbers show; return how many."""
    n = 0
    for mt in SENT.finditer(text):
        mean, lo, hi = (_f(mt.group(i)) for i in (1, 2, 3))
        assert lo <= mean <= hi, mt.group(0)
        zero = mt.group(5)
        assert zero == ("above 0" if lo > 0 else "below 0" if hi < 0 else "includes 0"), mt.group(0)
        if mt.group(7):
            m = float(mt.group(7)); assert -m < lo and hi < m, mt.group(0)
        elif mt.group(8):
            assert lo > float(mt.group(8)), mt.group(0)
        elif mt.group(9):
            assert hi < -float(mt.group(9)), mt.group(0)
        else:
            assert _side_ok(lo, mt.group(10)) and _side_ok(hi, mt.group(11)), mt.group(0)
            assert not (("inside" in mt.group(10)) and ("inside" in mt.group(11))), mt.group(0)
        n += 1
    return n


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _committed_texts():
    for path in sorted((ROOT / "results").glob("*/*.json")):
        d = json.loads(path.read_text())
        d.pop("runs", None)
        yield from _strings(d)
    yield (ROOT / "README.md").read_text()


def test_every_generated_interval_sentence_matches_its_numbers():
    n = sum(_check_sentence(t) for t in _committed_texts())
    assert n >= 50                     # the committed verdicts carry many interval sentences


def test_no_two_identical_printed_intervals_carry_different_decisions():
    seen: dict[str, set] = {}
    for path in sorted((ROOT / "results").glob("*/*.json")):
        d = json.loads(path.read_text())
        d.pop("runs", None)

        def walk(o):
            if isinstance(o, dict):
                if isinstance(o.get("claim"), dict) and "status" in o["claim"] and o.get("low") is not None:
                    seen.setdefault(report.fmt_ci(o), set()).add(o["claim"]["status"])
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(d)
    assert len(seen) > 40
    assert not {k: v for k, v in seen.items() if len(v) > 1}


def test_power_range_is_over_the_comparisons_at_the_edge():
    d = json.loads((ROOT / "results" / "learnability" / "learnability.json").read_text())
    from backdrop_repro.experiments.learnability.report import answer, question_blocks

    edge = [r["claim"]["mde"] for _, b, e in question_blocks(d) if e for r in b["comparisons"] if r.get("claim")]
    a = answer(d)
    assert f"{min(edge):.3f}–{max(edge):.3f}" in a and "left out as not at the edge" in a
    assert all(r["claim"]["status"] == "unfinished" for _, b, _ in question_blocks(d) for r in b["comparisons"]
               if r.get("unfinished"))
