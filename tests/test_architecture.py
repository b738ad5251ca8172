"""The package's import rules, read from the source with ``ast`` (issue 26 item 3): reports only read
(no report module imports the data or GP packages, so none builds a dataset or scores a classifier), and
no private name (``_x``) is used across module lines."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "backdrop_repro"

#: the modules that read records and verdict data only
READERS = sorted([*PACKAGE.glob("experiments/*/report.py"), PACKAGE / "experiments" / "gp_sweep" / "reproduction.py",
                  PACKAGE / "report.py", PACKAGE / "glance.py"])
#: what a reader never imports: the code that builds datasets (the GP sets, the digits split) and scores the
#: likelihood classifier
COMPUTE = ("backdrop_repro.data", "backdrop_repro.gp", "backdrop_repro.experiments.nondecomposable.data")


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _source(node: ast.ImportFrom, module: str, path: Path) -> str:
    """The absolute module name an ``ImportFrom`` in ``module`` (file ``path``) imports from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every module ``path`` imports, at any depth (inside functions too);
    ``from a import b`` counts as ``a.b`` when that is a module of the package, else as ``a``."""
    module, out = _name(path), []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            src = _source(node, module, path)
            out += [(node.lineno, f"{src}.{a.name}" if f"{src}.{a.name}" in MODULES else src) for a in node.names]
    return out


def _private_uses(path: Path) -> list[str]:
    """Private names of another module of the package that ``path`` imports or reads as an attribute."""
    module, tree, found = _name(path), ast.parse(path.read_text()), []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            src = _source(node, module, path)
            if not src.startswith("backdrop_repro"):
                continue
            for a in node.names:
                if f"{src}.{a.name}" in MODULES:                     # a module (``_shared``, ``_common``)
                    aliases[a.asname or a.name] = f"{src}.{a.name}"
                elif a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"line {node.lineno}: from {src} import {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("backdrop_repro") and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and f"{aliases[node.value.id]}.{node.attr}" not in MODULES):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr} ({aliases[node.value.id]})")
    return found


def test_the_readers_are_found():
    names = {_name(p) for p in READERS}
    assert {"backdrop_repro.report", "backdrop_repro.glance", "backdrop_repro.experiments.gp_sweep.report",
            "backdrop_repro.experiments.nondecomposable.report"} <= names and all(p.exists() for p in READERS)


@pytest.mark.parametrize("path", READERS, ids=_name)
def test_reports_only_read(path):
    """No report imports the data or GP packages: the likelihood classifier's reference is a record
    the runner writes (``gp_sweep.run.write_references``), the digits split is counted on the data side."""
    bad = [f"line {n}: {m}" for n, m in _imports(path) if any(m == c or m.startswith(c + ".") for c in COMPUTE)]
    assert not bad, f"{_name(path)} imports code that computes: {bad}"


def test_the_import_scan_sees_imports_inside_functions():
    f = PACKAGE / "experiments" / "gp_sweep" / "run.py"
    assert any(m.startswith("backdrop_repro.data") for _, m in _imports(f))    # score_reference builds the test set


def test_no_private_name_crosses_a_module_line():
    found = {m: _private_uses(p) for m, p in MODULES.items()}
    found = {m: f for m, f in found.items() if f}
    assert not found, f"private names used from another module (make them public): {found}"
