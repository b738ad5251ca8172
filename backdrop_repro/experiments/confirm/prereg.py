"""Writing the pre-registration file of a confirmatory study (once, before its first run).

:func:`power_inputs` reads the exploratory record the seeds were sized from (the learnability
study's edge and two-scale comparisons) and states, per comparison of the family, the paired SD
there and the minimum detectable effect (80 % power, two-sided paired t-test at ``alpha / m``, the
first step of Holm over the ``m`` comparisons) at the pre-registered number of seeds.
:func:`render` writes the prose and the machine-readable block; :func:`write` refuses to replace
an existing file (a pre-registration is never edited; deviations are stated by the report).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ... import paths, profiles
from ...report import mde
from .plan import PreregistrationError, design, preregistration_path, section

__all__ = ["power_inputs", "render", "write"]

#: the exploratory cells the seeds were sized from: confirm task -> (learnability cell scale, ratio, per_class)
SOURCE_CELLS = {"small-edge": ("small", [1.2105], 25), "two-scale": ("two-scale", [1.2105, 1.2], 100)}
SOURCE_LABELS = {"fine": "fine 0.3", "demo": "demo: fine 0.3 + coarse 0.95"}


def power_inputs(profile: "str | profiles.Profile", source: str = "learnability") -> dict[str, Any]:
    """Per task and arm: the paired SD of (arm - none) test accuracy in the ``source`` profile's
    learnability records (None where absent), the SD the seeds were sized with (the larger of the
    task's arms), and the MDE at the task's seeds, Holm over the family."""
    import json

    p = profiles.get(profile)
    c = section(p)
    m = len(c.tasks) * (len(c.arms) - 1)
    acc: dict[tuple, dict[int, float]] = {}
    folder = paths.output_root() / "results" / source / "learnability"
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        rec = json.loads(f.read_text())
        if rec["config"].get("model") != "cnn" or rec["final"].get("failed"):
            continue
        cell = rec["cell"]
        acc.setdefault((cell["scale"], tuple(cell["ratio"]), cell["per_class"], rec["label"]), {})[
            rec["config"]["seed"]] = rec["final"]["test_accuracy"]
    out: dict[str, Any] = {"source": f"results/{source}/learnability", "m": m, "alpha": c.alpha, "power": 0.8,
                           "tasks": {}}
    for t in c.tasks:
        scale, ratio, n = SOURCE_CELLS.get(t.name, (None, None, None))
        base = acc.get((scale, tuple(ratio or ()), n, "none"), {})
        arms: dict[str, Any] = {}
        for config, *_ in c.arms[1:]:
            cand = acc.get((scale, tuple(ratio or ()), n, SOURCE_LABELS.get(config, config)), {})
            seeds = sorted(set(base) & set(cand))
            d = np.array([cand[s] - base[s] for s in seeds])
            arms[config] = {"seeds": len(seeds), "mean": float(d.mean()) if len(d) else None,
                            "sd": float(d.std(ddof=1)) if len(d) > 1 else None}
        sds = [a["sd"] for a in arms.values() if a["sd"] is not None]
        sd = max(sds) if sds else None
        out["tasks"][t.name] = {"arms": arms, "sd_used": sd, "seeds": len(t.seeds), "mde_target": t.mde_target,
                                "mde_at_seeds": mde(sd, len(t.seeds), m=m, alpha=c.alpha) if sd else None}
    return out


#: committed paired differences a study's seeds are sized from: task -> (label, records folder, how to read a
#: record: task/config/seed/per_class filters); the larger SD per task is used
COMMITTED_SOURCES = {
    "replication": [("replication: demo vs none (30 seeds, 25 per class)", "results/replication/gp_runs", "demo"),
                    ("replication: fine 0.9 + coarse 0.95 vs none (30 seeds, 25 per class)",
                     "results/replication/gp_runs", "both")],
    "small-edge": [("confirm small-edge: demo vs none (45 seeds)", "results/confirm/runs", "demo"),
                   ("confirm small-edge: fine vs none (45 seeds)", "results/confirm/runs", "fine")],
}


def _committed_accuracy(folder: str, task: str) -> dict[str, dict[int, float]]:
    """``{config: {seed: test accuracy}}`` of the committed records in ``folder`` (the replication's grid at 25
    per class, or a confirm study's runs of ``task``)."""
    import json

    out: dict[str, dict[int, float]] = {}
    for f in sorted((paths.output_root() / folder).glob("*.json")):
        rec = json.loads(f.read_text())
        cfg, fin = rec["config"], rec["final"]
        if fin.get("failed"):
            continue
        if "gp_runs" in folder:
            if cfg["data"]["train"]["per_class"] != 25:
                continue
        elif rec.get("task") != task:
            continue
        out.setdefault(cfg["config"], {})[cfg["seed"]] = float(fin["test_accuracy"])
    return out


def power_committed(profile: "str | profiles.Profile") -> dict[str, Any]:
    """Per task: the paired SD of each committed comparison in :data:`COMMITTED_SOURCES`, the SD the seeds are
    sized with (the larger), the seeds needed for the task's MDE target (80 % power, two-sided paired t-test at
    ``alpha / m``, the first step of Holm over the family of ``m``) and the MDE at the task's seeds."""
    p = profiles.get(profile)
    c = section(p)
    m = len(c.tasks) * len(c.family())
    out: dict[str, Any] = {"source": "committed paired differences (see each task)", "m": m, "alpha": c.alpha,
                           "power": 0.8, "tasks": {}}
    for t in c.tasks:
        srcs = []
        for label, folder, config in COMMITTED_SOURCES.get(t.name, []):
            acc = _committed_accuracy(folder, t.name)
            base, cand = acc.get("none", {}), acc.get(config, {})
            seeds = sorted(set(base) & set(cand))
            if len(seeds) < 2:
                continue
            d = np.array([cand[k] - base[k] for k in seeds])
            srcs.append({"label": label, "folder": folder, "seeds": len(seeds), "mean": float(d.mean()),
                         "sd": float(d.std(ddof=1))})
        if not srcs:
            raise PreregistrationError(f"task {t.name!r}: no committed paired differences to size its seeds from "
                                       f"(looked in {[f for _, f, _ in COMMITTED_SOURCES.get(t.name, [])]})")
        sd = max(x["sd"] for x in srcs)
        need = 2
        while (mde(sd, need, m=m, alpha=c.alpha) or 1.0) > t.mde_target:
            need += 1
        out["tasks"][t.name] = {"sources": srcs, "sd_used": sd, "seeds_needed": need, "seeds": len(t.seeds),
                                "mde_target": t.mde_target, "mde_at_seeds": mde(sd, len(t.seeds), m=m, alpha=c.alpha)}
    return out


def _render_family(p: profiles.Profile, power: dict[str, Any]) -> str:
    """The pre-registration of a study whose family names its comparisons (profile ``attribute``)."""
    import json

    c = section(p)
    dz = design(p)
    t_lines = []
    for t in dz["tasks"]:
        pw = power["tasks"][t["name"]]
        srcs = "; ".join(f"{x['label']}: paired SD {x['sd']:.4f} (mean {x['mean']:+.4f})" for x in pw["sources"])
        t_lines.append(
            f"- **{t['name']}**: classes {' x '.join(' vs '.join(f'{v:g} px' for v in ls) for ls in t['lengths'])}"
            f" (weights {', '.join(f'{w:g}' for w in t['power'])}), {t['per_class']} training images per class; run "
            f"seeds {t['seeds'][0]}-{t['seeds'][-1]} ({len(t['seeds'])}). Sized for an MDE <= {t['mde_target']:g} "
            f"from the committed paired SDs ({srcs}): the larger, {pw['sd_used']:.4f}, needs "
            f"{pw['seeds_needed']} seeds; MDE at {len(t['seeds'])} seeds {pw['mde_at_seeds']:.4f}.")
    arms = "; ".join(f"`{a['config']}` (fine {a['fine_prob']:g}, coarse {a['coarse_prob']:g}"
                     f"{', ' + a['rule'] if a.get('rule') else ', the package rule'})" for a in dz["arms"])
    d, b, n = dz["data"], dz["budget"], dz["network"]
    what = {("demo", "none-long"): "Does the authors' combined setting beat equally long training without backdrop?",
            ("coarse", "none-long"): "Does the coarse mask alone beat equally long training without backdrop?",
            ("demo", "coarse"): "Does the fine mask add anything to the coarse one?",
            ("none-long", "none"): "Does longer training alone (no loss target) gain?"}
    q_lines = [f"- `{a}` vs `{b_}`: {what.get((a, b_), '')}" for a, b_ in c.family()]
    return f"""# Pre-registration: confirmatory study `{p.name}`

Written and committed before the first run of this study. The runs, the report and every record
check against this file: each record carries its SHA-256, the report refuses records with another
hash, and any deviation from what is written here is stated in the report, never made by editing
this file. The machine-readable block at the end is the design; `backdrop-repro confirm --profile
{p.name}` refuses to train or report when it differs from the profile `{p.name}`.

## Question
{c.question}

Per task, four questions, one comparison each (arm vs baseline, paired by seed):
{chr(10).join(q_lines)}

## Tasks and arms
{chr(10).join(t_lines)}
- Arms, every one on every seed of both tasks (the authors' mask settings; none chosen on a result): {arms}.
  Every arm but `none` trains under the patience-only rule, so training length no longer follows how
  fast the training loss falls; `none` keeps the package's rule so that the last comparison measures
  what that rule costs.
- Data: {d['size']}² `{d['method']}` fields; {d['rule']} (bases {d['train_seed_base']}, {d['val_seed_base']}),
  {d['val_per_class']} validation images per class; test set {d['test_per_class']} images per class, seed
  {d['test_seed']}, never scored before. No committed record has used these run seeds, nor these data seeds
  (training, validation, test): the report checks both.
- Network: the learnability and confirm studies' width-{n['width']} CNN ({n['n_fine']} stride-2 layers after the
  stem before the fine mask, {n['n_coarse']} more before the coarse mask, k2 convolutions, He init), batch
  {n['batch_size']}, {n['optimizer']} at lr {n['lr']:g}, formulation `conv`; on the replication task it is the
  replication's network (the masks after 8 px and 64 px cells).
- Budget: {b['rule']}; loss target {b['loss_target']:g} (arm `none` only), patience {b['patience_epochs']} epochs
  (evaluated every {b['eval_every']}), cap {b['cap_epochs']} epochs for every run of every arm.
- Runs: seed-major, every seed's arms on one CPU type; each record names its CPU.

## Endpoints, family, decision
- Primary: {dz['endpoints']['primary']}.
- Secondary: {'; '.join(dz['endpoints']['secondary'])}.
- Family: {len(dz['family'])} comparisons ({'; '.join(dz['family'])}), Holm at alpha {dz['alpha']:g}.
- Decision: {dz['decision_rule']}; relevance margin ±{dz['margin']:g} test accuracy.
- Unfinished runs: {dz['unfinished_rule']}.
- In words: a question is answered *yes* by 'relevant gain' or 'significant gain' (the latter: real,
  not shown to clear the margin), *no* by 'equivalent' or 'not confirmed', *the opposite* by
  'contradicted'; 'inconclusive' and 'unfinished' answer nothing. No outcome is read before every
  planned run has its record.
- Power: per task above (noncentral t, two-sided, alpha / {power['m']}, the first step of Holm; the SDs
  come from other comparisons than these, so the realised MDE is reported beside each answer).

## Machine-readable design
```json
{json.dumps({"design": dz, "power": power}, indent=1)}
```
"""


def render(profile: "str | profiles.Profile", power: Optional[dict[str, Any]] = None) -> str:
    """The pre-registration's text: the design in words, then ``{"design", "power"}`` as a json block."""
    import json

    p = profiles.get(profile)
    if section(p).comparisons is not None:
        return _render_family(p, power_committed(p) if power is None else power)
    dz = design(p)
    power = power_inputs(p) if power is None else power
    t_lines = []
    for t in dz["tasks"]:
        pw = power["tasks"].get(t["name"], {})
        md = pw.get("mde_at_seeds")
        sd = pw.get("sd_used")
        t_lines.append(
            f"- **{t['name']}**: classes {' x '.join(' vs '.join(f'{v:g} px' for v in ls) for ls in t['lengths'])}"
            f" (weights {', '.join(f'{w:g}' for w in t['power'])}), {t['per_class']} training images per class; seeds "
            f"{t['seeds'][0]}-{t['seeds'][-1]} ({len(t['seeds'])}); sized for an MDE <= {t['mde_target']:g}: "
            f"paired SD {sd:.3f} (the larger arm in {power['source']}) gives MDE {md:.4f} at 80 % power"
            if md is not None and sd is not None else f"- **{t['name']}**: no power input found")
    arms = ", ".join(a["config"] if a["config"] == "none" else
                     f"{a['config']} (fine {a['fine_prob']:g}, coarse {a['coarse_prob']:g})" for a in dz["arms"])
    d, b = dz["data"], dz["budget"]
    text = f"""# Pre-registration: confirmatory study `{p.name}`

Written and committed before the first run of this study. The runs, the report and every record
check against this file: each record carries its SHA-256, the report refuses records with another
hash, and any deviation from what is written here is stated in the report, never made by editing
this file. The machine-readable block at the end is the design; `backdrop_repro.experiments.confirm`
refuses to train or report when it differs from the profile `{p.name}`.

## Question
Does a fine backdrop mask help the 2-scale CNN learn small features, where it learns them only
partly (the fine-mask half of the paper's claim)? The learnability study (exploratory) found two such
tasks; this study tests them with fresh seeds, fresh data and power fixed in advance.

## Tasks and arms
{chr(10).join(t_lines)}
- Arms (all the authors' settings, none chosen on a result): {arms}.
- Data: {d['size']}² `{d['method']}` fields; each run seed its own training set and its own validation set
  ({d['val_per_class']} per class), {d['rule']} (bases {d['train_seed_base']}, {d['val_seed_base']});
  test set {d['test_per_class']} images per class, seed {d['test_seed']}. No committed record has used these
  run seeds or data seeds (the report checks it).
- Network: the learnability study's width-{dz['network']['width']} CNN ({dz['network']['n_fine']} stride-2 layers
  after the stem before the fine mask, {dz['network']['n_coarse']} more before the coarse mask, k2 convolutions,
  He init), batch {dz['network']['batch_size']}, {dz['network']['optimizer']} at lr {dz['network']['lr']:g},
  formulation `conv` (NHWC): of the formulations that compute the same network, it is the fastest at this
  width (one-thread training step, this machine: s2d 0.85x, blocked 0.5-0.6x of its speed), so the speed-up
  available for free here is none.
- Budget: {b['rule']}; loss target {b['loss_target']:g}, patience {b['patience_epochs']} epochs (evaluated every
  {b['eval_every']}), cap {b['cap_epochs']} epochs for every run of every arm.

## Endpoints, family, decision
- Primary: {dz['endpoints']['primary']}.
- Secondary: {'; '.join(dz['endpoints']['secondary'])}.
- Family: {len(dz['family'])} comparisons ({'; '.join(dz['family'])}), Holm at alpha {dz['alpha']:g}.
- Decision: {dz['decision_rule']}; relevance margin ±{dz['margin']:g}.
- Unfinished runs: {dz['unfinished_rule']}.
- Power: per task above (noncentral t, two-sided, alpha / {power['m']}, the first step of Holm; the SDs are
  estimates from 10 exploratory seeds, so the realised MDE is reported beside each answer).

## Machine-readable design
```json
{json.dumps({"design": dz, "power": power}, indent=1)}
```
"""
    return text


def write(profile: "str | profiles.Profile", overwrite: bool = False) -> dict[str, Any]:
    """Write the pre-registration file (refused if it exists, unless ``overwrite`` before any record)."""
    path = preregistration_path(profile)
    if path.exists() and not overwrite:
        raise PreregistrationError(f"{path} exists: a pre-registration is never rewritten; state deviations in the report")
    paths.write_text(path, render(profile))
    from .plan import check_preregistration

    return check_preregistration(profile)
