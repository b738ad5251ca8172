"""The GP sweep: 2-scale CNNs with and without backdrop on the multi-scale GP classes.

Configurations: ``none`` (no backdrop), ``fine`` (fine mask only), ``coarse`` (coarse mask
only) and ``both``, each at the profile's mask probabilities (``none`` once), times seeds.
Every run is independent and keyed by a hash of its configuration, so a run already done is
skipped (idempotent) and runs can be spread over processes or machines; the sweep table is
rebuilt from the per-run files each time::

    # 4 processes on one machine (or one shard per machine sharing results/ and the data cache)
    for i in 0 1 2 3; do backdrop-repro sweep --profile quick --shard $i/4 & done; wait
    backdrop-repro sweep --profile quick          # all runs done: only rewrites the tables

Profiles (``smoke`` / ``quick`` / ``paper``) set the image size, width, data sizes, epochs,
seeds and mask probabilities; the paper's correlation lengths, classes and powers are kept at
``quick`` and ``paper`` (``smoke`` uses the tiny :data:`backdrop_repro.datasets.SMOKE` lengths).
The seed of a run fixes the initialisation, the data order and the masks; the same seed gives
every configuration the same initial network and data order, so configurations are compared
seed by seed (paired differences).

Outputs: ``results/<profile>/gp_sweep.json`` and ``gp_sweep.csv`` (one row per run), per-run
files in ``results/<profile>/gp_runs/<key>.json``; checkpoints (not committed) in
``<data cache>/checkpoints/gp_sweep/<profile>/<key>.pt``.

Example
-------
>>> sweep = run_sweep("smoke", progress=False)          # doctest: +SKIP
>>> [row["config"] for row in sweep["summary"]]         # doctest: +SKIP
['none', 'fine', 'coarse', 'both']
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io as _io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from . import paths, profiles
from .models import TwoScaleCNN
from .train import TrainConfig, train

__all__ = ["SweepProfile", "RunSpec", "PROFILES", "CONFIGS", "get_profile", "plan_runs", "run_one",
           "run_sweep", "load_sweep", "summarize", "verdict", "build_model", "load_data",
           "oracle_reference", "load_model", "results_table", "add_cli"]

CONFIGS = ("none", "fine", "coarse", "both")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SweepProfile:
    """Everything a profile fixes. ``fine_probs``/``coarse_probs`` are the mask-probability
    levels (``both`` pairs level i of each); ``n_fine``/``n_coarse`` = None places the masks
    by receptive field (:meth:`TwoScaleCNN.for_scales`)."""

    name: str
    size: int
    per_class: int
    test_per_class: int
    width: int
    epochs: int
    batch_size: int
    lr: float
    eval_every: int
    seeds: tuple[int, ...]
    fine_probs: tuple[float, ...]
    coarse_probs: tuple[float, ...]
    method: Optional[str] = None          # None: the datasets recipe's method
    train_seed: int = 1806
    test_seed: int = 2018
    kernel: int = 2
    n_fine: Optional[int] = None
    n_coarse: Optional[int] = None
    optimizer: str = "adam"
    weight_decay: float = 0.0
    init: str = "he"
    device: str = "auto"
    threads: Optional[int] = None        # torch CPU threads during the sweep (None: unchanged)

    def recipes(self):
        """``(train_recipe, test_recipe)``: the profile's datasets recipe at this size/seeds."""
        from . import datasets

        base = datasets.RECIPES[self.name]
        kw = {"size": self.size} | ({"method": self.method} if self.method else {})
        return (base.replace(per_class=self.per_class, seed=self.train_seed, **kw),
                base.replace(per_class=self.test_per_class, seed=self.test_seed, **kw))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROFILES: dict[str, SweepProfile] = {
    # seconds: tiny images and lengths, 2 seeds, one probability level (tests, CI notebook)
    "smoke": SweepProfile(name="smoke", size=64, per_class=8, test_per_class=16, width=8, epochs=8,
                          batch_size=4, lr=1e-2, eval_every=1, seeds=(0, 1), fine_probs=(0.5,),
                          coarse_probs=(0.75,), n_fine=1, n_coarse=2, threads=1),
    # <= 10 min on 2 CPU cores: 256^2, the paper's lengths/classes/powers and 25 per class
    "quick": SweepProfile(name="quick", size=256, per_class=25, test_per_class=100, width=16, epochs=30,
                          batch_size=8, lr=1e-3, eval_every=5, seeds=(0, 1, 2, 3, 4),
                          fine_probs=(0.3, 0.6, 0.9), coarse_probs=(0.25, 0.5, 0.75)),
    # the paper's scale, for a GPU: 1024^2, width 64 (the authors' demo network), 5 seeds
    "paper": SweepProfile(name="paper", size=1024, per_class=25, test_per_class=100, width=64, epochs=100,
                          batch_size=4, lr=1e-3, eval_every=5, seeds=(0, 1, 2, 3, 4),
                          fine_probs=(0.3, 0.6, 0.9), coarse_probs=(0.5, 0.75, 0.95)),
}


