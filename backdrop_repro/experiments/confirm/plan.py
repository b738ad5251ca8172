"""The confirmatory study's design, its pre-registration, and its runs.

The design is the profile's :class:`~backdrop_repro.profiles.ConfirmSection` (tasks, arms, seeds,
decision rule) plus its ``learnability`` section (network, data sizes and seeds, convergence
budget). :func:`design` writes it as one JSON-able dict; the pre-registration file
(``results/<profile>/preregistration.md``) holds that dict in a fenced ``json`` block beside the
prose, and is committed before the first run. :func:`check_preregistration` refuses to train or to
report when the file is missing or its block differs from the profile's design (a changed design is
a new study), and every record carries the file's SHA-256 (:func:`preregistration_hash`), so the
report can refuse records made under another version of the file.

Runs: per task, every arm at every seed (:class:`ConfirmSpec`, a
:class:`~backdrop_repro.experiments.learnability.plan.LearnSpec` with the learnability study's
keys, records in ``results/<profile>/runs/<key>.json``). Each seed has its own training and
validation sets; the test set (its own seed) is shared by all runs of a task.

Example
-------
>>> specs = plan_runs("confirm")
>>> len(specs), sorted({s.task for s in specs})          # (45 + 93 seeds) x 3 arms
(414, ['small-edge', 'two-scale'])
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from ... import paths, profiles
from ...train import TrainConfig
from ..learnability.plan import LearnSpec

__all__ = ["ConfirmSpec", "section", "design", "plan_runs", "records_dir", "preregistration_path",
           "preregistration_hash", "read_preregistration", "check_preregistration", "PreregistrationError", "SCALE"]

#: the learnability plan's scale name of a confirm task (by its number of GP scales)
SCALE = {1: "small", 2: "two-scale"}


class PreregistrationError(ValueError):
    """The pre-registration file is missing, unreadable or disagrees with the profile's design."""


def section(profile: "str | profiles.Profile") -> profiles.ConfirmSection:
    """The profile's :class:`~backdrop_repro.profiles.ConfirmSection` (``ValueError`` naming the profiles that have one)."""
    p = profiles.get(profile)
    if p.confirm is None or p.learnability is None:
        have = [n for n in profiles.names() if profiles.get(n).confirm is not None]
        raise ValueError(f"profile {p.name!r} has no confirm section; use one of {have}")
    return p.confirm


@dataclass(frozen=True)
class ConfirmSpec(LearnSpec):
    """One run of the study: a :class:`LearnSpec` (same key: model, masks, data, budget) of ``task``,
    recorded under ``results/<profile>/runs/`` with the pre-registration's hash ``prereg``."""

    task: str = ""
    prereg: str = ""
    rule: str = ""

    @property
    def label(self) -> str:
        """The learnability label, ``(patience-only)`` appended under that rule (``none (patience-only)``)."""
        base = super().label or "none"
        return f"{base} ({self.rule})" if self.rule else base

    def train_config(self, device: str = "cpu") -> TrainConfig:
        """The learnability budget; under the ``patience-only`` rule without the loss target."""
        cfg = super().train_config(device)
        return replace(cfg, loss_target=None) if self.rule == "patience-only" else cfg

    @property
    def record_path(self) -> Path:
        return records_dir(self.profile) / f"{self.key}.json"

    def record_extra(self) -> dict[str, Any]:
        return {**super().record_extra(), "study": self.profile.name, "task": self.task,
                "preregistration": {"file": str(preregistration_rel(self.profile)), "sha256": self.prereg}}


def records_dir(profile: "str | profiles.Profile") -> Path:
    """``results/<profile>/runs``: one JSON record per run."""
    return paths.results_dir(profiles.get(profile)) / "runs"


def preregistration_rel(profile: "str | profiles.Profile") -> Path:
    p = profiles.get(profile)
    return Path("results") / p.name / section(p).preregistration


def preregistration_path(profile: "str | profiles.Profile") -> Path:
    """Where the profile's pre-registration file lives (under the output root)."""
    return paths.output_root() / preregistration_rel(profile)


