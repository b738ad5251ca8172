"""The GP sweep's reproduction check (``experiments/gp_sweep/reproduction.py``) on real records: another
CPU's runs pass in distribution, a configuration moved by a real change fails, the same machine's runs are
identical, bad records on either side are rows (never a crash, never a renamed committed file), and the
drift bound covers the measured drift.

Records: ``tests/data/other-host/`` (the ``default`` runs as another CPU trained them, same pins and
threads), ``tests/data/formulation-s2d/`` and ``tests/data/formulation-nchw/`` (the same runs trained on
the developers' CPU with ``TwoScaleCNN(impl="s2d")`` and with the NCHW layout: the same network, another
rounding) and the committed ``results/replication`` / ``results/default``.
"""
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest

from backdrop_repro import machine, paths
from backdrop_repro.seeds import content_key
from backdrop_repro.experiments.gp_sweep import reproduction as R

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
REPL = ROOT / "results" / "replication" / "gp_runs"
#: the drift measurements: another CPU, and two other formulations on the developers' CPU
SOURCES = ("other-host", "formulation-s2d", "formulation-nchw")


def _fresh(tmp_path, source: Path, monkeypatch) -> Path:
    """Copy ``source``'s records into a fresh output root as the ``default`` profile's runs."""
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
    d = tmp_path / "out" / "results" / "default" / "gp_runs"
    d.mkdir(parents=True)
    for f in sorted(source.glob("*.json")):
        shutil.copyfile(f, d / f.name)
    return d


