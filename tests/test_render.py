"""render: the README's first screen, the generated docs and the Findings, from the validated claims tables."""
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from backdrop_repro import claims, render, tables

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def committed(monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(ROOT))


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """The committed results and docs in a scratch output root (to break them)."""
    shutil.copytree(ROOT / "results", tmp_path / "results", ignore=shutil.ignore_patterns("*.ipynb", "*runs"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text())
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    return tmp_path


def test_readme_and_generated_docs_match_the_committed_tables(committed):
    assert render.update(ROOT / "README.md", check=True), "stale: run `python -m backdrop_repro.render`"


def test_the_first_screen_answers(committed):
    readme = (ROOT / "README.md").read_text()
    lines = readme.split("\n")
    table_at = next(i for i, line in enumerate(lines) if line.startswith("| study | design | comparison"))
    assert table_at < 60
    before = re.sub(r"<!--.*?-->", "", "\n".join(lines[:table_at]))
    assert len(before.split()) <= 250
    verdict = before[before.index("**Verdict.**"):]
    assert len(re.findall(r"[.!?](?:\s|$)", verdict)) <= 5
    rows = [line for line in lines[table_at + 2:] if line.startswith("|")]
    rows = rows[:next((i for i, r in enumerate(rows) if not r.startswith("| `")), len(rows))]
    assert 0 < len(rows) <= 12
    assert readme.index("figures/headline.png") < readme.index("## The two commands")


def test_a_row_a_page_needs_is_an_error_never_a_dropped_line(copy):
    f = copy / "results" / "confirm" / "claims.csv"
    f.write_text("\n".join(line for line in f.read_text().split("\n") if "small-edge,all,fine 0.3," not in line))
    with pytest.raises(render.RenderError, match=r"results/confirm/claims.csv: 0 rows for 'fine 0.3'"):
        render.readme_block()
    assert render.main(["--readme", str(copy / "README.md")]) == 2


def test_a_status_outside_the_grammar_is_refused_by_name(copy):
    f = copy / "results" / "replication" / "claims.csv"
    f.write_text(f.read_text().replace("significant gain", "huge gain", 1))
    with pytest.raises(render.RenderError, match=r"replication/claims.csv, line \d+: .*status must be one of"):
        render.readme_block()


def test_a_study_state_outside_the_grammar_is_refused(copy):
    import json

    f = copy / "results" / "attribute" / "confirm.json"
    d = json.loads(f.read_text())
    d["status"] = "completed"
    f.write_text(json.dumps(d))
    with pytest.raises(render.RenderError, match="attribute/confirm.json: status 'completed'"):
        render.readme_block()
    f.unlink()
    with pytest.raises(render.RenderError, match="attribute/confirm.json: missing"):
        render.readme_block()


def test_check_writes_nothing_and_markers_are_checked(copy):
    readme = copy / "README.md"
    readme.write_text(f"x\n{render.START}\nold\n{render.END}\n")
    assert render.main(["--check", "--readme", str(readme)]) == 1
    assert readme.read_text() == f"x\n{render.START}\nold\n{render.END}\n"
    assert render.main(["--readme", str(readme)]) == 0 and "**Verdict.**" in readme.read_text()
    assert render.main(["--check", "--readme", str(readme)]) == 0
    readme.write_text(f"{render.END}\n{render.START}\n")
    with pytest.raises(render.RenderError, match="in that order"):
        render.update(readme)


@pytest.mark.parametrize("study", ["replication", "scaled", "default", "paper-cpu", "learnability", "confirm"])
def test_findings_conclude_in_at_most_eight_bullets_and_never_repeat(committed, study):
    rows = tables.table(study)
    for experiment in sorted({r["experiment"] for r in rows}):
        text = render.findings([r for r in rows if r["experiment"] == experiment])
        bullets = [line for line in text.split("\n") if line.startswith("- ")]
        assert bullets[0].startswith("- **Verdict**") and len(bullets) <= 8
        assert not [b for b, n in Counter(bullets).items() if n > 1]
        assert not [p for p, n in Counter(re.findall(r"\([^()]{20,}\)", text)).items() if n > 1]


def test_counts_cover_only_the_comparisons_that_test_the_question(committed):
    rows = tables.table("learnability")
    at_edge = [r for r in rows if r["role"] == "primary"]
    off_edge = [r for r in rows if r["role"] == "secondary"]
    assert off_edge and all("not at the edge" in r["design_why"] for r in off_edge)
    block = render.readme_block()
    assert f"{len(at_edge)} comparisons at the learnability edge" in block
    assert render._counts(at_edge) in block and all(f"{n} {s}" in block for s, n in Counter(
        r["status"] for r in at_edge).items())


def test_preregistered_words_first_and_the_grammars_status_beside(committed):
    row = tables.table("confirm")[0]
    assert row["prereg_status"] == "not confirmed" and row["status"] == "equivalent"
    assert "not confirmed (pre-registered words); grammar: equivalent" in render.readme_block()


def test_the_paper_grid_states_the_seeds_the_margin_needs(committed):
    r = tables.table("paper-cpu")
    g = render.paper_grid_power(next(x for x in r if x["role"] == "primary"))
    assert g["mde"] > claims.MARGIN and g["need"] > g["seeds"]
    assert f"the ±0.03 margin needs {g['need']} seeds" in render.readme_block()


def test_the_headline_figure_holds_every_confirmatory_and_descriptive_comparison(committed):
    rows = render.headline_rows(render.Tables())
    assert {r["design"] for r in rows} == {"confirmatory", "descriptive"}
    assert {"replication", "confirm", "default", "paper-cpu"} <= {r["study"] for r in rows}


def test_a_complete_attribute_study_answers_each_question_within_the_first_screen(copy):
    import json

    L = {"demo": render.LONG_DEMO, "coarse": render.LONG_COARSE, "long": render.LONG_NONE, "none": "none"}
    rows = []
    for task in ("replication", "small-edge"):
        for arm, base, d in (("demo", "long", 0.05), ("coarse", "long", 0.04), ("demo", "coarse", 0.0),
                             ("long", "none", 0.0)):
            sig = d > 0
            rows.append(claims.row(study="attribute", experiment="confirm", design="confirmatory", task=task,
                                   scale="all", arm=L[arm], baseline=L[base], seeds=40, delta=d, ci_low=d - 0.01,
                                   ci_high=d + 0.01, p=1e-5 if sig else 0.9, p_adj=1e-4 if sig else 0.9,
                                   family_size=8, margin=0.03, margin_p=0.01 if sig else 1.0, tost_p=1.0 if sig else 1e-4,
                                   mde=0.03, baseline_mean=0.6, ceiling=1.0, epochs_arm=100, epochs_baseline=90,
                                   prereg_status="relevant gain" if sig else "equivalent"))
    claims.write(copy / "results" / "attribute", rows)
    state = json.loads((copy / "results" / "attribute" / "confirm.json").read_text())
    state.update(status="complete", records={"valid": 624, "planned": 624, "refused": []})
    (copy / "results" / "attribute" / "confirm.json").write_text(json.dumps(state))
    block = render.readme_block()
    verdict = block[block.index("**Verdict.**"):block.index("| study |")]
    assert len(re.findall(r"[.!?](?:\s|$)", verdict)) <= 5
    assert "the combined setting against equally long training without backdrop: replication yes, beyond the " \
           "margin (+0.050 [+0.040, +0.060])" in verdict
    assert "longer training alone: replication no (equivalent to no change)" in verdict
    assert "survive equally long training" in verdict and "running" not in block
    table = [line for line in block.split("\n") if line.startswith("| `")]
    assert len(table) <= 12 and sum("`attribute`" in line for line in table) == 4
