"""The package's import rules, read from the source with ``ast``: reports only read
(no report module imports the data or GP packages, so none builds a dataset or scores a classifier), and
no private name (``_x``) is used across module lines."""
import ast
from pathlib import Path

import pytest

from backdrop_repro import profiles

PACKAGE = Path(__file__).resolve().parent.parent / "backdrop_repro"

#: the modules that read records and verdict data only
READERS = sorted([*PACKAGE.glob("experiments/*/report.py"), PACKAGE / "experiments" / "gp_sweep" / "reproduction.py",
                  PACKAGE / "report.py", PACKAGE / "render.py", PACKAGE / "tables.py", PACKAGE / "claims.py",
                  PACKAGE / "stats.py"])
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
                if f"{src}.{a.name}" in MODULES:                     # a module (``checks``, ``_common``)
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
    assert {"backdrop_repro.report", "backdrop_repro.render", "backdrop_repro.experiments.gp_sweep.report",
            "backdrop_repro.experiments.nondecomposable.report"} <= names and all(p.exists() for p in READERS)


@pytest.mark.parametrize("path", READERS, ids=_name)
def test_reports_only_read(path):
    """No report imports the data or GP packages: the likelihood classifier's reference is a record
    the runner writes (``gp_sweep.run.write_references``), the digits split is counted on the data side."""
    bad = [f"line {n}: {m}" for n, m in _imports(path) if any(m == c or m.startswith(c + ".") for c in COMPUTE)]
    assert not bad, f"{_name(path)} imports code that computes: {bad}"


def test_the_import_scan_sees_imports_inside_functions():
    f = PACKAGE / "experiments" / "core.py"
    assert any(m.startswith("backdrop_repro.gp") for _, m in _imports(f))    # score_oracle imports the classifier inside


def test_no_private_name_crosses_a_module_line():
    found = {m: _private_uses(p) for m, p in MODULES.items()}
    found = {m: f for m, f in found.items() if f}
    assert not found, f"private names used from another module (make them public): {found}"


def test_the_tables_read_the_reference_record_and_name_a_missing_one(tmp_path, monkeypatch):
    """The collect step builds no dataset: without the reference record the summary names it
    (``reference_missing``); with it, the tables quote it, as the committed tables do."""
    import json
    import shutil

    from backdrop_repro.data import datasets
    from backdrop_repro.experiments.gp_sweep import plan, report

    root = PACKAGE.parent
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(datasets, "build_dataset", lambda *a, **k: pytest.fail("the report built a dataset"))
    shutil.copytree(root / "results" / "default" / "gp_runs", tmp_path / "out" / "results" / "default" / "gp_runs")
    spec = plan.ReferenceSpec(profiles.get("default"))
    sweep = report.write_tables("default")
    assert sweep["reference"] == {}
    assert sweep["reference_missing"] == [f"results/default/gp_reference/{spec.key}.json"]
    committed = json.loads((root / "results" / "default" / "gp_sweep.json").read_text())
    ref = committed["reference"]["main"]
    assert ref["test_accuracy"] == 1.0                  # so every prediction is right (labels interleave)
    n = spec.recipes()[0].n_classes * spec.recipes()[0].per_class
    rec = {"key": spec.key, "config": spec.to_dict(), "label": "likelihood classifier", "history": [],
           "final": {"test_accuracy": 1.0, "test_scale_accuracy": [ref["small_scale_accuracy"], ref["large_scale_accuracy"]],
                     "method": ref["method"], "exact": ref["exact"]},
           "predictions": {"test": "".join(str(i % 4) for i in range(n))}}
    spec.record_path.parent.mkdir(parents=True)
    spec.record_path.write_text(json.dumps(rec))
    sweep = report.write_tables("default")
    assert sweep["reference"] == committed["reference"] and sweep["verdict"] == committed["verdict"]


