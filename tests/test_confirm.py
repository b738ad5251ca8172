"""The pre-registered confirmatory study (``experiments/confirm/``): design, pre-registration, records, report."""
import json
import shutil
from pathlib import Path

import pytest

from backdrop_repro import claims, profiles
from backdrop_repro.experiments.confirm import plan, prereg, report
from backdrop_repro.experiments.confirm.run import run_study

ROOT = Path(__file__).resolve().parent.parent


def _use_repo(monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))


def test_design_counts_fresh_seeds_and_one_cap():
    p = profiles.get("confirm")
    specs = plan.plan_runs(p)
    assert len(specs) == (45 + 93) * 3 and len({s.key for s in specs}) == len(specs)
    assert min(s.seed for s in specs) == 100
    assert {s.train_config().epochs for s in specs} == {p.learnability.epochs} == {300}
    # each seed its own training and validation sets, one test set per task (400 per class)
    tr = {(s.task, s.seed): s.recipes()[0].seed for s in specs}
    assert len(set(tr.values())) == len({s.seed for s in specs})
    tests = {s.task: s.recipes()[2] for s in specs}
    assert {r.seed for r in tests.values()} == {2803} and {r.per_class for r in tests.values()} == {400}
    assert [a[0] for a in p.confirm.arms] == ["none", "fine", "demo"]


def test_committed_preregistration_matches_the_profile_and_states_the_power(monkeypatch):
    _use_repo(monkeypatch)
    pre = plan.check_preregistration("confirm")
    power = pre["block"]["power"]
    assert power["m"] == 4
    assert power["tasks"]["small-edge"]["mde_at_seeds"] <= 0.04
    assert power["tasks"]["two-scale"]["mde_at_seeds"] <= 0.05


def test_no_committed_record_of_another_study_shares_a_data_seed_or_key(monkeypatch):
    _use_repo(monkeypatch)
    fr = report.freshness("confirm")
    assert fr["records_scanned"] > 500 and fr["fresh"], fr["conflicts"][:3]
    keys = {s.key for s in plan.plan_runs("confirm")}
    other = {f.stem for f in (ROOT / "results").glob("*/*/*.json") if f.parent.name != "runs"}
    assert not keys & other


def test_a_changed_design_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    prereg.write("smoke")
    with pytest.raises(plan.PreregistrationError, match="exists"):
        prereg.write("smoke")
    f = plan.preregistration_path("smoke")
    f.write_text(f.read_text().replace('"alpha": 0.05', '"alpha": 0.1', 1))
    with pytest.raises(plan.PreregistrationError, match="differs from profile 'smoke' in \\['alpha'\\]"):
        run_study("smoke", jobs=1, progress=False)
    f.unlink()
    with pytest.raises(plan.PreregistrationError, match="no pre-registration"):
        run_study("smoke", jobs=1, progress=False)