def _same_machine(tmp_path) -> Path:
    """The committed reference runs of the ``default`` keys themselves (the records of one machine): a re-run
    on the machine that made them. (``results/default/gp_runs`` holds the last ``make reproduce``'s fresh runs,
    from whatever machine ran it.)"""
    d = tmp_path / "same-machine"
    d.mkdir()
    for f in sorted((DATA / "other-host").glob("*.json")):
        rec = json.loads((ROOT / "results" / "replication" / "gp_runs" / f.name).read_text())
        rec.update(wall_time_s=rec["wall_time_s"] + 1.0, run_id=f"rerun-{f.stem}")   # a training of its own
        (d / f.name).write_text(json.dumps(rec))
    return d


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _shift(rec: dict, delta: float) -> dict:
    """``rec`` with its test accuracy moved by ``delta`` through its predictions (labels cycle 0..3;
    class = small + 2 x large), accuracy, per-scale accuracy and confusion kept consistent."""
    pred = [int(c) for c in rec["predictions"]["test"]]
    n = len(pred)
    k = round(abs(delta) * n)
    for i in range(n):
        if k == 0:
            break
        y = i % 4
        if delta > 0 and pred[i] != y:
            pred[i], k = y, k - 1
        elif delta < 0 and pred[i] == y:
            pred[i], k = (y + 1) % 4, k - 1
    f = rec["final"]
    conf = [[0] * 4 for _ in range(4)]
    for i, q in enumerate(pred):
        conf[i % 4][q] += 1
    f["test_accuracy"] = sum(q == i % 4 for i, q in enumerate(pred)) / n
    f["test_scale_accuracy"] = [sum(q % 2 == (i % 4) % 2 for i, q in enumerate(pred)) / n,
                                sum(q // 2 == (i % 4) // 2 for i, q in enumerate(pred)) / n]
    f["test_confusion"] = conf
    rec["predictions"]["test"] = "".join(map(str, pred))
    return rec


def test_shift_helper_reproduces_the_recorded_metrics():
    rec = json.loads(next(DATA.joinpath("other-host").glob("*.json")).read_text())
    same = _shift(json.loads(json.dumps(rec)), 0.0)
    assert same["final"]["test_accuracy"] == pytest.approx(rec["final"]["test_accuracy"])
    assert same["final"]["test_scale_accuracy"] == pytest.approx(rec["final"]["test_scale_accuracy"])
    assert same["final"]["test_confusion"] == rec["final"]["test_confusion"]
    up = _shift(json.loads(json.dumps(rec)), 0.05)
    assert up["final"]["test_accuracy"] == pytest.approx(rec["final"]["test_accuracy"] + 0.05)


def test_another_cpus_runs_reproduce_in_distribution(tmp_path, monkeypatch):
    _fresh(tmp_path, DATA / "other-host", monkeypatch)
    before = _digest(REPL)
    path = tmp_path / "reproduction.md"
    rows, res = R.write_report("default", "replication", path)
    assert len(rows) == 12 and {r["status"] for r in rows} == {"numerically different"}
    assert max(abs(r["diff"]) for r in rows) == pytest.approx(0.030)       # the measurement
    assert res["status"] == "in distribution" and res["failure"] is None
    assert [c["verdict"] for c in res["configurations"]] == ["reproduced"] * 3
    assert [g["verdict"] for g in res["gains"]] == ["reproduced"] * 2
    none = res["configurations"][0]
    assert none["label"] == "none" and none["n"] == 4 and none["delta"] == pytest.approx(0.010)
    assert none["bound"] == pytest.approx(R.DRIFT_Z * R.DRIFT_SD / 2)
    assert none["sd_seed"] == pytest.approx(0.0545, abs=5e-4)               # committed, 30 seeds
    R.check(res)                                                            # exit 0
    text = path.read_text()
    assert text.splitlines()[2].startswith("**Reproduced in distribution, not bit for bit**")
    assert "| `none` | 1 | 0.434 | 0.457 | +0.023 | +0.006 | +0.044 | numerically different |" in text
    assert "| `none` | 4 | 0.442 | 0.452 | +0.010 | ±0.030 | 0.055 | 0.062 | reproduced |" in text
    assert _digest(REPL) == before                                          # the reference untouched


@pytest.mark.parametrize("config", ["both", "demo"])
@pytest.mark.parametrize("sign", [1, -1])
def test_a_masked_configuration_moved_by_005_fails(tmp_path, monkeypatch, config, sign):
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    for f in d.glob("*.json"):
        rec = json.loads(f.read_text())
        if rec["config"]["config"] == config:
            f.write_text(json.dumps(_shift(rec, sign * 0.05)))
    rows, res = R.write_report("default", "replication", tmp_path / "r.md")
    row = next(c for c in res["configurations"] if c["config"] == config)
    assert row["verdict"] == "shifted" and abs(row["delta"]) >= row["bound"]
    assert row["mde"] < 0.05                                                # the rule sees 0.05 at 4 seeds
    assert res["status"] == "not reproduced"
    with pytest.raises(R.ReproductionError) as err:
        R.check(res)
    msg = str(err.value)
    assert "\n" not in msg and row["label"] in msg and f"{row['delta']:+.3f}" in msg
    assert f"±{row['bound']:.3f}" in msg and str(tmp_path / "r.md") in msg
    assert (tmp_path / "r.md").read_text().splitlines()[2].startswith("**Not reproduced**")


def test_the_same_machines_runs_are_identical(tmp_path, monkeypatch):
    _fresh(tmp_path, _same_machine(tmp_path), monkeypatch)
    rows, res = R.write_report("default", "replication", tmp_path / "r.md")
    assert len(rows) == 12 and {r["status"] for r in rows} == {"identical"}
    assert res["status"] == "bit for bit" and all(c["verdict"] == "identical" for c in res["configurations"])
    R.check(res)
    assert (tmp_path / "r.md").read_text().splitlines()[2].startswith("**Reproduced bit for bit**")


def test_a_shift_below_the_bound_is_drift_not_a_failure(tmp_path, monkeypatch):
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    for f in d.glob("*.json"):
        rec = json.loads(f.read_text())
        if rec["config"]["config"] == "both":
            f.write_text(json.dumps(_shift(rec, 0.02)))        # -0.003 + 0.02: inside ±0.030
    _, res = R.write_report("default", "replication", tmp_path / "r.md")
    assert res["status"] == "in distribution"


def _reference_checkout(tmp_path, monkeypatch) -> Path:
    """A checkout whose committed results/replication holds copies of the 12 records of default."""
    ck = tmp_path / "checkout"
    ref = ck / "results" / "replication" / "gp_runs"
    ref.mkdir(parents=True)
    for f in DATA.joinpath("other-host").glob("*.json"):
        shutil.copyfile(REPL / f.name, ref / f.name)
    monkeypatch.setattr(paths, "checkout_root", lambda: ck)
    return ref


def test_bad_records_on_either_side_are_rows_and_nothing_is_renamed(tmp_path, monkeypatch):
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    ref = _reference_checkout(tmp_path, monkeypatch)
    keys = sorted(f.stem for f in d.glob("*.json"))
    # committed: one truncated, one diverged; fresh: one truncated, one diverged
    (ref / f"{keys[0]}.json").write_text((ref / f"{keys[0]}.json").read_text()[:500])
    rec = json.loads((ref / f"{keys[1]}.json").read_text())
    rec["final"] = {"failed": "non-finite training loss at epoch 3"}
    (ref / f"{keys[1]}.json").write_text(json.dumps(rec))
    (d / f"{keys[2]}.json").write_text("{not json")
    rec = json.loads((d / f"{keys[3]}.json").read_text())
    rec["final"] = {"failed": "non-finite training loss at epoch 7"}
    (d / f"{keys[3]}.json").write_text(json.dumps(rec))
    before_ref, before_fresh = _digest(ref), _digest(d)
    path = tmp_path / "r.md"
    rows, res = R.write_report("default", "replication", path)
    by = {r["key"]: r for r in rows}
    assert by[keys[0]]["status"] == "committed record unreadable" and str(ref / f"{keys[0]}.json") in by[keys[0]]["why"]
    assert by[keys[1]]["status"] == "committed run failed" and "epoch 3" in by[keys[1]]["why"]
    assert by[keys[2]]["status"] == "fresh record unreadable"
    assert by[keys[3]]["status"] == "fresh run failed" and "epoch 7" in by[keys[3]]["why"]
    assert sum(r["status"] == "numerically different" for r in rows) == 8
    assert res["status"] == "not judged"
    assert _digest(ref) == before_ref and _digest(d) == before_fresh           # nothing renamed or moved
    text = path.read_text()
    assert text.splitlines()[2].startswith("**Not judged**") and "committed run failed" in text
    with pytest.raises(R.ReproductionError) as err:
        R.check(res)
    assert "\n" not in str(err.value) and "(and 3 more)" in str(err.value) and str(path) in str(err.value)


def test_both_sides_failed_is_reproduced_failure_not_a_problem(tmp_path, monkeypatch):
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    ref = _reference_checkout(tmp_path, monkeypatch)
    key = sorted(f.stem for f in d.glob("*.json"))[0]
    for side in (d, ref):
        rec = json.loads((side / f"{key}.json").read_text())
        rec["final"] = {"failed": "non-finite training loss"}
        (side / f"{key}.json").write_text(json.dumps(rec))
    rows, res = R.write_report("default", "replication", tmp_path / "r.md")
    assert next(r for r in rows if r["key"] == key)["status"] == "both failed"
    assert res["status"] == "in distribution"
    assert sorted(c["n"] for c in res["configurations"]) == [3, 4, 4]


def test_nothing_compared_fails_with_one_line(tmp_path, monkeypatch):
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    for f in d.glob("*.json"):
        rec = json.loads(f.read_text())
        rec["copied_from"] = "replication"
        f.write_text(json.dumps(rec))
    rows, res = R.write_report("default", "replication", tmp_path / "r.md")
    assert {r["status"] for r in rows} == {"not re-run"}
    with pytest.raises(R.ReproductionError, match="compared no run"):
        R.check(res)
    assert (tmp_path / "r.md").exists()


def test_the_judge_command_has_the_rule_and_exit_status_of_make_reproduce(tmp_path, monkeypatch, capsys):
    from backdrop_repro.cli import main
    from backdrop_repro.experiments.gp_sweep import cli as sweep_cli

    # the likelihood classifier's accuracy only decorates the tables: not scored here (saves ~30 s)
    monkeypatch.setattr(sweep_cli, "write_references", lambda profile, progress=False: {})
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    argv = ["sweep", "--profile", "default", "--collect-only", "--compare", "replication"]
    assert main(argv) == 0
    report = tmp_path / "out" / "results" / "default" / "reproduction.md"
    assert "Reproduced in distribution" in report.read_text() and "Reproduced in distribution" in capsys.readouterr().out
    for f in d.glob("*.json"):
        rec = json.loads(f.read_text())
        if rec["config"]["config"] == "demo":
            f.write_text(json.dumps(_shift(rec, -0.05)))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "demo: fine 0.3 + coarse 0.95" in err[0] and str(report) in err[0]
    assert report.read_text().splitlines()[2].startswith("**Not reproduced**")


def _conv_key(rec: dict) -> str:
    """The key of the same run in the committed formulation (``nn.Conv2d``, NHWC: ``impl`` is left out
    of conv keys, ``channels_last`` is the default profile's)."""
    cfg = json.loads(json.dumps(rec["config"]))
    cfg["model"].pop("impl", None)
    cfg["train"]["channels_last"] = True
    return content_key(cfg, 12)


def _drift(folder: Path) -> list[float]:
    out = []
    for f in sorted(folder.glob("*.json")):
        rec = json.loads(f.read_text())
        ref = json.loads((REPL / f"{_conv_key(rec)}.json").read_text())
        out.append(rec["final"]["test_accuracy"] - ref["final"]["test_accuracy"])
    return out


def test_drift_sd_is_the_upper_limit_of_the_measured_drift():
    from scipy import stats

    parts = [_drift(DATA / f) for f in SOURCES]
    assert [len(x) for x in parts] == [12, 12, 12]
    d = [x for part in parts for x in part]
    rms = math.sqrt(sum(x * x for x in d) / len(d))            # drift has mean 0: RMS is the SD
    upper = rms * math.sqrt(len(d) / stats.chi2.ppf(0.05, len(d)))
    assert rms < R.DRIFT_SD and upper <= R.DRIFT_SD < upper + 0.005
    assert max(abs(x) for x in d) < 2 * R.DRIFT_SD


def test_every_record_names_its_cpu():
    import torch

    v = machine.versions()
    assert v["cpu_isa"] == torch.backends.cpu.get_cpu_capability()
    assert int(v["cpu_cores"]) >= 1 and v["cpu"]
    if Path("/proc/cpuinfo").exists():
        assert " family " in v["cpu_id"] and " model " in v["cpu_id"]
    assert v["machine"].startswith(__import__("platform").machine())


def _row_text(folder: Path) -> str:
    """The measurement row of docs/reliability.md for ``folder``, built from its records."""
    d, small, large, by = [], [], [], {}
    for f in sorted(folder.glob("*.json")):
        rec = json.loads(f.read_text())
        ref = json.loads((REPL / f"{_conv_key(rec)}.json").read_text())
        x = rec["final"]["test_accuracy"] - ref["final"]["test_accuracy"]
        sc = [a - b for a, b in zip(rec["final"]["test_scale_accuracy"], ref["final"]["test_scale_accuracy"])]
        d.append(x), small.append(abs(sc[0])), large.append(abs(sc[1]))
        by.setdefault(rec["config"]["config"], []).append(x)
        assert rec["history"] != ref["history"]                 # none of them is identical
    rms = math.sqrt(sum(x * x for x in d) / len(d))
    means = " / ".join(f"{sum(by[c]) / len(by[c]):+.3f}".replace("-", "−") for c in ("none", "both", "demo"))
    return (f"| {len(d)} | 0 | {rms:.4f} | {max(map(abs, d)):.3f} | {max(small):.3f} / {max(large):.3f} | {means} |")


def test_the_drift_numbers_in_the_docs_come_from_the_records():
    from scipy import stats

    docs = " ".join((ROOT / "docs" / "reliability.md").read_text().split())       # line breaks are spaces
    for folder in SOURCES:
        assert _row_text(DATA / folder) in docs, folder
    d = [x for f in SOURCES for x in _drift(DATA / f)]
    rms = math.sqrt(sum(x * x for x in d) / len(d))
    upper = rms * math.sqrt(len(d) / stats.chi2.ppf(0.05, len(d)))
    assert f"| pooled | {len(d)} | 0 | {rms:.4f} (upper 95 % limit {upper:.4f})" in docs
    assert f"pooled mean {sum(d) / len(d):+.4f}, standard error {rms / math.sqrt(len(d)):.4f}" in docs
    four = R.DRIFT_Z * R.DRIFT_SD / 2
    assert f"±{four:.3f} per configuration, ±{four * math.sqrt(2):.3f} per gain" in docs
    assert f"`DRIFT_SD` = {R.DRIFT_SD:g}" in docs and f"`DRIFT_Z` = {R.DRIFT_Z:g}" in docs


def _stub_main_job(monkeypatch, tmp_path, source: Path, notebooks_fail: bool = False):
    """``reproduce`` with the sweep replaced by copying ``source``'s records (and the notebooks by a stub)."""
    from backdrop_repro import notebooks
    from backdrop_repro.experiments.gp_sweep import run as gp_run

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))

    def sweep(p, **kw):
        d = tmp_path / "out" / "results" / "default" / "gp_runs"
        d.mkdir(parents=True, exist_ok=True)
        for f in source.glob("*.json"):
            shutil.copyfile(f, d / f.name)
        return {"n_runs": 12, "n_planned": 12}

    def run_notebooks(name):
        if notebooks_fail:
            raise notebooks.NotebookError("gp-training.ipynb failed (stub)")
    monkeypatch.setattr(gp_run, "run_sweep", sweep)
    monkeypatch.setattr(notebooks, "run_notebooks", run_notebooks)
    return tmp_path / "out" / "results" / "default" / "reproduction.md"


