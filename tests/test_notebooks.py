"""The notebook runner (``backdrop_repro.notebooks``): names and parameters checked before any notebook runs,
papermill execution, a failed notebook's executed copy kept beside a one-line error, kernels that print no
warnings."""
import json
from pathlib import Path

import pytest

from backdrop_repro import cli, paths
from backdrop_repro.notebooks import NOTEBOOKS, run_notebooks
from helpers import one_line_error


# --------------------------------------------------------------- names and parameters, checked before any notebook runs
def test_run_notebooks_rejects_unknown_names():
    with pytest.raises(ValueError, match="names must be among"):
        run_notebooks("smoke", ["backdrop-dmeo"])


@pytest.mark.parametrize("params, words", [({"mc_draws": 50}, r"mc_draws must be in \[100, inf\)"),
                                           ({"mc_draws": "many"}, "mc_draws must be an int, got 'many'"),
                                           ({"fine_prob": 1.0}, r"fine_prob must be in \[0.0, 1.0\)"),
                                           ({"mc_drwas": 100}, "'mc_drwas' is not a parameter of backdrop-demo"),
                                           ({"seed": 1.5}, "seed must be an int")])
def test_notebook_parameters_are_checked_before_execution(monkeypatch, params, words):
    import papermill as pm

    from backdrop_repro.notebooks import run_notebooks

    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran first"))
    with pytest.raises(ValueError, match=words):
        run_notebooks("smoke", ["backdrop-demo"], parameters=params)


def test_good_notebook_parameters_pass():
    from backdrop_repro.notebooks import check_parameters

    assert check_parameters(["backdrop-demo"], {"mc_draws": 100, "fine_prob": 0.5, "seed": 3}) == \
        {"mc_draws": 100, "fine_prob": 0.5, "seed": 3}
    assert check_parameters(["gp-generate-demo"], {"demo_size": None}) == {"demo_size": None}


# ------------------------------------------------------- execution: the executed copy, a failed notebook, quiet kernels
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


def _notebook(tmp_path, code: list[str]) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# A test notebook\n\n> committed with smoke outputs"},
             {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": 'profile = "smoke"',
              "outputs": [], "execution_count": None}]
    cells += [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for c in code]
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i}"
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (src / "backdrop-demo.ipynb").write_text(json.dumps(nb))
    return src


@pytest.mark.usefixtures("own_output_dir")
def test_a_failed_notebook_keeps_its_executed_copy_beside_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BACKDROP_REPRO_NOTEBOOKS", str(_notebook(tmp_path, ["x = 1", "y = x / 0\nprint(y)"])))
    assert cli.main(["notebooks", "--profile", "smoke", "backdrop-demo"]) == 2
    line = one_line_error(capsys, "notebooks", progress_lines=1)     # "[backdrop-repro 1/1] backdrop-demo ..."
    assert "notebook backdrop-demo failed at cell 3 (`y = x / 0`)" in line and "ZeroDivisionError" in line
    out = paths.results_dir("smoke") / "notebooks"
    failed = out / "backdrop-demo.failed.ipynb"
    assert str(failed.relative_to(paths.output_root())) in line
    nb = json.loads(failed.read_text())
    assert any(o.get("output_type") == "error" and o["ename"] == "ZeroDivisionError"
               for c in nb["cells"] for o in c.get("outputs", []))
    assert not (out / "backdrop-demo.ipynb").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(paths.TMP_PREFIX)]


def test_notebook_runs_print_no_kernel_warnings(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("BACKDROP_REPRO_NOTEBOOKS", str(_notebook(tmp_path, ["print('fine')"])))
    failed = paths.results_dir("smoke") / "notebooks" / "backdrop-demo.failed.ipynb"
    failed.parent.mkdir(parents=True, exist_ok=True)
    failed.write_text("{}")                                     # a stale failure: the success removes it
    from backdrop_repro.notebooks import run_notebooks

    (out,) = run_notebooks("smoke", ["backdrop-demo"])
    err = capfd.readouterr().err
    assert "without encryption" not in err and "KeyboardInterrupt" not in err and "[IPKernelApp]" not in err, err
    assert "fine" in out.read_text() and not failed.exists()


# ------------------------------------------------------- issue 39: papermill run directly checks the parameters too
@pytest.mark.parametrize("name, params, words", [
    ("gp-generate-demo", {"demo_size": 0}, r"parameter demo_size must be in [1, inf), got 0"),
    ("backdrop-demo", {"seed": -1}, r"parameter seed must be in [0, inf), got -1"),
    ("backdrop-demo", {"mc_draws": 50}, r"parameter mc_draws must be in [100, inf), got 50"),
])
def test_papermill_run_directly_checks_the_parameters_in_the_first_cell(tmp_path, name, params, words):
    """``-p demo_size 0`` silently became 512, ``-p seed -1`` ran, ``-p mc_draws 50`` was an IndexError after 13 s."""
    import papermill as pm

    src = Path(__file__).resolve().parent.parent / "notebooks" / f"{name}.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), parameters=params, cwd=str(src.parent),
                            progress_bar=False, kernel_name="python3")
    assert err.value.ename == "ValueError" and err.value.evalue == words
    first_code = [c for c in json.loads((tmp_path / "out.ipynb").read_text())["cells"]
                  if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])
                  and "injected-parameters" not in c["metadata"].get("tags", [])][0]
    assert any(o.get("output_type") == "error" for o in first_code["outputs"])      # the first cell, before any work


def test_check_notebook_takes_what_run_notebooks_takes():
    from backdrop_repro.notebooks import check_notebook

    check_notebook("backdrop-demo", seed=0, fine_prob=0.3, coarse_prob=0.95, mc_draws=2000)
    check_notebook("gp-generate-demo", seed=3, demo_size=None)
    with pytest.raises(ValueError, match="parameter train must be a bool"):
        check_notebook("confirm", train="yes")
