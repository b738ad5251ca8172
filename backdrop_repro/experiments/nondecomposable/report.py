"""Selection and comparisons of the non-decomposable (AUC) experiment: numbers only.

Every setting is compared with full-batch training on the final **test** AUC, paired by seed (same split,
same initial network), with 95 % intervals and Holm's correction across all settings compared
(:func:`backdrop_repro.report.compare`, :func:`backdrop_repro.report.judge`). The "best minibatch" and "best
backdrop" settings are chosen on the **validation** split, never on the test set. Every function takes the dict of
:func:`backdrop_repro.experiments.nondecomposable.run_experiment` (or its JSON read back); nothing here loads
data or trains. The tables and set-up text a reader sees are rendered by :mod:`backdrop_repro.render`
(``nd_tables``, ``nd_setup``); the claims rows by :func:`backdrop_repro.tables.nondecomposable_rows`.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ... import profiles, report

__all__ = ["select_best", "comparisons", "headline", "collect", "MARGIN_AUC"]

FULL = "full batch"
#: margin of relevance of a change of test AUC: the package's one margin (:data:`report.MARGIN`), adopted for
#: AUC when the grammar was applied to this experiment, after its results were seen (a disclosed choice)
MARGIN_AUC = report.MARGIN


def _by_seed(runs: list[dict[str, Any]], label: str, key: str = "test_auc") -> dict[int, float]:
    return {int(r["seed"]): float(r[key]) for r in runs if r["label"] == label}


def _labels(runs: list[dict[str, Any]], method: Optional[str] = None) -> list[str]:
    """Setting labels in first-seen order (the run order is the table order)."""
    out: list[str] = []
    for r in runs:
        if (method is None or r["method"] == method) and r["label"] not in out:
            out.append(r["label"])
    return out


def select_best(runs: list[dict[str, Any]], method: str, key: str = "val_auc") -> Optional[str]:
    """Label of the ``method`` setting with the highest mean ``key`` over its seeds (validation
    AUC by default; the first one in run order on a tie), or None if ``method`` never ran.

    Example
    -------
    >>> runs = [{"method": "backdrop", "label": "a", "seed": 0, "val_auc": 0.9, "test_auc": 0.7},
    ...         {"method": "backdrop", "label": "b", "seed": 0, "val_auc": 0.8, "test_auc": 0.99}]
    >>> select_best(runs, "backdrop")
    'a'
    """
    best, best_val = None, -np.inf
    for lab in _labels(runs, method):
        v = float(np.mean([r[key] for r in runs if r["label"] == lab]))
        if v > best_val:
            best, best_val = lab, v
    return best


def comparisons(result: dict[str, Any], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Every setting against full batch on the final test AUC: :func:`backdrop_repro.report.compare`
    (paired by seed, 95 % intervals, Holm across all settings compared). One row per setting."""
    runs = result["runs"]
    full = _by_seed(runs, FULL)
    rows = report.compare(full, {lab: _by_seed(runs, lab) for lab in _labels(runs) if lab != FULL}, alpha)
    m = sum(r["decision"] is not None for r in rows)
    for r in rows:
        if r["decision"] is not None:
            r["claim"] = report.judge(r, m=max(1, m), p_adjusted=r["p_holm"], margin=MARGIN_AUC, alpha=alpha,
                                      family=f"every setting against full batch ({m})", fixed_in_advance=False,
                                      metric="test AUC")
            r["status"] = r["claim"]["status"]
    return rows


def headline(result: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """The validation-chosen settings and their test comparisons.

    Returns ``{"backdrop": label, "minibatch": label, "vs_full": {label: compare row},
    "backdrop_vs_minibatch": compare row or None}``. The rows against full batch are those of
    :func:`comparisons` (Holm across every setting); backdrop against minibatch is one more
    paired comparison of the two chosen settings (one test: the choice was made on validation).
    """
    runs = result["runs"]
    bd, mb = select_best(runs, "backdrop"), select_best(runs, "minibatch")
    rows = {c["name"]: c for c in comparisons(result, alpha)}
    out: dict[str, Any] = {"backdrop": bd, "minibatch": mb,
                           "vs_full": {lab: rows[lab] for lab in (bd, mb) if lab in rows},
                           "backdrop_vs_minibatch": None}
    if bd and mb:
        r = report.compare(_by_seed(runs, mb), {bd: _by_seed(runs, bd)}, alpha)[0]
        if r["decision"] is not None:
            r["claim"] = report.judge(r, m=1, p_adjusted=r["p"], margin=MARGIN_AUC, alpha=alpha,
                                      family=f"the two validation-chosen settings against each other",
                                      fixed_in_advance=False, metric="test AUC")
            r["status"] = r["claim"]["status"]
        out["backdrop_vs_minibatch"] = r
    return out


def collect(profile: "str | profiles.Profile", alpha: float = 0.05) -> dict[str, Any]:
    """Re-derive ``comparisons`` and ``headline`` of ``results/<profile>/nondecomposable.json`` from its
    runs (which stay as they are) and rewrite the JSON atomically (the CSV, one row per run, does not
    change). Trains nothing. Returns the result."""
    import json

    from ... import paths, profiles

    p = profiles.get(profile)
    path = paths.results_dir(p) / "nondecomposable.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `backdrop-repro nondecomposable --profile {p.name}` first")
    result = json.loads(path.read_text())      # validated by the caller (cli: run.read_results, before this)
    result["comparisons"] = comparisons(result, alpha)
    result["headline"] = headline(result, alpha)
    paths.write_json(path, result)
    return result