def test_make_reproduce_passes_on_another_cpu_and_fails_in_one_line_on_a_failed_run(tmp_path, monkeypatch):
    from backdrop_repro import reproduce

    report = _stub_main_job(monkeypatch, tmp_path, DATA / "other-host")
    assert reproduce.reproduce("default") == report
    text = report.read_text()
    assert "**Reproduced in distribution, not bit for bit**" in text and "Wall time of `reproduce`" in text
    src = tmp_path / "failed"
    src.mkdir()
    for f in DATA.joinpath("other-host").glob("*.json"):
        shutil.copyfile(f, src / f.name)
    rec = json.loads(f.read_text())
    rec["final"] = {"failed": "non-finite training loss at epoch 2"}
    (src / f.name).write_text(json.dumps(rec))
    report = _stub_main_job(monkeypatch, tmp_path, src)
    with pytest.raises(R.ReproductionError) as err:
        reproduce.reproduce("default")
    assert "\n" not in str(err.value) and "fresh run failed" in str(err.value) and str(report) in str(err.value)
    assert "**Not judged**" in report.read_text()


def test_the_report_is_written_before_the_notebooks_run(tmp_path, monkeypatch):
    from backdrop_repro import notebooks, reproduce

    report = _stub_main_job(monkeypatch, tmp_path, DATA / "other-host", notebooks_fail=True)
    with pytest.raises(notebooks.NotebookError):
        reproduce.reproduce("default")
    assert "**Reproduced in distribution" in report.read_text()


