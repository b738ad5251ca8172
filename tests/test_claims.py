"""The claim grammar as data, the claims table's checks, and the committed tables against the summaries."""
import math
from pathlib import Path

import pytest

from backdrop_repro import claims, tables

ROOT = Path(__file__).resolve().parent.parent
BASE = dict(study="t", experiment="gp_sweep", design="confirmatory", arm="a", baseline="none", seeds=30,
            family_size=2, margin=0.03, baseline_mean=0.4, ceiling=1.0)


@pytest.fixture(autouse=True)
def committed(monkeypatch):
    """Read the committed results (the checkout is the output root)."""
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))


def make(**kw):
    return claims.row(**{**BASE, **kw})


@pytest.mark.parametrize("fields, status", [
    (dict(delta=0.05, ci_low=0.04, ci_high=0.06, p=1e-6, p_adj=2e-6, margin_p=1e-4, tost_p=1.0, mde=0.02), "relevant gain"),
    (dict(delta=0.02, ci_low=0.004, ci_high=0.04, p=0.01, p_adj=0.02, margin_p=0.8, tost_p=0.3, mde=0.02), "significant gain"),
    (dict(delta=-0.04, ci_low=-0.06, ci_high=-0.02, p=1e-4, p_adj=2e-4, margin_p=1.0, tost_p=0.8, mde=0.02), "contradicted"),
    (dict(delta=0.0, ci_low=-0.01, ci_high=0.01, p=0.9, p_adj=0.9, margin_p=1.0, tost_p=1e-5, mde=0.02), "equivalent"),
    (dict(delta=-0.02, ci_low=-0.045, ci_high=0.01, p=0.2, p_adj=0.4, margin_p=1.0, tost_p=0.3, mde=0.025), "not confirmed"),
    (dict(delta=-0.02, ci_low=-0.045, ci_high=0.01, p=0.2, p_adj=0.4, margin_p=1.0, tost_p=0.3, mde=0.05), "inconclusive"),
    (dict(delta=0.05, ci_low=0.04, ci_high=0.06, p=1e-6, p_adj=2e-6, unfinished="2 of 4 runs at the cap"), "unfinished"),
])
def test_the_grammar_gives_each_status_from_the_numbers(fields, status):
    assert make(**fields)["status"] == status


def test_a_margin_the_metric_cannot_reach_is_refused():
    # an AUC of 0.975 has 0.025 of room: a +0.03 margin cannot be cleared, so it is no margin
    with pytest.raises(claims.ClaimsError, match="margin 0.03 cannot be reached"):
        make(metric="test AUC", baseline_mean=0.975, delta=0.005, ci_low=0.003, ci_high=0.006, p=1e-5, p_adj=1e-4)


@pytest.mark.parametrize("change, match", [
    (dict(status="huge gain"), "status must be one of"),
    (dict(status="relevant gain"), "disagrees with its numbers"),
    (dict(p=7.5), r"p must be in \[0, 1\]"),
    (dict(delta=float("nan")), "finite number"),
    (dict(design="confirmed"), "design must be one of"),
    (dict(seeds=""), "column 'seeds' is empty"),
    (dict(colour="red"), "unknown column"),
    (dict(ci_low=0.05), "does not hold its mean"),
])
def test_check_refuses_a_row_that_is_not_in_the_grammar(change, match):
    r = make(delta=0.0, ci_low=-0.01, ci_high=0.01, p=0.9, p_adj=0.9, margin_p=1.0, tost_p=1e-5, mde=0.02)
    with pytest.raises(claims.ClaimsError, match=match):
        claims.check({**r, **change})


