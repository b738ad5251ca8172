"""CLI wiring, papermill runner and the atomic-write helpers."""
import json
import os

import pytest

from backdrop_repro import cli, paths
from backdrop_repro.notebooks import NOTEBOOKS, run_notebooks


def test_parser_has_every_subcommand():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {"generate", "fetch", "sweep", "nondecomposable", "notebooks", "reproduce"}


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
    assert {f"backdrop-demo-{n}.png" for n in ("chain-rule", "masks", "pinned", "bleed")} <= {p.name for p in figs.iterdir()}
    assert "backdrop-demo" in NOTEBOOKS