@pytest.mark.parametrize("value, why", [(float("nan"), "NaN"), (5.0, "test_accuracy"), (-0.1, "test_accuracy"),
                                        (float("inf"), "Infinity")])
def test_an_accuracy_out_of_range_is_an_unreadable_row_not_a_shift(tmp_path, monkeypatch, value, why):
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    f = sorted(d.glob("*.json"))[0]
    rec = json.loads(f.read_text())
    rec["final"]["test_accuracy"] = value
    f.write_text(json.dumps(rec))                               # json writes NaN / Infinity literals
    rows, res = R.write_report("default", "replication", tmp_path / "r.md")
    row = next(r for r in rows if r["key"] == f.stem)
    assert row["status"] == "fresh record unreadable" and why in row["why"] and row["why"].count(str(f)) == 1
    assert res["status"] == "not judged"


def test_the_judgement_counts_for_a_summary(tmp_path, monkeypatch):
    _fresh(tmp_path, _same_machine(tmp_path), monkeypatch)
    res = R.judge(R.compare_with_reference("default", "replication"), "replication")
    assert res["status"] == "bit for bit" and res["counts"] == {"identical": 12} and res["compared"] == 12
    assert {round(c["bound"], 3) for c in res["configurations"]} == {0.03}
    d = tmp_path / "out" / "results" / "default" / "gp_runs"
    for f in d.glob("*.json"):
        f.unlink()
    for f in DATA.joinpath("other-host").glob("*.json"):
        shutil.copyfile(f, d / f.name)
    res = R.judge(R.compare_with_reference("default", "replication"), "replication")
    assert res["status"] == "in distribution" and res["counts"] == {"numerically different": 12}