def design(profile: "str | profiles.Profile") -> dict[str, Any]:
    """Everything the pre-registration fixes, from the profile: tasks, arms, seeds, data, network,
    budget, endpoints, family, decision rule and the rule for unfinished runs."""
    p = profiles.get(profile)
    c, s = section(p), p.learnability
    d = s.data
    arms = [{"config": a[0], "fine_prob": a[1], "coarse_prob": a[2], **({"rule": a[3]} if len(a) > 3 else {})}
            for a in c.arms]
    tasks = [{"name": t.name, "lengths": [list(ls) for ls in t.lengths], "power": list(t.power),
              "per_class": t.per_class, "seeds": list(t.seeds), "mde_target": t.mde_target} for t in c.tasks]
    family = [f"{t.name}: {a} vs {b}" for t in c.tasks for a, b in c.family()]
    budget_rule = ("stop when the eval-mode training loss is below loss_target or validation accuracy "
                   "(ties broken by the lower validation loss) has not improved for patience_epochs; "
                   "test accuracy is read at the validation-selected epoch")
    if any(len(a) > 3 for a in c.arms):
        budget_rule += ("; an arm under the patience-only rule has no loss target: it stops only when validation "
                        "accuracy has not improved for patience_epochs, or at the cap")
    return {
        "profile": p.name,
        "tasks": tasks,
        "arms": arms,
        "data": {"size": d.size, "method": d.method, "val_per_class": d.val_per_class,
                 "test_per_class": d.test_per_class, "train_seed_base": d.train_seed, "val_seed_base": d.val_seed,
                 "test_seed": d.test_seed, "per_seed_data": d.per_seed_data,
                 "rule": "training and validation sets of run seed s drawn from <base> + 100000 * (s + 1); "
                         "one test set per task from test_seed"},
        "network": {"width": s.width, "n_fine": s.n_fine, "n_coarse": s.n_coarse, "kernel": 2, "init": "he",
                    "formulation": "conv", "batch_size": s.batch_size, "optimizer": s.optimizer, "lr": s.lr},
        "budget": {"cap_epochs": s.epochs, "loss_target": s.loss_target, "patience_epochs": s.patience,
                   "eval_every": s.eval_every, "select": s.select, "rule": budget_rule},
        "endpoints": {
            "primary": "test accuracy on the task's classes (per seed, at the validation-selected epoch)",
            "secondary": ["test accuracy per scale on the replication task (small, large), paired like the primary",
                          "epochs trained per arm (stop epoch and validation-selected epoch: median and range), "
                          "reported beside every comparison"] if c.comparisons is not None else ["test accuracy per scale (small; large on the two-scale task)",
                          f"share of seeds whose small-scale test accuracy is >= {c.learn_threshold:g}, "
                          "paired by seed, exact McNemar test (descriptive, not in the family)"]},
        "family": family,
        "correction": "holm",
        "alpha": c.alpha,
        "margin": c.margin,
        "decision_rule": DECISION_RULE if c.comparisons is not None else
                         "the package's claim grammar (backdrop_repro.report) applied to each paired difference "
                         "(arm - none, per seed; paired t-test, 95 % t-interval) with its Holm-adjusted p over the "
                         "family. In words: unfinished -> no claim; Holm p < alpha and mean > 0 -> better, and "
                         "'better beyond the margin' only if the 95 % interval's lower end exceeds the margin, else "
                         "'significant but below/not shown beyond the margin'; Holm p < alpha and mean < 0 -> worse; "
                         "otherwise 'not confirmed' when the interval's upper end is below the margin (gains of the "
                         "margin excluded) and 'inconclusive' when it reaches the margin",
        "unfinished_rule": f"an arm with more than {c.max_capped:.0%} of a task's runs at the cap or failed is "
                           "unfinished: its comparison carries no claim; failed runs drop their seed from the pair",
        "learn_threshold": c.learn_threshold,
    }


#: the decision rule of a study whose family names its comparisons (the claim grammar's statuses, stated whole)
DECISION_RULE = (
    "the package's claim grammar (docs/claims.md as committed with this file) applied to each paired difference "
    "(arm - baseline, per seed; two-sided paired t-test, 95 % t-interval) with its Holm-adjusted p over the family: "
    "an arm with more than the unfinished limit of a task's runs at the cap or failed -> 'unfinished' (no claim); "
    "Holm p < alpha and mean > 0 -> 'relevant gain' when the one-sided margin test (gain > margin, Bonferroni over "
    "the family) rejects at alpha, else 'significant gain'; Holm p < alpha and mean < 0 -> 'contradicted'; "
    "otherwise 'equivalent' when TOST against +-margin rejects at alpha / 2; 'not confirmed' when the 95 % "
    "interval's upper end is below +margin and the MDE is at most the margin; else 'inconclusive'")


def _block(text: str, path: Path) -> dict[str, Any]:
    m = re.search(r"```json\n(.*?)\n```", text, re.S)
    if not m:
        raise PreregistrationError(f"{path}: no ```json block (the machine-readable design); restore the committed file")
    try:
        return json.loads(m.group(1))
    except ValueError as err:
        raise PreregistrationError(f"{path}: its json block does not parse ({err}); restore the committed file") from None


def read_preregistration(profile: "str | profiles.Profile") -> dict[str, Any]:
    """``{"path", "sha256", "block"}`` of the profile's pre-registration file (:class:`PreregistrationError` if absent)."""
    path = preregistration_path(profile)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PreregistrationError(f"{path}: no pre-registration; write and commit it first "
                                   "(backdrop-repro confirm --write-preregistration)") from None
    return {"path": path, "sha256": hashlib.sha256(raw).hexdigest(),
            "block": _block(raw.decode("utf-8", errors="replace"), path)}


def preregistration_hash(profile: "str | profiles.Profile") -> str:
    """SHA-256 of the pre-registration file (the one every record of the study carries)."""
    return read_preregistration(profile)["sha256"]


def check_preregistration(profile: "str | profiles.Profile") -> dict[str, Any]:
    """:func:`read_preregistration`, after checking that its design block equals :func:`design`."""
    pre = read_preregistration(profile)
    want = design(profile)
    got = pre["block"].get("design")
    if got != want:
        diff = sorted(k for k in set(want) | set(got or {}) if (got or {}).get(k) != want.get(k))
        raise PreregistrationError(f"{pre['path']}: its design differs from profile {profiles.get(profile).name!r} "
                                   f"in {diff}; a changed design is a new study (new profile, new file)")
    return pre


def plan_runs(profile: "str | profiles.Profile", prereg: Optional[str] = None) -> list[ConfirmSpec]:
    """Every run of the study, task by task (in the profile's order), seed-major, arms in order."""
    p = profiles.get(profile)
    c = section(p)
    out = []
    for t in c.tasks:
        for seed in t.seeds:
            for config, fine, coarse, *rule in c.arms:
                out.append(ConfirmSpec(p, SCALE[len(t.lengths)], t.lengths, t.power, t.per_class, "cnn", seed,
                                       config, float(fine), float(coarse), "confirm", task=t.name,
                                       prereg=prereg or "", rule=rule[0] if rule else ""))
    return out