def test_the_runner_scores_the_reference_as_the_tables_did(tmp_path, monkeypatch):
    import numpy as np

    from backdrop_repro.data.datasets import build_dataset
    from backdrop_repro.experiments.gp_sweep import plan, run
    from backdrop_repro.gp import oracle

    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    spec = plan.ReferenceSpec(profiles.get("smoke"))
    rec = run.score_reference(spec)
    assert plan.read_record(spec.record_path, spec) == rec and rec["key"] == spec.key
    r = spec.recipes()[0]
    ds = build_dataset(r, progress=False)
    images, labels = np.asarray(ds.images), np.asarray(ds.labels)
    pred = oracle.oracle_for_recipe(r).predict(images)        # the collect step's computation before the record
    assert plan.read_reference(spec) == {
        "test_accuracy": float(np.mean(pred == labels)), "method": r.method, "exact": bool(oracle.is_exact(r)),
        "small_scale_accuracy": float(np.mean(pred % 2 == labels % 2)),
        "large_scale_accuracy": float(np.mean(pred // 2 == labels // 2))}
    other = plan.ReferenceSpec(profiles.get("smoke"), "fft")
    assert other.key != spec.key and set(run.write_references("smoke")) == set()   # no run record: no reference


# ------------------------------------------------------------------ one run core, launchers above it
def _defs(name: str) -> list[str]:
    """The modules of the package that define a function ``name`` (at any depth)."""
    return sorted(m for m, p in MODULES.items()
                  if any(isinstance(n, ast.FunctionDef) and n.name == name for n in ast.walk(ast.parse(p.read_text()))))


def test_one_run_core_one_model_factory_one_device_resolver_one_pool():
    assert _defs("run_one") == ["backdrop_repro.experiments.core"]
    assert _defs("build_model") == ["backdrop_repro.experiments.core"]
    assert _defs("load_data") == ["backdrop_repro.experiments.core", "backdrop_repro.experiments.nondecomposable.data"]
    assert _defs("resolve_device") == ["backdrop_repro.checks"]
    makers = {m for m, p in MODULES.items() if "ProcessPoolExecutor(" in p.read_text() or "get_context(" in p.read_text()}
    assert makers == {"backdrop_repro.experiments.launchers"}
    resolvers = {m for m, p in MODULES.items() if "torch.cuda.is_available() else" in p.read_text()}
    assert resolvers == {"backdrop_repro.checks"}          # "auto" -> cuda or cpu, written once


def test_the_core_and_the_launchers_import_no_experiment_and_nothing_imports_back():
    """The floors: core <- launchers <- (gp_sweep | learnability | confirm); no circle."""
    subs = ("gp_sweep", "learnability", "confirm", "nondecomposable")
    for low in ("core", "launchers"):
        bad = [m for _, m in _imports(PACKAGE / "experiments" / f"{low}.py")
               if any(m.startswith(f"backdrop_repro.experiments.{x}") for x in subs)]
        assert not bad, f"experiments/{low}.py imports an experiment: {bad}"
    assert not [m for _, m in _imports(PACKAGE / "experiments" / "core.py") if m.endswith("launchers")]
    graph = {m: {i for _, i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()
             if m.startswith("backdrop_repro.experiments.") and not m.endswith("__init__")}

    def reaches(a: str, b: str, seen: set) -> bool:
        return any(n == b or (n not in seen and not seen.add(n) and reaches(n, b, seen)) for n in graph.get(a, ()))

    circles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if b in graph and reaches(b, a, set()))
    assert not circles, circles


def test_every_spec_class_is_a_run_core_spec():
    from backdrop_repro.experiments import core
    from backdrop_repro.experiments.confirm.plan import plan_runs as confirm_runs
    from backdrop_repro.experiments.gp_sweep import plan
    from backdrop_repro.experiments.learnability.plan import plan_map

    specs = [plan.plan_grid("smoke")[0], plan.ReferenceSpec(profiles.get("smoke")), *plan_map("smoke")[:3],
             confirm_runs("confirm")[0]]
    assert all(isinstance(s, core.Spec) for s in specs)
    assert {s.model for s in specs} == {"cnn", "oracle", "spectral"}


# ------------------------------------------------------------------ docs/architecture.md stays true
DOC = PACKAGE.parent / "docs" / "architecture.md"


def test_the_mask_probability_path_in_the_docs_is_the_code_and_at_most_five_hops():
    import importlib
    import inspect
    import re

    from backdrop_repro.experiments import core
    from backdrop_repro.experiments.gp_sweep import plan
    from backdrop_repro.masking import BackdropMask

    names = re.findall(r"`([^`]+)`", re.search(r"<!-- hops -->(.*?)<!-- /hops -->", DOC.read_text()).group(1))
    assert 2 <= len(names) <= 6, f"{len(names) - 1} hops: {names}"                     # at most 5 hops

    def obj(name: str):
        mod, _, attr = name.rpartition(".")
        for base in ("backdrop_repro.", "backdrop_repro.experiments."):
            try:
                return getattr(importlib.import_module(base + mod), attr) if mod else importlib.import_module(base + attr)
            except (ImportError, AttributeError):
                continue
        raise AssertionError(f"docs/architecture.md names {name!r}, which is not in the package")

    objs = [obj(n) for n in names]
    src = [inspect.getsource(o) for o in objs]
    for (a, sa), (b, sb) in zip(zip(names, src), zip(names[1:], src[1:])):     # each hop is a reference in the code
        short_a, short_b = a.rpartition(".")[2], b.rpartition(".")[2]
        assert short_b in sa or short_a in sb or "spec.fine_prob" in sb, f"no link in the code from {a} to {b}"
    # and the value really travels: the profile's first fine level is the network's fine mask probability
    spec = plan.plan_grid("smoke", ["fine"], [0])[0]
    net = core.build_model(spec)
    assert spec.fine_prob == profiles.get("smoke").sweep.fine_probs[0] > 0
    assert isinstance(net.fine_mask, BackdropMask) and net.fine_mask.mask_prob == spec.fine_prob


def test_the_docs_list_every_profile():
    import re

    listed = re.search(r"\*\*the one table of profiles\*\* \(([^)]*)\)", DOC.read_text()).group(1)
    assert sorted(re.findall(r"`([^`]+)`", listed)) == sorted(n for n in profiles.names() if profiles.shipped(profiles.get(n)))


def test_the_training_configuration_is_the_trainers_own_and_checked_once():
    """``TrainConfig`` declares its optimiser fields itself (no profile class below the front doors), with
    the names and defaults of a profile's ``OptimSection``; both go through one check; and every run's key
    holds them flat, as before."""
    import dataclasses
    import inspect

    from backdrop_repro import train
    from backdrop_repro.train import TrainConfig

    optim = {f.name: f.default for f in dataclasses.fields(profiles.OptimSection)}
    assert set(optim) == {"optimizer", "lr", "weight_decay", "momentum"}
    assert profiles.OptimSection not in TrainConfig.__mro__
    assert {k: TrainConfig.__dataclass_fields__[k].default for k in optim} == optim
    assert set(optim) <= set(TrainConfig().to_dict())
    assert "check_optimizer(self)" in inspect.getsource(TrainConfig)
    assert "check_optimizer(self)" in inspect.getsource(profiles.OptimSection)
    assert "OPTIMIZERS" in dir(train)


# ------------------------------------------------------------------ issue 39: what run_one writes
# A record's ``versions.machine`` named the caller's torch threads, not the run's; a run overwrote a record edited
# under its old key without a word and without a copy (the one data loss of the fault battery).
def test_run_one_keeps_an_edited_record_and_states_the_threads_it_trained_with(own_output_dir, own_data_dir):
    """Own folders: the finished run's checkpoint stays in its data cache (a later test's run would end at once)."""
    import json
    import warnings

    import torch

    from backdrop_repro.experiments import core
    from backdrop_repro.experiments.gp_sweep import plan

    spec = plan.plan_grid("smoke", ["none"], [0])[0]
    assert spec.threads == 1
    path = spec.record_path
    path.parent.mkdir(parents=True, exist_ok=True)
    edited = {"key": spec.key, "config": {**spec.to_dict(), "seed": 99}, "history": [],
              "final": {"test_accuracy": 0.5}}
    path.write_text(json.dumps(edited))
    before = torch.get_num_threads()
    torch.set_num_threads(2)                       # the caller's count: not the run's
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = core.run_one(spec, progress=False)
    finally:
        torch.set_num_threads(before)
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(str(path) in m and "edited under its old key" in m for m in said), said      # named when read
    assert any(str(path) in m and f"kept as {path.name}.orig-1" in m for m in said), said    # and when kept
    assert json.loads(path.with_name(f"{path.name}.orig-1").read_text()) == edited
    assert json.loads(path.read_text())["config"] == spec.to_dict()
    assert rec["versions"]["machine"].endswith("torch threads 1"), rec["versions"]["machine"]


#: the layers below the front doors: they take a profile's sections (or plain arguments), never look one up
LOWER = ("backdrop_repro.data", "backdrop_repro.gp", "backdrop_repro.train", "backdrop_repro.masking",
         "backdrop_repro.models", "backdrop_repro.formulations")


def test_the_lower_layers_do_not_import_the_profiles():
    bad = {m: [f"line {n}: {i}" for n, i in _imports(p) if i == "backdrop_repro.profiles"]
           for m, p in MODULES.items() if any(m == x or m.startswith(x + ".") for x in LOWER)}
    assert len(bad) >= 10
    assert not {m: b for m, b in bad.items() if b}, bad


def test_operations_live_outside_the_science_package():
    """The GPU window (and its deadline pool) is a script in ``scripts/``: nothing in the package imports it."""
    assert not (PACKAGE / "gpu_window.py").exists() and (PACKAGE.parent / "scripts" / "gpu_window.py").exists()
    bad = {m: [i for _, i in _imports(p) if "gpu_window" in i] for m, p in MODULES.items()}
    assert not {m: b for m, b in bad.items() if b}


def test_the_small_shared_modules_are_leaves():
    """``checks``, ``seeds`` and ``machine`` (what ``_shared.py`` and ``paths.py`` mixed) import nothing from the
    package (``machine`` reads the package's version only), so any module can use them without a circle."""
    for leaf in ("checks", "seeds", "machine"):
        inside = [m for _, m in _imports(PACKAGE / f"{leaf}.py") if m.startswith("backdrop_repro")]
        assert set(inside) <= {"backdrop_repro"}, (leaf, inside)