def get_profile(profile: str | SweepProfile) -> SweepProfile:
    """The :class:`SweepProfile` named ``profile`` (``smoke``, ``quick`` or ``paper``)."""
    if isinstance(profile, SweepProfile):
        return profile
    paths.check_profile(profile)
    return PROFILES[profile]


@dataclass(frozen=True)
class RunSpec:
    """One training run: profile, configuration name, mask probabilities, seed."""

    profile: SweepProfile
    config: str
    fine_prob: float
    coarse_prob: float
    seed: int
    level: int = 0

    def to_dict(self) -> dict[str, Any]:
        p = self.profile
        train_r, test_r = p.recipes()
        return {
            "schema": SCHEMA_VERSION, "profile": p.name, "config": self.config, "level": self.level,
            "fine_prob": self.fine_prob, "coarse_prob": self.coarse_prob, "seed": self.seed,
            "model": {"width": p.width, "kernel": p.kernel, "n_fine": p.n_fine, "n_coarse": p.n_coarse,
                      "size": p.size, "init": p.init},
            "train": {k: v for k, v in self.train_config().to_dict().items() if k != "device"},
            "data": {"train": train_r.to_dict(), "test": test_r.to_dict()},
        }

    @property
    def key(self) -> str:
        """12-hex-digit hash of :meth:`to_dict` (the run's identity; device excluded)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def train_config(self, device: str = "cpu") -> TrainConfig:
        p = self.profile
        return TrainConfig(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, optimizer=p.optimizer,
                           weight_decay=p.weight_decay, seed=self.seed, eval_every=p.eval_every,
                           device=device)


def plan_runs(profile: str | SweepProfile, configs: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None) -> list[RunSpec]:
    """All runs of a sweep, in a fixed order (configs x levels x seeds).

    Example: ``len(plan_runs("quick")) == (1 + 3 * 3) * 3``.
    """
    p = get_profile(profile)
    configs = list(CONFIGS if configs is None else configs)
    bad = [c for c in configs if c not in CONFIGS]
    if bad or not configs:
        raise ValueError(f"configs must be a non-empty subset of {CONFIGS}, got {configs!r}")
    seeds = list(p.seeds if seeds is None else seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-empty non-negative ints, got {seeds!r}")
    if len(p.fine_probs) != len(p.coarse_probs):
        raise ValueError("fine_probs and coarse_probs must have the same number of levels")
    runs = []
    for c in CONFIGS:
        if c not in configs:
            continue
        levels = [(0, 0.0, 0.0)] if c == "none" else [
            (i, fp if c in ("fine", "both") else 0.0, cp if c in ("coarse", "both") else 0.0)
            for i, (fp, cp) in enumerate(zip(p.fine_probs, p.coarse_probs))]
        for level, fp, cp in levels:
            for s in seeds:
                runs.append(RunSpec(p, c, float(fp), float(cp), int(s), level))
    return runs


def build_model(spec: RunSpec) -> TwoScaleCNN:
    """The run's network: initialised from ``seed``, masks drawn from ``Generator(seed + 10**6)``."""
    p = spec.profile
    gen = torch.Generator().manual_seed(spec.seed + 10 ** 6)
    kw = dict(width=p.width, fine_prob=spec.fine_prob, coarse_prob=spec.coarse_prob, kernel=p.kernel,
              generator=gen, init_seed=spec.seed, init=p.init)
    if p.n_fine is not None and p.n_coarse is not None:
        net = TwoScaleCNN(n_fine=p.n_fine, n_coarse=p.n_coarse, **kw)
        net.image_size = p.size
        return net
    train_r, _ = p.recipes()
    return TwoScaleCNN.for_scales(p.size, small_cl=train_r.scales[0], large_cl=train_r.scales[-1], **kw)


