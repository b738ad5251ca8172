"""Text and file names follow the run they describe.

The class of bug: a banner or a Findings cell quoting numbers from another profile section than
the one the notebook ran (the GP sweep's seeds in the non-decomposable banner), or a figure file
named without its profile (so the `default` run overwrites the `scaled` figures).
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from backdrop_repro import notebooks, profiles
from backdrop_repro.experiments import nondecomposable as nd

ROOT = Path(__file__).resolve().parent.parent


def _code_cells(name: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _save_names(name: str) -> list[ast.AST]:
    """The name argument of every ``save(fig, name)`` call in the notebook's code cells."""
    out = []
    for src in _code_cells(name):
        tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "save":
                assert len(node.args) >= 2, f"{name}: save() without a name: {ast.unparse(node)}"
                out.append(node.args[1])
    return out


@pytest.mark.parametrize("name", notebooks.NOTEBOOKS + notebooks.ON_DEMAND)
def test_every_figure_file_carries_the_notebook_and_its_profile(name):
    names = _save_names(name)
    assert names, f"{name} saves no figure"
    for arg in names:
        text = ast.unparse(arg)
        assert isinstance(arg, ast.JoinedStr), f"{name}: figure name {text} is not an f-string with the profile"
        parts = arg.values
        assert isinstance(parts[0], ast.Constant) and parts[0].value == f"{name}-", \
            f"{name}: figure name {text} must start with '{name}-{{profile}}-'"
        assert isinstance(parts[1], ast.FormattedValue) and ast.unparse(parts[1].value) == "profile", \
            f"{name}: figure name {text} must carry the profile right after the notebook name"


@pytest.fixture
def odd_profile():
    """A profile whose sections hold different, recognisable numbers: 7 sweep seeds, 5
    non-decomposable seeds, a 384² demo network, 320² demo images, 48² training data."""
    base = profiles.get("smoke")
    p = replace(base, name="odd-sections", description="SWEEP SECTION ONLY: 7 seeds",
                data=replace(base.data, size=48, per_class=3),
                sweep=replace(base.sweep, seeds=tuple(range(7))),
                nondecomposable=replace(base.nondecomposable, seeds=tuple(range(5)), batch_sizes=(16, 256)),
                demo=replace(base.demo, size=384, width=12, gp_size=320))
    profiles.register(p)
    yield p
    profiles.PROFILES.pop(p.name, None)


def test_each_banner_quotes_the_section_its_notebook_runs(odd_profile):
    header = {n: notebooks.copy_header(n, odd_profile.name, f"results/{odd_profile.name}/notebooks")
              for n in notebooks.NOTEBOOKS}
    nd_h = header["non-decomposable"]
    assert "5 seeds" in nd_h and "SWEEP SECTION" not in nd_h and "7 seeds" not in nd_h, nd_h
    assert "B ∈ {16, 256}" in nd_h and f"{nd.n_train(odd_profile.nondecomposable)} training samples" in nd_h
    demo_h = header["backdrop-demo"]
    assert "384²" in demo_h and "width 12" in demo_h and "48²" in demo_h and "seeds" not in demo_h, demo_h
    gen_h = header["gp-generate-demo"]
    assert "320²" in gen_h and "48²" in gen_h and "3 images per class" in gen_h and "seeds" not in gen_h, gen_h
    assert "SWEEP SECTION ONLY: 7 seeds" in header["gp-training"]


def test_the_shipped_banners_quote_their_own_sections():
    for name in profiles.names():
        p = profiles.get(name)
        h = notebooks.profile_summary("non-decomposable", name)
        assert f"{len(p.nondecomposable.seeds)} seeds" in h and p.description not in h, (name, h)
        assert f"{p.nondecomposable.steps} steps" in h
        for demo in ("backdrop-demo", "gp-generate-demo"):
            assert p.description not in notebooks.profile_summary(demo, name)


def test_nondecomposable_text_counts_the_result_not_the_profile_table():
    """Findings and tables count seeds from the result they read: a result with 3 of the 24 seeds
    of `scaled` says 3 seeds, paired over 3, whatever the profile table holds."""
    result = json.loads((ROOT / "results" / "scaled" / "nondecomposable.json").read_text())
    result["runs"] = [r for r in result["runs"] if r["seed"] < 3]
    from backdrop_repro import render, tables

    text = render.findings(tables.nondecomposable_rows(result)) + render.nd_tables(result)
    assert "3 seeds" in text
    assert not re.search(r"\b24 seeds\b", text)
    assert "mean ± SD over 3 seeds" in render.nd_tables(result)           # the ± is labelled


def test_nondecomposable_description_is_its_own_config():
    cfg = nd.get_config("scaled")
    text = nd.describe(cfg)
    assert f"{len(cfg.seeds)} seeds" in text and f"{cfg.steps} steps" in text
    assert f"({nd.n_train(cfg)} samples are left to train on)" in text
    assert "B = 256 is nearly full batch" in text
    assert "nearly full batch" not in nd.describe(nd.get_config("smoke"))   # B = 32 of 270 is not


def test_the_readme_indexes_every_figure():
    readme = (ROOT / "README.md").read_text()
    for name in notebooks.NOTEBOOKS + notebooks.ON_DEMAND:
        for arg in _save_names(name):
            stem = "".join(p.value if isinstance(p, ast.Constant) else "<profile>" for p in arg.values)
            assert f"`{stem}`" in readme, f"README.md's figure index lacks {stem}"