def test_third_host_drift_as_documented():
    """The third CPU's conv runs (a later session's ``make reproduce``): the numbers docs/reliability.md quotes."""
    d, sm, lg = [], [], []
    for f in sorted((DATA / "third-host-conv").glob("*.json")):
        a = json.loads(f.read_text())
        b = json.loads((ROOT / "results" / "replication" / "gp_runs" / f.name).read_text())
        d.append(a["final"]["test_accuracy"] - b["final"]["test_accuracy"])
        sm.append(a["final"]["test_scale_accuracy"][0] - b["final"]["test_scale_accuracy"][0])
        lg.append(a["final"]["test_scale_accuracy"][1] - b["final"]["test_scale_accuracy"][1])
        assert a["history"] != b["history"]                     # another CPU: not one run bit-identical
    assert len(d) == 12
    rms = math.sqrt(sum(x * x for x in d) / len(d))
    docs = (ROOT / "docs" / "reliability.md").read_text()
    assert (f"RMS Δ test accuracy {rms:.4f}, largest |Δ| {max(map(abs, d)):.3f} (4 classes), "
            f"{max(map(abs, sm)):.3f} / {max(map(abs, lg)):.3f} (small / large scale)") in docs.replace("\n", " ")
    assert rms < R.DRIFT_SD


