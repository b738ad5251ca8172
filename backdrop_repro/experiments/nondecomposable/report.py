"""Tables, selection and verdict of the non-decomposable experiment, through :mod:`backdrop_repro.report`.

The standard of evidence is the package's (:mod:`backdrop_repro.report`): every setting is
compared with full-batch training on the final **test** AUC, paired by seed (same split, same
initial network), with 95 % intervals and Holm's correction across all settings compared. The
"best minibatch" and "best backdrop" settings are chosen on the **validation** split (held out
from the training split), never on the test set, so the test comparison of a chosen setting is
not inflated by the choice.

Every function takes the dict of :func:`backdrop_repro.experiments.nondecomposable.run_experiment`
(or its JSON read back): ``result["runs"]`` is a list of per-seed records with ``method``,
``param``, ``label``, ``seed``, ``val_auc``, ``test_auc``, ``train_loss``, ``skipped``; the
set-up texts (:func:`setup_text`, :func:`banner_text`) take a config and the training-split size
counted on the data side (:func:`.data.n_train`; ``describe``/``banner`` of :mod:`.run` count and
call them). Nothing here loads data or trains.

Example
-------
>>> print(verdict(result))                   # doctest: +SKIP
Chosen on the validation split: `backdrop p=0.9` and `minibatch B=64`. ...
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ... import report

__all__ = ["setup_text", "banner_text", "select_best", "comparisons", "headline", "summary_table", "comparison_table",
           "verdict", "collect", "MARGIN_AUC"]

FULL = "full batch"
BASELINE = "full-batch training"
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


#: a batch holding at least this share of the training split is called "nearly full batch"
NEAR_FULL = 0.8


def _near_full(batch_sizes: Any, n: int) -> list[int]:
    return [int(b) for b in batch_sizes if int(b) >= NEAR_FULL * n]


def _pm(values: list[float], digits: int, fmt: str = "f") -> str:
    s = report.summary(values)
    return f"{s['mean']:.{digits}{fmt}}" + ("" if s["sd"] is None else f" ± {s['sd']:.{digits}{fmt}}")


def summary_table(result: dict[str, Any], digits: int = 3) -> str:
    """Markdown table, one row per setting: validation AUC and test AUC (mean ± SD over seeds, the
    spread of single runs; the paired comparisons are in :func:`comparison_table`),
    the training surrogate at the end, and the updates made (minibatch steps whose batch holds
    no positive-negative pair make none). ``*`` marks the settings chosen on validation.

    Example: ``summary_table(result).splitlines()[0].startswith("| setting |")``.
    """
    runs, steps = result["runs"], result["config"]["steps"]
    chosen = {select_best(runs, "backdrop"), select_best(runs, "minibatch")}
    n = len({r["seed"] for r in runs})
    header = ["setting", f"validation AUC (mean ± SD over {n} seeds)", "test AUC (mean ± SD)",
              "final training surrogate (mean ± SD)", f"updates made (of {steps} steps)"]
    rows = []
    for lab in _labels(runs):
        rs = [r for r in runs if r["label"] == lab]
        rows.append([lab + (" *" if lab in chosen else ""), _pm([r["val_auc"] for r in rs], digits),
                     _pm([r["test_auc"] for r in rs], digits), _pm([r["train_loss"] for r in rs], 1, "e"),
                     f"{steps - float(np.mean([r['skipped'] for r in rs])):.1f}".removesuffix(".0")])
    return report.markdown_table(header, rows)


def comparison_table(result: dict[str, Any], digits: int = 3, alpha: float = 0.05) -> str:
    """Markdown table of :func:`comparisons`: Δ test AUC against full batch with its 95 % CI, p,
    Holm-adjusted p and the decision. ``*`` marks the settings chosen on validation."""
    runs = result["runs"]
    chosen = {select_best(runs, "backdrop"), select_best(runs, "minibatch")}
    rows = [[c["name"] + (" *" if c["name"] in chosen else ""), c.get("n", 0),
             report.fmt_ci(c) if c.get("decision") else "—",
             report.fmt_p(c.get("p")), report.fmt_p(c.get("p_holm")),
             c["claim"]["status"] if c.get("claim") else "too few seeds"]
            for c in comparisons(result, alpha)]
    return report.markdown_table(["setting", "seeds", "Δ test AUC vs full batch (95 % CI)", "p",
                                  "Holm p", "claim"], rows)


def _verdict_parts(result: dict[str, Any], alpha: float) -> list[str]:
    h = headline(result, alpha)
    if FULL not in _labels(result["runs"]) or not h["backdrop"]:
        return ["Not enough settings to compare (need full batch and at least one backdrop setting)."]
    chosen = " and ".join(f"`{lab}`" for lab in (h["backdrop"], h["minibatch"]) if lab)
    parts = [f"Chosen on the validation split (highest mean validation AUC): {chosen}."]
    parts += [f"`{row['name']}` against {BASELINE}: {row['claim']['sentence']}." for row in h["vs_full"].values()
              if row.get("claim")]
    bm = h["backdrop_vs_minibatch"]
    if bm is not None and bm.get("claim"):
        parts.append(f"`{bm['name']}` against `{h['minibatch']}`: {bm['claim']['sentence']}.")
    return parts


def verdict(result: dict[str, Any], alpha: float = 0.05) -> str:
    """Plain-language verdict, worded by the numbers with :func:`backdrop_repro.report.sentence`:
    the validation-chosen backdrop and minibatch settings against full batch, then against each
    other, on the final test AUC."""
    return " ".join(_verdict_parts(result, alpha))


def banner_text(config: Any, n_train: int) -> str:
    """One line naming this experiment's own settings (for the header of an executed notebook copy):
    task, training-split size ``n_train`` (counted by :func:`.data.n_train`), steps, seeds, batch sizes
    and blocking probabilities of ``config`` (an ``NDConfig`` / ``NDSection``), never the GP sweep's.

    Example: ``banner_text(profiles.get("smoke").nondecomposable, 270)`` starts ``"digit 8 vs rest"``.
    """
    return (f"digit {config.positive_digit} vs rest on `load_digits`, {n_train} training samples, "
            f"{config.steps} steps, {len(config.seeds)} seeds; minibatch B ∈ {{{', '.join(map(str, config.batch_sizes))}}}, "
            f"backdrop p ∈ {{{', '.join(f'{p:g}' for p in config.mask_probs)}}}")


def setup_text(config: Any, n_train: int) -> str:
    """Markdown describing the set-up of ``config`` (an ``NDConfig``; for the notebook, every number from it
    and from ``n_train``, the training-split size counted by :func:`.data.n_train`).

    Example: ``"digit 8" in setup_text(profiles.get("smoke").nondecomposable, 270)``.
    """
    model = "a linear scorer" if config.hidden == 0 else f"an MLP 64 → {config.hidden} → 1 (ReLU)"
    n = n_train
    near = _near_full(config.batch_sizes, n)
    near_txt = (f" With {n} training samples, B = {', '.join(map(str, near))} is nearly full batch (each step sees "
                f"≥ {NEAR_FULL:.0%} of the split)." if near else "")
    return (f"Task: **digit {config.positive_digit} against the rest** of scikit-learn's `load_digits` "
            f"(≈ 10 % positives). Per seed, a stratified {config.train_fraction:.0%} of the images is the training "
            f"split, of which {config.val_fraction:.0%} is held out for **validation** ({n} samples are left to train on); "
            f"the rest is the **test** set. "
            f"Scorer: {model}, trained on the {config.surrogate} surrogate (τ = {config.tau:g}) with "
            f"{ {'adam': 'Adam', 'sgd': 'SGD'}[config.optimizer]} (lr {config.lr:g}) for {config.steps} steps, {len(config.seeds)} seeds. Settings: "
            f"full batch; minibatch B ∈ {list(config.batch_sizes)}; backdrop p ∈ {list(config.mask_probs)}. "
            f"A minibatch step whose batch holds no positive–negative pair makes no update (counted in the table).{near_txt}")