def load_data(profile: str | SweepProfile, progress: bool = True):
    """``(train, test)`` :class:`~backdrop_repro.datasets.GPDataset` of the profile (cached)."""
    from . import datasets

    train_r, test_r = get_profile(profile).recipes()
    return datasets.build_dataset(train_r, progress=progress), datasets.build_dataset(test_r, progress=progress)


def load_model(spec: RunSpec, retrain_missing: bool = True, progress: bool = False) -> tuple[TwoScaleCNN, bool]:
    """The run's network with its final weights: ``(model, trained)``.

    Checkpoints live in the data cache, not in ``results/``; on a fresh clone (where the run
    records are committed but no checkpoint exists) the run is trained again when
    ``retrain_missing`` (deterministic: the same seed gives the same weights on a given
    machine). Without a checkpoint and with ``retrain_missing=False`` the untrained network is
    returned with ``trained=False``.
    """
    model = build_model(spec)
    ckpt = _ckpt_path(spec)
    if not ckpt.exists() and retrain_missing:
        train_ds, test_ds = load_data(spec.profile, progress=progress)
        threads = torch.get_num_threads()
        if spec.profile.threads:             # the sweep's thread count: same reduction order
            torch.set_num_threads(spec.profile.threads)
        try:
            train(build_model(spec), train_ds, test_ds, spec.train_config(_device(spec.profile, None)),
                  checkpoint=ckpt, resume=True, progress=progress)
        finally:
            torch.set_num_threads(threads)
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        return model, state["epoch"] == spec.profile.epochs
    return model, False


