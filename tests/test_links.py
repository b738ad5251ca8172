"""Every relative link a reader can click resolves: README.md, docs/*.md, the source notebooks and
the committed executed copies (markdown cells). Also checks the header that ``run_notebooks``
writes into executed copies."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from backdrop_repro.notebooks import copy_header, rebase_links, rewrite_copy

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|#)")

#: PENDING: the source notebooks link the executed copies of the main profiles
#: (results/default/notebooks/..., results/scaled/notebooks/...) before those runs are committed.
#: A link into results/<profile>/notebooks/ of a profile listed here is skipped ONLY while that
#: notebooks/ folder does not exist; as soon as it is there, its links are checked like any other.
PENDING_PROFILES = ("default", "scaled", "learnability", "confirm", "paper-cpu")


def _documents() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "results").glob("*/notebooks/*.ipynb"))]
    return [f for f in files if f.is_file()]


def _markdown(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"] if c["cell_type"] == "markdown")


def _pending(target: Path) -> bool:
    try:
        parts = target.resolve().relative_to(ROOT).parts
    except ValueError:
        return False
    return (len(parts) > 2 and parts[0] == "results" and parts[1] in PENDING_PROFILES and parts[2] == "notebooks"
            and not (ROOT / "results" / parts[1] / "notebooks").exists())


def relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(_markdown(path)) if not EXTERNAL.match(t)]


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in relative_links(doc):
        path = (doc.parent / target.partition("#")[0]).resolve()
        if not path.exists() and not _pending(path):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links that resolve to no file: {broken}"


def test_source_notebooks_say_they_hold_smoke_outputs_and_link_the_main_profiles():
    # the demos do not depend on the GP sweep: executed at `default` only; the experiments at both
    main = {"backdrop-demo": ("default",), "gp-generate-demo": ("default",),
            "gp-training": ("default", "scaled"), "non-decomposable": ("default", "scaled"),
            "learnability": ("learnability",), "confirm": ("confirm",)}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        first = json.loads(nb.read_text())["cells"][0]
        text = "".join(first["source"])
        assert first["cell_type"] == "markdown" and "`smoke`" in text
        for profile in main[nb.stem]:
            assert f"../results/{profile}/notebooks/{nb.name}" in text


def test_rebase_links_keeps_external_links_and_anchors():
    text = "[r](../README.md) [w](https://x.org/a) [s](#sec) ![f](../figures/a.png \"t\") [g](x.ipynb#c)"
    out = rebase_links(text, "notebooks", "results/default/notebooks")
    assert out == ("[r](../../../README.md) [w](https://x.org/a) [s](#sec) ![f](../../../figures/a.png \"t\") "
                   "[g](../../../notebooks/x.ipynb#c)")


def test_executed_copy_header_names_the_profile_and_links_only_existing_files(tmp_path):
    (tmp_path / "results" / "scaled" / "notebooks").mkdir(parents=True)
    (tmp_path / "results" / "scaled" / "notebooks" / "backdrop-demo.ipynb").write_text("{}")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source":
                     "# Title\n\n*Part of [repo](../README.md).*\n\n> **This source notebook is committed with the "
                     "outputs of a `smoke` run**\n> see [x](../results/default/notebooks/backdrop-demo.ipynb).\n\nBody."},
                    {"cell_type": "markdown", "metadata": {}, "source": ["See [fig](../figures/a.png)."]}],
          "metadata": {}}
    out = rewrite_copy(nb, "backdrop-demo", "default", "results/default/notebooks", root=tmp_path)
    first = out["cells"][0]["source"]
    assert "profile `default`" in first and "`backdrop-repro notebooks --profile default`" in first
    assert "This source notebook" not in first and "Body." in first and first.startswith("# Title")
    assert "[repo](../../../README.md)" in first
    assert "(../../../notebooks/backdrop-demo.ipynb)" in first
    assert "[`scaled`](../../scaled/notebooks/backdrop-demo.ipynb)" in first   # exists under root
    assert "results/quick" not in first and "results/paper" not in first       # do not exist: not linked
    assert out["cells"][1]["source"] == "See [fig](../../../figures/a.png)."
    again = rewrite_copy(out, "backdrop-demo", "default", "results/default/notebooks", root=tmp_path)
    assert again["cells"][1]["source"] == "See [fig](../../../figures/a.png)."   # links rebased once only
    assert again["cells"][0]["source"].count("Executed copy") == 1
    assert copy_header("backdrop-demo", "default", "results/default/notebooks", root=tmp_path) in first


def test_architecture_lists_every_module():
    """docs/architecture.md names every module of the package by its path inside backdrop_repro/."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "backdrop_repro"
    modules = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py"))
    missing = [m for m in modules if f"`{m}`" not in text]
    assert modules and not missing, f"docs/architecture.md does not list: {missing}"
