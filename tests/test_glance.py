"""glance (``backdrop_repro.glance``) parses its arguments, refuses another profile's summary, keeps a symlinked
README a link and names the file on read errors. Every test here failed before its fix."""
import json
import shutil
from pathlib import Path

import pytest

from backdrop_repro import glance

README = "x\n" + glance.START + "\nold\n" + glance.END + "\ny\n"


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    (tmp_path / "README.md").write_text(README)
    return tmp_path


@pytest.mark.parametrize("argv", [["--help"], ["--chek"], ["extra"]])
def test_help_and_unknown_flags_write_nothing(out, argv, capsys):
    with pytest.raises(SystemExit) as e:
        glance.main(argv)
    assert e.value.code == (0 if argv == ["--help"] else 2)
    assert (out / "README.md").read_text() == README
    if argv == ["--help"]:
        assert "--check" in capsys.readouterr().out


def test_check_writes_nothing_and_says_stale(out):
    assert glance.main(["--check"]) == 1 and (out / "README.md").read_text() == README


def test_a_summary_of_another_profile_is_refused(out, capsys):
    d = out / "results" / "replication"
    d.mkdir(parents=True)
    (d / "gp_sweep.json").write_text(json.dumps({"profile": "scaled"}))
    assert glance.main([]) == 2
    err = capsys.readouterr().err
    assert "a summary of profile 'scaled', not 'replication'" in err and str(d / "gp_sweep.json") in err
    assert (out / "README.md").read_text() == README


def test_a_truncated_summary_names_the_file(out, capsys):
    d = out / "results" / "scaled"
    d.mkdir(parents=True)
    (d / "gp_sweep.json").write_text('{"profile": "sca')
    assert glance.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and str(d / "gp_sweep.json") in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("text, words", [("no markers\n", "has no"),
                                         (f"{glance.END}\n{glance.START}\n", "in that order")])
def test_missing_or_reversed_markers_are_one_line(out, capsys, text, words):
    (out / "README.md").write_text(text)
    assert glance.main([]) == 2
    assert words in capsys.readouterr().err and (out / "README.md").read_text() == text


def test_no_readme_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    assert glance.main([]) == 2
    assert "README.md: cannot be read" in capsys.readouterr().err


def test_a_symlinked_readme_stays_a_link(out):
    real = out / "docs-README.md"
    shutil.move(out / "README.md", real)
    (out / "README.md").symlink_to(real)
    assert glance.main([]) == 0
    assert (out / "README.md").is_symlink() and glance.START + "\n" + glance.END in real.read_text()


def test_the_bench_projection_is_read_from_the_committed_bench_and_scaled_by_the_work(tmp_path):
    import re

    from backdrop_repro import glance

    text = (Path(__file__).resolve().parent.parent / glance.BENCH).read_text()
    minutes = float(re.search(r"width 64, keep blocked, im2col stem\s+one paper run\s+(\d+) min", text).group(1))
    assert glance.bench_projection_min(10000, 6400) == minutes                   # the bench's own unit of work
    assert glance.bench_projection_min(5000, 3200) == minutes / 2
    assert glance.bench_projection_min(1, 1, path=tmp_path / "missing.txt") is None


def test_the_paper_cpu_line_reads_nothing_before_every_run_is_in():
    from backdrop_repro import glance

    line = glance.paper_cpu_text({"n_runs": 3, "n_planned": 8, "complete": False, "verdict": {}})
    assert line.startswith("3/8 runs of the CPU route") and "no result is read before all are in" in line


def test_the_paper_cpu_time_per_run_is_measured_per_arm_from_the_records():
    """Arms stop at very different epochs under the convergence rule: one mean over both would describe no run."""
    table = json.loads((Path(__file__).resolve().parents[1] / "results" / "paper-cpu" / "gp_sweep.json").read_text())
    text = glance.timing_text(table)
    for label in {r["label"] for r in table["runs"]}:
        w = [r["wall_time_s"] for r in table["runs"] if r["label"] == label]
        assert f"`{label}` {sum(w) / len(w) / 60:.0f} min on average ({min(w) / 60:.0f}–{max(w) / 60:.0f} min over {len(w)} runs" in text
    assert glance.timing_text({"runs": []}) == ""


def test_the_complete_paper_cpu_line_says_what_the_runs_are():
    """Once all runs are in: descriptive, the unfinished reason whole (it names the arm or arms that did not
    finish), and whether the small scale was learned, read from the verdict."""
    table = json.loads((Path(__file__).resolve().parents[1] / "results" / "paper-cpu" / "gp_sweep.json").read_text())
    if not table["complete"]:
        pytest.skip("paper-cpu is not complete")
    line = glance.paper_cpu_text(table)
    assert ", descriptive, [executed notebook]" in line and "confirmatory" not in line
    for c in table["verdict"]["comparisons"]:
        if c["claim"]["unfinished"]:
            assert "unfinished runs, no claim: " + c["claim"]["unfinished_reason"] + ";" in line
    small = table["verdict"]["scales_tested"][0]
    assert ("neither arm learns anything of the small scale" in line) == (not small["tested"])
