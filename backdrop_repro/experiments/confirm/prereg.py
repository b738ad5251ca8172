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


def render(profile: "str | profiles.Profile", power: Optional[dict[str, Any]] = None) -> str:
    """The pre-registration's text: the design in words, then ``{"design", "power"}`` as a json block."""
    import json

    p = profiles.get(profile)
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