def results_table(sweep: dict[str, Any]) -> str:
    """Markdown table of the sweep: test accuracy mean ± std (seeds), paired delta vs none ± sem, p.

    Only accuracies are shown (exact fractions of the test set, stable across machines).
    """
    orc = sweep.get("oracle", {})
    lines = ["| configuration | fine p | coarse p | seeds | test accuracy (mean ± std) | "
             "Δ vs none (mean ± sem) | p (paired t) | train accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sweep["summary"]:
        d = r.get("delta_test_accuracy")
        lines.append(f"| {r['config']} | {r['fine_prob']:g} | {r['coarse_prob']:g} | {len(r['seeds'])} | "
                     f"{_pm(r['test_accuracy'])} | " + (f"{d['mean']:+.3f} ± {d['sem']:.3f} | {_p(d['p_value'])}"
                                                         if d else "— | —") + f" | {_pm(r['train_accuracy'])} |")
    if orc:
        lines.append(f"| Bayes-optimal oracle{'' if orc.get('exact') else ' (approx.)'} | | | | "
                     f"{orc['test_accuracy']:.3f} | | | |")
    return "\n".join(lines)


def _device(p: SweepProfile, device: Optional[str]) -> str:
    d = device or p.device
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return d


def _runs_dir(profile: str) -> Path:
    return paths.results_dir(profile) / "gp_runs"


def _ckpt_path(spec: RunSpec) -> Path:
    return paths.data_dir() / "checkpoints" / "gp_sweep" / spec.profile.name / f"{spec.key}.pt"


def run_one(spec: RunSpec, data=None, device: Optional[str] = None, progress: bool = True) -> dict[str, Any]:
    """Train one run (or return its stored result); resumable from its checkpoint.

    Returns the run record written to ``results/<profile>/gp_runs/<key>.json``: ``key``,
    ``config`` (see :meth:`RunSpec.to_dict`), ``history``, ``final``, ``wall_time_s``,
    ``device``, ``versions``.
    """
    path = _runs_dir(spec.profile.name) / f"{spec.key}.json"
    if path.exists():
        rec = json.loads(path.read_text())
        if rec.get("config") == spec.to_dict():
            return rec
    train_ds, test_ds = data if data is not None else load_data(spec.profile, progress=progress)
    dev = _device(spec.profile, device)
    model = build_model(spec)
    out = train(model, train_ds, test_ds, spec.train_config(dev), checkpoint=_ckpt_path(spec),
                resume=True, progress=progress)
    rec = {"key": spec.key, "config": spec.to_dict(), "history": out["history"], "final": out["final"],
           "wall_time_s": round(out["wall_time_s"], 2), "device": _device_name(dev), "versions": paths.versions()}
    paths.write_json(path, rec)
    return rec


def _device_name(dev: str) -> str:
    if dev.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(dev))
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def oracle_reference(profile: str | SweepProfile, test=None) -> dict[str, Any]:
    """Accuracy and loss of the Bayes-optimal oracle on the profile's test set.

    Exact for ``method="fft"`` data; on matched/faithful (non-periodic) data an approximation
    through Hann-windowed periodograms (see :mod:`backdrop_repro.oracle`).
    """
    from .oracle import oracle_for_recipe

    p = get_profile(profile)
    _, test_r = p.recipes()
    if test is None:
        _, test = load_data(p, progress=False)
    o = oracle_for_recipe(test_r)
    images, labels = np.asarray(test.images), np.asarray(test.labels)
    pred = o.predict(images)
    res = o.evaluate(images, labels)
    return {"test_accuracy": res["accuracy"], "test_loss": res["loss"], "method": test_r.method,
            "window": o.window, "exact": test_r.method == "fft",
            "small_scale_accuracy": float(np.mean(pred % 2 == labels % 2)),
            "large_scale_accuracy": float(np.mean(pred // 2 == labels // 2))}


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return {"mean": float(v.mean()), "std": None, "sem": None}
    sd = float(v.std(ddof=1))
    return {"mean": float(v.mean()), "std": sd, "sem": sd / math.sqrt(len(v))}


def _p(p: Optional[float]) -> str:
    return "—" if p is None else f"{p:.2g}"


def _pm(s: dict[str, Any], key: str = "std") -> str:
    return f"{s['mean']:.3f}" + (f" ± {s[key]:.3f}" if s.get(key) is not None else "")


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (config, level) mean/std/sem over seeds, and the paired difference to ``none``.

    Each row: config, level, fine_prob, coarse_prob, seeds, test_accuracy {mean, std, sem},
    test_loss, train_accuracy, and (when the ``none`` runs of the same seeds exist)
    ``delta_test_accuracy`` {mean, std, sem, t, p_value, n} from a paired t-test over seeds
    (``p_value`` None when every seed gives the same non-zero difference: no test possible).
    """
    from scipy import stats as st

    groups: dict[tuple[str, int], list[dict]] = {}
    for r in runs:
        c = r["config"]
        groups.setdefault((c["config"], c["level"]), []).append(r)
    base = {r["config"]["seed"]: r["final"]["test_accuracy"] for r in groups.get(("none", 0), [])}
    rows = []
    for (name, level), rs in sorted(groups.items(), key=lambda kv: (CONFIGS.index(kv[0][0]), kv[0][1])):
        rs = sorted(rs, key=lambda r: r["config"]["seed"])
        row = {"config": name, "level": level, "fine_prob": rs[0]["config"]["fine_prob"],
               "coarse_prob": rs[0]["config"]["coarse_prob"], "seeds": [r["config"]["seed"] for r in rs]}
        for m in ("test_accuracy", "test_loss", "train_accuracy", "train_eval_loss"):
            row[m] = _stats([r["final"][m] for r in rs])
        if name != "none":
            d = [r["final"]["test_accuracy"] - base[r["config"]["seed"]] for r in rs if r["config"]["seed"] in base]
            if len(d) >= 2:
                s = _stats(d)
                t = st.ttest_1samp(d, 0.0) if np.std(d) > 0 else None
                s.update(n=len(d), t=float(t.statistic) if t else None,
                         p_value=float(t.pvalue) if t else (1.0 if np.mean(d) == 0 else None))
                row["delta_test_accuracy"] = s
        rows.append(row)
    return rows


def verdict(sweep: dict[str, Any], alpha: float = 0.05) -> str:
    """A plain-language verdict on the paper's claim from the sweep's paired differences.

    The claim "backdrop improves generalisation" reproduces at this profile if at least one
    backdrop configuration beats ``none`` by a paired t-test at level ``alpha`` after a Bonferroni
    correction over the configurations tested.
    """
    rows = [r for r in sweep["summary"] if "delta_test_accuracy" in r]
    base = [r for r in sweep["summary"] if r["config"] == "none"]
    if not rows or not base:
        return "Not enough runs (need `none` and a backdrop configuration with >= 2 shared seeds) for a verdict."
    k = len(rows)
    best = max(rows, key=lambda r: r["delta_test_accuracy"]["mean"])
    worst = min(rows, key=lambda r: r["delta_test_accuracy"]["mean"])
    b, d = base[0]["test_accuracy"], best["delta_test_accuracy"]
    orc = sweep.get("oracle", {}).get("test_accuracy")
    smoke = ("(Smoke profile: a check that the code runs, too small to test the claim.) "
             if sweep["profile"] == "smoke" else "")
    head = smoke + (f"Profile `{sweep['profile']}`: no backdrop reaches {_pm(b)} test accuracy "
            f"(mean ± std over {len(base[0]['seeds'])} seeds; chance 0.25"
            + (f", Bayes-optimal oracle {orc:.3f}" if orc is not None else "") + "). ")
    desc = f"`{best['config']}` (fine {best['fine_prob']}, coarse {best['coarse_prob']})"
    p = d["p_value"]
    diff = (f"{d['mean']:+.3f} ± {d['sem']:.3f} (paired over {d['n']} seeds, "
            + (f"p = {p:.3g})" if p is not None else "identical differences: no t-test)"))
    if p is None:
        p = 1.0                      # a constant difference over few seeds is not evidence
    if d["mean"] > 0 and p < alpha / k:
        return head + (f"The best backdrop configuration {desc} improves it by {diff}, significant after a "
                       f"Bonferroni correction over {k} configurations: the paper's claim reproduces at this profile.")
    if d["mean"] > 0 and p < alpha:
        return head + (f"The best backdrop configuration {desc} improves it by {diff}, but this is not significant "
                       f"after correcting for the {k} configurations tried: suggestive, not a reproduction.")
    w = worst["delta_test_accuracy"]
    tail = (f" The worst, `{worst['config']}` (fine {worst['fine_prob']}, coarse {worst['coarse_prob']}), "
            f"changes it by {w['mean']:+.3f} ± {w['sem']:.3f} (± sem).")
    chance = 1.0 / 4
    at_chance = b["mean"] - chance < max(2 * (b.get("sem") or 0.0), 0.05)
    caveat = (" The no-backdrop baseline is not clearly above chance, so the networks do not learn the task "
              "at this profile and the comparison is inconclusive about the claim." if at_chance else "")
    return head + (f"No backdrop configuration improves generalisation significantly: the best, {desc}, changes "
                   f"test accuracy by {diff}.{tail} The paper's claim does not reproduce at this profile.{caveat}")


def _csv_text(runs: Sequence[dict[str, Any]]) -> str:
    cols = ["key", "profile", "config", "level", "fine_prob", "coarse_prob", "seed", "epochs",
            "train_loss", "train_accuracy", "test_loss", "test_accuracy", "wall_time_s", "device"]
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in runs:
        c, f = r["config"], r["final"]
        w.writerow([r["key"], c["profile"], c["config"], c["level"], c["fine_prob"], c["coarse_prob"], c["seed"],
                    f.get("epoch"), f"{f['train_eval_loss']:.6g}", f"{f['train_accuracy']:.6g}",
                    f"{f['test_loss']:.6g}", f"{f['test_accuracy']:.6g}", r["wall_time_s"], r["device"]])
    return buf.getvalue()


def _write_tables(p: SweepProfile, specs: Sequence[RunSpec], oracle: dict, wall: float) -> dict[str, Any]:
    runs_dir = _runs_dir(p.name)
    runs = []
    for s in specs:
        path = runs_dir / f"{s.key}.json"
        if path.exists():
            rec = json.loads(path.read_text())
            if rec.get("config") == s.to_dict():
                runs.append(rec)
    sweep = {"schema": SCHEMA_VERSION, "experiment": "gp_sweep", "profile": p.name, "settings": p.to_dict(),
             "complete": len(runs) == len(specs), "n_runs": len(runs), "n_planned": len(specs),
             "oracle": oracle, "summary": summarize(runs),
             "runs": [{k: r[k] for k in ("key", "config", "final", "history", "wall_time_s", "device")} for r in runs],
             "run_wall_time_s": round(sum(r["wall_time_s"] for r in runs), 1),
             "this_call_wall_time_s": round(wall, 1), "versions": paths.versions()}
    sweep["verdict"] = verdict(sweep)
    out = paths.results_dir(p.name)
    paths.write_json(out / "gp_sweep.json", sweep)
    paths.write_text(out / "gp_sweep.csv", _csv_text(runs))
    return sweep


def run_sweep(profile: str | SweepProfile = "smoke", configs: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None, shard: Optional[tuple[int, int]] = None,
              device: Optional[str] = None, progress: bool = True) -> dict[str, Any]:
    """Run (or reuse) every run of the sweep, then write ``gp_sweep.json`` and ``.csv``.

    ``shard=(i, n)`` runs only the runs whose index in :func:`plan_runs` is ``i`` mod ``n``
    (the tables then cover every run found on disk). Returns the sweep dict (also written):
    profile, settings, oracle, summary (:func:`summarize`), runs (with histories), verdict,
    versions, wall times, ``complete``.
    """
    from tqdm import tqdm

    p = get_profile(profile)
    specs = plan_runs(p, configs, seeds)
    if shard is not None:
        i, n = shard
        if not (isinstance(n, int) and n >= 1 and isinstance(i, int) and 0 <= i < n):
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
        todo = specs[i::n]
    else:
        todo = specs
    t0 = time.perf_counter()
    data = load_data(p, progress=progress)
    threads = torch.get_num_threads()
    if p.threads:
        torch.set_num_threads(p.threads)     # tiny smoke nets: 1 thread avoids spin contention
    try:
        for spec in tqdm(todo, desc=f"sweep {p.name}", unit="run", disable=not progress or None):
            run_one(spec, data=data, device=device, progress=False)
    finally:
        torch.set_num_threads(threads)
    oracle = oracle_reference(p, data[1])
    return _write_tables(p, specs, oracle, time.perf_counter() - t0)


def load_sweep(profile: str) -> dict[str, Any]:
    """Read ``results/<profile>/gp_sweep.json`` (raises ``FileNotFoundError`` naming it)."""
    path = paths.results_dir(profile) / "gp_sweep.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `backdrop-repro sweep --profile {profile}` first")
    return json.loads(path.read_text())


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def _cmd_sweep(args: argparse.Namespace) -> None:
    sweep = run_sweep(args.profile, args.configs, args.seeds, args.shard, args.device, progress=True)
    for row in sweep["summary"]:
        a = row["test_accuracy"]
        d = row.get("delta_test_accuracy")
        extra = f"  delta {d['mean']:+.3f} ± {d['sem']:.3f} (p={_p(d['p_value'])})" if d else ""
        print(f"{row['config']:>6} fine={row['fine_prob']:<4} coarse={row['coarse_prob']:<4} "
              f"test acc {_pm(a)} (n={len(row['seeds'])}){extra}")
    print(f"oracle test acc {sweep['oracle']['test_accuracy']:.3f}; {sweep['n_runs']}/{sweep['n_planned']} runs")
    print(sweep["verdict"])
    print(f"-> {paths.results_dir(args.profile) / 'gp_sweep.json'}")


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro sweep --profile smoke|quick|paper [--configs ...] [--seeds ...] [--shard i/n]``."""
    p = subparsers.add_parser("sweep", help="train the GP sweep (no backdrop / fine / coarse / both x probs x seeds)")
    p.add_argument("--profile", choices=profiles.names(), default="quick")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=None, help="subset of configurations")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default: the profile's)")
    p.add_argument("--shard", type=_parse_shard, default=None, help="run only runs i, i+n, ... (e.g. 0/4)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=_cmd_sweep)
