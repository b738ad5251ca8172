"""Sphinx configuration of the documentation site (``make docs``; see docs/site.md).

The site is built from the repository as it is: the source directory is the repository root, so every
relative link of README.md, docs/*.md and the executed notebooks resolves as it does on disk. Its pages:

* the front page is README.md itself (``root_doc``), so it follows whatever the README says;
* the executed notebooks ``results/<profile>/notebooks/*.ipynb``, rendered by MyST-NB from their
  committed outputs (``nb_execution_mode = "off"``: the build never runs a notebook), one section per
  profile in the navigation;
* the docs pages ``docs/*.md`` and the results pages ``results/<profile>/*.md``;
* the API reference ``docs/api.md`` (autodoc over the docstrings of the public names).

The navigation is a hidden toctree appended to the front page's source when Sphinx reads it
(``_navigation``): README.md itself carries no Sphinx markup.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

project = "backdrop-repro"
author = "backdrop-repro developers"
copyright = "the backdrop-repro developers (MIT licence)"

extensions = ["myst_nb", "sphinx.ext.autodoc"]

root_doc = "README"
# the source directory is the repository root: read only these pages
include_patterns = ["README.md", "docs/*.md", "results/*/*.md", "results/*/notebooks/*.ipynb"]
exclude_patterns = [".venv", ".git", "build", ".test-out", "data", "tests", "bench", "notebooks", "figures",
                    "backdrop_repro", "**/.ipynb_checkpoints", "results/*/runs", "results/*/gp_runs",
                    "results/*/gp_reference", "results/*/learnability", "docs/_templates"]

# MyST: anchors for headings (README's #disclosures, docs/reliability.md#...), $...$ maths
myst_heading_anchors = 4
myst_enable_extensions = ["dollarmath"]
# MyST-NB: render the committed outputs, never execute
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"      # the Markdown outputs (verdict tables, Findings) are GFM: tables need MyST, not CommonMark
suppress_warnings = ["myst.header"]        # README's heading levels are GitHub's, not a document tree's

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_inherit_docstrings = False         # torch.autograd.Function's own docstrings are not this package's

html_theme = "furo"
html_title = "backdrop-repro"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False
# index.html, the entry a browser opens, sends the reader to the front page (README.html)
templates_path = ["_templates"]
html_additional_pages = {"index": "redirect.html"}
html_last_updated_fmt = None


def _profiles() -> list[str]:
    """The profiles with executed notebooks, in the README's order of reading, then the rest."""
    first = ["replication", "default", "scaled", "confirm", "learnability", "paper-cpu"]
    have = sorted(p.parent.parent.name for p in ROOT.glob("results/*/notebooks/*.ipynb"))
    have = list(dict.fromkeys(have))
    return [p for p in first if p in have] + [p for p in have if p not in first]


def _toctree(caption: str, entries: list[str]) -> str:
    if not entries:
        return ""
    return "\n```{toctree}\n:hidden:\n:caption: " + caption + "\n\n" + "\n".join(entries) + "\n```\n"


def _navigation() -> str:
    text = ""
    for profile in _profiles():
        nbs = sorted(ROOT.glob(f"results/{profile}/notebooks/*.ipynb"))
        text += _toctree(f"Executed notebooks: {profile}", [f"results/{profile}/notebooks/{p.stem}" for p in nbs])
    results = sorted(ROOT.glob("results/*/*.md"))
    first = [f"docs/{p}" for p in ("results", "claims") if (ROOT / "docs" / f"{p}.md").is_file()]
    text += _toctree("Results and claims", first + [str(p.relative_to(ROOT).with_suffix("")) for p in results])
    pages = [p.stem for p in sorted((ROOT / "docs").glob("*.md")) if p.stem not in ("results", "claims", "api", "site")]
    text += _toctree("Documentation", [f"docs/{p}" for p in pages] + ["docs/site"])
    text += _toctree("API reference", ["docs/api"])
    return text


_HEADER_LINE = re.compile(r"^-{3,}$")
_ITEM = re.compile(r"^(\S[^:]*?) : (.*)$")
_LISTS = ("Parameters", "Returns", "Yields", "Raises", "Attributes", "Other Parameters")


def _docstring_sections(app, what, name, obj, options, lines: list[str]) -> None:
    """The package's docstrings as reStructuredText: a numpydoc-like header (``Parameters`` over dashes)
    becomes a rubric, and in a list section each ``name : description`` line a definition-list item
    (``name`` in code, its description below; continuation lines are already indented). This package
    writes the description after the colon, where numpydoc (and napoleon) expect a type."""
    out: list[str] = []
    section = None
    in_item = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() and i + 1 < len(lines) and _HEADER_LINE.match(lines[i + 1]) \
                and len(lines[i + 1]) == len(line.strip()):
            section, in_item = line.strip(), False
            out += [f".. rubric:: {section}", ""]
            i += 2
            continue
        m = _ITEM.match(line) if section in _LISTS else None
        if m:
            out += [f"``{m.group(1).strip('`')}``", f"    {m.group(2)}"]
            in_item = True
        elif in_item and line.strip() and not line.startswith(" "):
            out.append("    " + line)                 # an item's unindented continuation line
        else:
            out.append(line)
            in_item = in_item and bool(line.strip())
        i += 1
    lines[:] = out


def _append_navigation(app, docname: str, source: list[str]) -> None:
    if docname == app.config.root_doc:
        source[0] += "\n" + _navigation()


class _LinksOutsideTheSite(SphinxTransform):
    """Links to repository files that are not pages of the site, resolved while a page is read.

    * a file with a page suffix left out of the site (a source notebook in ``notebooks/``, ``tests/README.md``)
      becomes a download link, like any other file of the repository (``figures/*.png``, ``*.py``);
    * a folder (README's ``figures/``, ``notebooks/``) has no page: its text stays, unlinked.

    Any other unresolved link stays a warning, hence an error of ``make docs``.
    """

    default_priority = 5

    def apply(self, **kwargs) -> None:
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst":
                continue
            target = node.get("reftarget", "")
            if node.get("refdomain") == "doc":
                if target in self.env.found_docs:
                    continue
                files = [ROOT / f"{target}{suffix}" for suffix in (".ipynb", ".md")]
                path = next((f for f in files if f.is_file()), None)
                if path is None:
                    continue
                dl = addnodes.download_reference("", "", *node.children, reftarget="/" + str(path.relative_to(ROOT)),
                                                 refdoc=node.get("refdoc"), reftype="myst", refexplicit=True,
                                                 refdomain=None)
                node.replace_self(dl)
            elif not node.get("refdomain"):
                _, abs_path = self.env.relfn2path(target.split("#")[0], self.env.docname)
                if target and Path(abs_path).is_dir():
                    node.replace_self(nodes.inline("", "", *node.children))


def setup(app):
    app.connect("source-read", _append_navigation)
    app.connect("autodoc-process-docstring", _docstring_sections)
    app.add_transform(_LinksOutsideTheSite)