def test_smoke_study_records_carry_the_hash_and_the_report_refuses_another(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    pre = prereg.write("smoke")
    specs = plan.plan_runs("smoke")
    # before every run is in, the report shows progress and no outcome
    run_study("smoke", jobs=1, progress=False, tasks=["small-edge"])
    part = report.summarize("smoke")
    assert part["status"] == "running" and "comparisons" not in part and "answer" not in part
    s = run_study("smoke", jobs=1, progress=False)
    assert s["status"] == "complete" and s["records"]["valid"] == len(specs) == 15
    rec = json.loads(specs[0].record_path.read_text())
    assert rec["preregistration"]["sha256"] == pre["sha256"] and rec["task"] == "small-edge"
    assert rec["versions"]["cpu"] and rec["versions"]["cpu_isa"]
    assert [c["task"] for c in s["comparisons"]] == ["small-edge"] * 2 + ["two-scale"] * 2
    assert all(c["m_tests"] == 4 and c["fixed_in_advance"] for c in s["comparisons"])
    assert set(s["comparisons"][2]["scales"]) == {"small", "large"}
    # a record made under another version of the file is refused by name
    rec["preregistration"]["sha256"] = "0" * 64
    specs[0].record_path.write_text(json.dumps(rec))
    s2 = report.summarize("smoke")
    assert s2["status"] == "refused" and s2["records"]["refused"][0]["file"] == specs[0].record_path.name
    assert "pre-registration hash" in s2["records"]["refused"][0]["why"] and specs[0].record_path.name in s2["error"]
    # loud everywhere: the summary is not overwritten, and a run trains nothing over it and never counts it as done
    summary_file = tmp_path / "results" / "smoke" / "confirm.json"
    before = summary_file.read_text()
    with pytest.raises(plan.PreregistrationError, match=specs[0].record_path.name):
        report.write_summary("smoke")
    with pytest.raises(plan.PreregistrationError, match="made under another pre-registration"):
        run_study("smoke", jobs=1, progress=False)
    assert summary_file.read_text() == before and json.loads(specs[0].record_path.read_text()) == rec


def test_an_edited_preregistration_is_refused_and_the_summary_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    prereg.write("smoke")
    run_study("smoke", jobs=1, progress=False, tasks=["small-edge"])
    summary_file = tmp_path / "results" / "smoke" / "confirm.json"
    before = summary_file.read_text()
    f = plan.preregistration_path("smoke")
    f.write_text(f.read_text().replace('"alpha": 0.05', '"alpha": 0.1', 1))
    with pytest.raises(plan.PreregistrationError, match="differs from profile 'smoke'"):
        report.write_summary("smoke")
    f.unlink()
    with pytest.raises(plan.PreregistrationError, match="no pre-registration"):
        report.write_summary("smoke")
    assert summary_file.read_text() == before


def test_the_records_folder_is_checked_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    prereg.write("smoke")
    plan.records_dir("smoke").parent.mkdir(parents=True, exist_ok=True)
    plan.records_dir("smoke").write_text("a file where the records folder belongs")
    with pytest.raises(NotADirectoryError, match="runs"):
        run_study("smoke", jobs=1, progress=False)


def test_freshness_finds_a_record_that_used_a_data_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    seed = plan.plan_runs("smoke")[0].recipes()[0].seed
    f = tmp_path / "results" / "other" / "gp_runs" / "abc.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"config": {"data": {"train": {"seed": seed}}}}))
    fr = report.freshness("smoke")
    assert fr["conflicts"] == ["results/other/gp_runs/abc.json"] and not fr["fresh"]


def test_mcnemar_exact():
    base = {i: i < 4 for i in range(10)}          # 4 learn without the arm
    cand = {i: i < 9 for i in range(10)}          # 9 with it: 5 discordant, all for the arm
    m = report.mcnemar(base, cand)
    assert (m["b"], m["c"], m["base_yes"], m["cand_yes"]) == (0, 5, 4, 9)
    assert m["p"] == pytest.approx(2 * 0.5 ** 5)


def test_preregistered_words_and_the_grammar_are_compared_and_a_disagreement_is_named():
    from backdrop_repro import report as R

    # every seed gains 0.02-0.06: significant, the 95 % interval's lower end just above the margin,
    # but the grammar's margin test (Bonferroni over 4) does not clear it
    diffs = {s: 0.041 + 0.02 * ((s * 7) % 5 - 2) / 2 for s in range(12)}
    comp = R.paired({s: 0.5 for s in diffs}, {s: 0.5 + d for s, d in diffs.items()})
    comp["p_holm"] = min(1.0, comp["p"] * 4)
    words = report.prereg_decision(comp, 0.03, 0.05, False)
    status = R.judge(comp, m=4, p_adjusted=comp["p_holm"])["status"]
    assert comp["low"] > 0.03 and words == "better beyond the margin"
    assert status == "significant gain" and status not in report.SAME[words]
    assert report.prereg_decision(comp, 0.03, 0.05, True) == "unfinished"
    assert set(report.SAME) == {"unfinished", "better beyond the margin", "significant, not shown beyond the margin",
                                "worse", "not confirmed", "inconclusive"}
    assert set().union(*report.SAME.values()) == {g[0] for g in claims.GRAMMAR if g[1] == "primary"}


def _attribute_smoke():
    """The smoke profile with an attribute-like section: named comparisons, arms under the patience-only rule."""
    from dataclasses import replace

    from backdrop_repro import profiles

    smoke = profiles.get("smoke")
    section = replace(smoke.confirm, tasks=smoke.confirm.tasks[:1],
                      arms=(("none", 0.0, 0.0), ("none-long", 0.0, 0.0, "patience-only"),
                            ("coarse", 0.0, 0.75, "patience-only"), ("demo", 0.5, 0.75, "patience-only")),
                      comparisons=(("demo", "none-long"), ("coarse", "none-long"), ("demo", "coarse"),
                                   ("none-long", "none")), question="Which mask carries the gain?")
    return replace(smoke, name="smoke-attribute", confirm=section)


def test_a_study_of_named_comparisons_runs_arms_under_their_rule_and_reports_each_pair(tmp_path, monkeypatch):
    from backdrop_repro import tables

    from backdrop_repro import profiles

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    p = _attribute_smoke()
    monkeypatch.setitem(profiles.PROFILES, p.name, p)
    monkeypatch.setattr(prereg, "power_committed", lambda prof: {
        "source": "test", "m": 4, "alpha": 0.05, "power": 0.8,
        "tasks": {"small-edge": {"sources": [{"label": "x", "sd": 0.1, "mean": 0.0}], "sd_used": 0.1,
                                 "seeds_needed": 3, "seeds": 3, "mde_target": 0.5, "mde_at_seeds": 0.4}}})
    text = prereg.render(p)
    assert "`demo` vs `none-long`: Does the authors' combined setting beat equally long training" in text
    specs = plan.plan_runs(p)
    by = {s.config: s for s in specs if s.seed == specs[0].seed}
    assert by["none"].train_config().loss_target == 0.01 and by["none-long"].train_config().loss_target is None
    assert by["none-long"].key != by["none"].key and by["none-long"].label == "none (patience-only)"
    plan.preregistration_path(p).parent.mkdir(parents=True, exist_ok=True)
    plan.preregistration_path(p).write_text(text)
    s = run_study(p, jobs=1, progress=False)
    assert s["status"] == "complete" and len(s["comparisons"]) == 4
    pairs = [(c["config"], c["baseline"]) for c in s["comparisons"]]
    assert pairs == list(p.confirm.comparisons)
    assert all(c["m_tests"] == 4 and c["prereg_decision"] == c["status"] for c in s["comparisons"])
    assert all(set(c["epochs"]) == {"arm", "baseline"} for c in s["comparisons"])
    rows = tables.confirm_rows(s)
    primary = [r for r in rows if r["role"] == "primary"]
    assert [r["baseline"] for r in primary] == ["none (patience-only)", "none (patience-only)",
                                                  "coarse 0.75 (patience-only)", "none"]
    assert all(r["epochs_arm"] is not None and r["mde_planned"] == 0.4 for r in primary)


# ------------------------------------------------------------------ issue 39: flags that cannot apply, with the CLI's prefix
@pytest.mark.parametrize("argv, says", [
    (["--write-preregistration", "--jobs", "2"], "--write-preregistration takes no"),
    (["--collect-only", "--device", "cpu"], "--collect-only trains nothing"),
])
def test_confirm_flags_that_cannot_apply_are_one_line_with_the_cli_prefix(argv, says, capsys, own_output_dir):
    """``confirm --write-preregistration --jobs 2`` exited 1 with a bare message, without the prefix."""
    from backdrop_repro.cli import main
    from helpers import one_line_error

    assert main(["confirm", "--profile", "smoke", *argv]) == 2
    assert says in one_line_error(capsys, "confirm")
    from backdrop_repro import paths
    assert not (paths.output_root() / "results" / "smoke" / "preregistration.md").exists()     # nothing written


def test_a_freshness_violation_is_a_stated_deviation(tmp_path, monkeypatch):
    from backdrop_repro import render

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    prereg.write("smoke")
    run_study("smoke", jobs=1, progress=False)
    seed = plan.plan_runs("smoke")[0].recipes()[0].seed
    f = tmp_path / "results" / "other" / "gp_runs" / "abc.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"config": {"data": {"train": {"seed": seed}}}}))
    s = report.summarize("smoke")
    assert s["status"] == "complete" and {"freshness": ["results/other/gp_runs/abc.json"]} in s["deviations"]
    assert "Not fresh: 1 committed record(s)" in render.confirm_md(s)
