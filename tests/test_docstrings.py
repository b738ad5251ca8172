"""The docstring examples of every module run, and pass, in ``make test``."""
import doctest
import importlib
import pkgutil

import pytest

import backdrop_repro

MODULES = sorted(m.name for m in pkgutil.walk_packages(backdrop_repro.__path__, "backdrop_repro.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert res.failed == 0, f"{name}: {res.failed} of {res.attempted} docstring examples failed"


def test_the_examples_are_many():
    finder = doctest.DocTestFinder()
    n = sum(len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name)))
    assert n >= 50