@pytest.mark.parametrize("how", ["copy", "link"])
def test_copies_of_the_committed_records_are_not_fresh_runs(tmp_path, monkeypatch, how):
    d = tmp_path / "copies"
    d.mkdir()
    for f in sorted((DATA / "other-host").glob("*.json")):
        src = ROOT / "results" / "replication" / "gp_runs" / f.name
        (d / f.name).symlink_to(src) if how == "link" else shutil.copyfile(src, d / f.name)
    _fresh(tmp_path, d, monkeypatch)
    rows, res = R.write_report("default", "replication", tmp_path / "r.md")
    assert {r["status"] for r in rows} == {"not re-run"} and res["status"] == "nothing compared"
    with pytest.raises(R.ReproductionError, match="compared no run"):
        R.check(res)


def test_a_comparison_that_cannot_be_made_fails_the_check_by_name(tmp_path, monkeypatch):
    d = _fresh(tmp_path, DATA / "other-host", monkeypatch)
    gone = [f for f in d.glob("*.json") if json.loads(f.read_text())["config"]["config"] == "none"]
    assert len(gone) == 4
    for f in gone:
        f.unlink()
    _, res = R.write_report("default", "replication", tmp_path / "r.md")
    assert res["status"] == "not judged"
    with pytest.raises(R.ReproductionError, match=r"not judged, 0 seeds: `fine 0.9 \+ coarse 0.95 - none`"):
        R.check(res)