def test_a_table_round_trips_and_a_bad_file_is_named(tmp_path):
    r = make(delta=0.02, ci_low=0.004, ci_high=0.04, p=0.01, p_adj=0.02, margin_p=0.8, tost_p=0.3, mde=0.02)
    path = claims.write(tmp_path, [r])
    assert claims.read(path) == [r]
    with pytest.raises(claims.ClaimsError, match="no claims table"):
        claims.read(tmp_path / "nope" / "claims.csv")
    path.write_text(path.read_text().replace("significant gain", "huge gain"))
    with pytest.raises(claims.ClaimsError, match=r"claims.csv, line 2: .*status must be one of"):
        claims.read(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(claims.ClaimsError, match="header"):
        claims.read(path)


def _claims_in(summary, kind):
    """Every judged comparison of a committed summary: (arm, task-ish context, claim dict)."""
    if kind == "gp_sweep":
        v = summary["verdict"]
        out = [c["claim"] for c in v["comparisons"]]
        out += [st["comparison"]["claim"] for st in v.get("studies") or [] if (st.get("comparison") or {}).get("claim")]
        return out
    if kind == "learnability":
        cells = summary["edge"]["cells"] + [t for t in summary.get("twoscale") or [] if t.get("at_edge", True)]
        return [c["claim"] for cell in cells for c in cell.get("comparisons") or []]
    if kind == "confirm":
        return [c["claim"] for c in summary.get("comparisons") or []]
    return []


@pytest.mark.parametrize("profile, kind", [("replication", "gp_sweep"), ("scaled", "gp_sweep"), ("default", "gp_sweep"),
                                           ("paper-cpu", "gp_sweep"), ("learnability", "learnability"),
                                           ("confirm", "confirm")])
def test_the_committed_tables_reproduce_every_judged_number_of_the_summaries(profile, kind):
    summary = tables.load(profile, kind)
    rows = [r for r in tables.table(profile) if r["experiment"] == kind and r["role"] == "primary"]
    old = _claims_in(summary, kind)
    assert len(rows) == len(old) > 0
    for r, c in zip(rows, old):
        assert r["status"] == c["status"], (r["arm"], r["task"])       # the grammar as data gives the same status
        iv = c["interval"]
        for mine, theirs in ((r["delta"], iv["mean"]), (r["ci_low"], iv["low"]), (r["ci_high"], iv["high"]),
                             (r["p"], c["p"]), (r["p_adj"], c["p_adjusted"]), (r["mde"], c["mde"]),
                             (r["margin_p"], (c.get("margin_test") or {}).get("p_adjusted")),
                             (r["tost_p"], (c.get("tost") or {}).get("p"))):
            assert (mine is None and theirs is None) or math.isclose(mine, theirs, rel_tol=1e-12, abs_tol=1e-15)
        assert r["seeds"] == iv["n"] and r["family_size"] == c["m"]


def test_committed_tables_are_current():
    """Every committed claims.csv is what the summaries give today (python -m backdrop_repro.tables)."""
    for folder in sorted((ROOT / "results").iterdir()):
        if (folder / "claims.csv").exists():
            assert tables.table(folder.name) == [claims.check(dict(r)) for r in tables.rows_for(folder.name)], folder


def test_the_auc_study_judges_relevance_where_the_metric_can_reach_it():
    rows = [r for r in tables.table("scaled") if r["experiment"] == "nondecomposable"]
    primary = [r for r in rows if r["role"] == "primary"]
    assert primary and all(r["metric"] == "mis-ranked pairs removed (share)" for r in primary)
    assert all(r["margin"] == tables.ND_MARGIN for r in primary)
    auc = [r for r in rows if r["metric"] == "test AUC" and r["role"] == "secondary"]
    assert auc and all(r["status"] == "description" for r in auc)       # the AUC itself: intervals only


def test_design_belongs_to_the_comparison():
    rows = {r["arm"]: r for r in tables.table("replication") if r["role"] == "primary" and r["task"] == "25/class"}
    assert rows["demo: fine 0.3 + coarse 0.95"]["design"] == "confirmatory"
    assert rows["fine 0.9 + coarse 0.95"]["design"] == "exploratory"     # chosen on the test set it is scored on


def test_a_summary_that_says_complete_with_runs_missing_is_refused():
    s = tables.load("replication", "gp_sweep")
    s["n_runs"] = 60
    with pytest.raises(claims.ClaimsError, match="complete is True with 60 of 130 runs"):
        tables.gp_sweep_rows(s)
    s["complete"] = False                      # honestly incomplete: every comparison is provisional, no claim
    rows = [r for r in tables.gp_sweep_rows(s) if r["role"] == "primary" and r["task"] == "25/class"]
    assert {r["status"] for r in rows} == {"unfinished"} and all("60 of 130" in r["unfinished"] for r in rows)


def test_a_summary_without_its_verdict_is_named(tmp_path, monkeypatch):
    import json
    import shutil

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    (tmp_path / "results" / "replication").mkdir(parents=True)
    s = json.loads((ROOT / "results" / "replication" / "gp_sweep.json").read_text())
    del s["verdict"]
    (tmp_path / "results" / "replication" / "gp_sweep.json").write_text(json.dumps(s))
    with pytest.raises(claims.ClaimsError, match=r"replication/gp_sweep.json: not a complete summary \(KeyError"):
        tables.rows_for("replication")
    shutil.rmtree(tmp_path / "results")
