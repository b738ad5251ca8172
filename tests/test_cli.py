"""CLI wiring, papermill runner and the atomic-write helpers."""
import json
import os

import pytest

from backdrop_repro import cli, paths
from backdrop_repro.notebooks import NOTEBOOKS, run_notebooks


def test_parser_has_every_subcommand():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {"generate", "fetch", "sweep", "nondecomposable", "learnability", "confirm", "notebooks", "reproduce"}


def test_bad_profile_is_rejected_with_accepted_values():
    with pytest.raises(ValueError, match="profile must be one of"):
        paths.results_dir("huge")
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--profile", "huge"])


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "r.json"
    paths.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with paths.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temp file left
    assert oct(os.stat(target).st_mode & 0o777) != "0o600"


def test_run_notebooks_rejects_unknown_names():
    with pytest.raises(ValueError, match="names must be among"):
        run_notebooks("smoke", ["backdrop-dmeo"])


def test_run_backdrop_demo_with_papermill(tmp_path):
    (out,) = run_notebooks("smoke", ["backdrop-demo"], out_dir=tmp_path)
    nb = json.loads(out.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(o.get("output_type") == "error" for c in code for o in c["outputs"])
    text = "".join(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
                   for c in code for o in c["outputs"])
    assert "forward latent identical: True" in text
    figs = paths.figures_dir()
    assert {f"backdrop-demo-smoke-{n}.png" for n in ("chain-rule", "masks", "pinned", "bleed")} <= {p.name for p in figs.iterdir()}
    assert "backdrop-demo" in NOTEBOOKS


# ------------------------------------------------------------------ expected failures: one line
def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"backdrop-repro {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_generate_out_is_a_file_one_line_before_generating(tmp_path, capsys, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "generate", lambda *a, **k: pytest.fail("generated first"))
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.main(["generate", "--profile", "smoke", "--out", str(target)]) == 2
    assert str(target) in _one_line_error(capsys, "generate")


def test_generate_read_only_out_one_line(tmp_path, capsys, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "generate", lambda *a, **k: pytest.fail("generated first"))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "mkstemp", denied)
    assert cli.main(["generate", "--profile", "smoke", "--out", str(tmp_path / "ro")]) == 2
    assert f"{tmp_path / 'ro'} is not writable" in _one_line_error(capsys, "generate")


@pytest.mark.parametrize("content", ["[1, 2]", "{broken"])
def test_generate_into_folder_with_foreign_meta_json(tmp_path, capsys, content):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "meta.json").write_text(content)
    assert cli.main(["generate", "--profile", "smoke", "--out", str(tmp_path / "ds")]) == 2
    assert str(tmp_path / "ds" / "meta.json") in _one_line_error(capsys, "generate")
    assert (tmp_path / "ds" / "meta.json").read_text() == content


def test_generate_folder_holding_another_recipe(tmp_path, capsys):
    out = tmp_path / "ds"
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--seed", "7", "--out", str(out)]) == 2
    assert "holds another dataset" in _one_line_error(capsys, "generate")


def test_generate_too_large_is_refused_at_once(capsys):
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1000000000"]) == 2
    line = _one_line_error(capsys, "generate")
    assert "need" in line and "of memory" in line and "--per-class" in line


@pytest.mark.parametrize("exc, status", [
    (KeyboardInterrupt(), 130), (TypeError("x must be an int"), 2), (IsADirectoryError(21, "Is a directory", "/p"), 2),
    (OSError(5, "Input/output error"), 2), (ConnectionError("cannot reach"), 2), (MemoryError(), 2),
])
def test_main_maps_expected_failures(monkeypatch, capsys, exc, status):
    from backdrop_repro.data import datasets

    def boom(args):
        raise exc

    monkeypatch.setattr(datasets, "_cmd_generate", boom)
    assert cli.main(["generate", "--profile", "smoke"]) == status
    if status == 130:
        assert "Traceback" not in capsys.readouterr().err
    else:
        line = _one_line_error(capsys, "generate")
        if isinstance(exc, IsADirectoryError):
            assert "/p" in line


def test_a_bug_keeps_its_traceback(monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "_cmd_generate", lambda args: {}["missing"])
    with pytest.raises(KeyError):
        cli.main(["generate", "--profile", "smoke"])
