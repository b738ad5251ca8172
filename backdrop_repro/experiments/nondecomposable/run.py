"""Non-decomposable losses: a pairwise ROC-AUC surrogate trained with per-sample backdrop.

The AUC is a property of the whole data set, not a sum over samples (see :mod:`backdrop_repro.auc`).
Three ways to minimise its surrogate on a training split of N samples are compared:

``full``
    gradient descent on the surrogate of the full training split (exact, no noise);
``minibatch``
    SGD where every minibatch of size B computes the surrogate on its own pairs only (the loss of
    a different, within-batch objective: a batch of 16 at 10 % positives often holds none, and
    such a step makes no update);
``backdrop``
    the loss is computed on all N scores, but a per-sample backdrop mask (``dims=(0,)``) on the
    scores lets the gradient through a random subset of samples only. By the chain rule,
    ``dL/dθ = Σ_i (∂L/∂s_i)(∂s_i/∂θ)``: each coefficient ``∂L/∂s_i`` still sees every pair, and
    the mask cuts the paths ``∂s_i/∂θ`` of the blocked samples.

Data: scikit-learn's bundled ``load_digits`` (1797 8×8 images) as an imbalanced one-vs-rest task
(one digit ≈ 10 % positives); nothing is downloaded. Per seed, a stratified split into training
(``train_fraction``, of which ``val_fraction`` is held out for validation) and test.
Settings come from the profile table (``profiles.get(name).nondecomposable``); tables and the
verdict from :mod:`.report` (the package's standard of evidence).

Example
-------
>>> res = run_experiment("smoke", progress=False, write=False)   # doctest: +SKIP
>>> res["headline"]["backdrop"]                                 # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ... import machine, paths, profiles
from ...checks import is_int, is_real, tqdm_disable
from ...machine import torch_threads
from ...paths import check_writable
from ...seeds import content_key, torch_generator
from ...auc import SURROGATES, exact_auc, pairwise_auc_loss
from ...masking import BackdropMask
from ...train import make_optimizer
from .data import load_data, make_model, n_train
from .fidelity import gradient_fidelity
from .report import comparisons, headline

METHODS = ("full", "minibatch", "backdrop")
_OPTIM_FIELDS = tuple(f.name for f in fields(profiles.OptimSection))
FIDELITY_PRETRAIN_STEPS = 100
CSV_FIELDS = ("method", "param", "label", "seed", "val_auc", "test_auc", "train_auc", "train_loss", "skipped", "wall_s")

__all__ = ["METHODS", "NDConfig", "get_config", "train_run", "fidelity", "run_experiment", "results_name",
           "write_results", "read_results", "check_runs", "describe", "banner"]


@dataclass(frozen=True)
class NDConfig(profiles.NDSection):
    """A validated :class:`backdrop_repro.profiles.NDSection` (same fields), built with
    :meth:`from_section` or :func:`get_config`.

    ``positive_digit`` of ``load_digits`` is the positive class (≈ 10 %); ``train_fraction``
    of the 1797 images (stratified, drawn from the seed) is the training split, of which
    ``val_fraction`` is held out for validation; the rest is the test set. Every method runs
    ``steps`` steps with the same optimiser (``optim``, checked by
    :class:`~backdrop_repro.profiles.OptimSection`); ``batch_sizes`` are the minibatch sizes,
    ``mask_probs`` the backdrop blocking probabilities. ``hidden = 0`` is a linear scorer,
    otherwise an MLP 64 → hidden → 1 (ReLU). Integers and reals may be numpy scalars.

    Example
    -------
    >>> NDConfig.from_section(profiles.get("smoke").nondecomposable).runs()
    [('full', None), ('minibatch', 32), ('backdrop', 0.9)]
    """

    def __post_init__(self) -> None:
        super().__post_init__()

        def bad(name: str, accepted: str) -> ValueError:
            return ValueError(f"{name} must be {accepted}, got {getattr(self, name)!r}")

        if not (is_int(self.positive_digit) and 0 <= self.positive_digit <= 9):
            raise bad("positive_digit", "an int in 0..9")
        if not (is_real(self.train_fraction) and 0.05 <= self.train_fraction <= 0.95):
            raise bad("train_fraction", "a real in [0.05, 0.95]")
        if not (is_real(self.val_fraction) and 0.05 <= self.val_fraction <= 0.5):
            raise bad("val_fraction", "a real in [0.05, 0.5] (share of the training split)")
        if not (is_int(self.hidden) and self.hidden >= 0):
            raise bad("hidden", "an int >= 0 (0 = linear)")
        if self.surrogate not in SURROGATES:
            raise bad("surrogate", f"one of {SURROGATES}")
        if not (is_real(self.tau) and self.tau > 0):
            raise bad("tau", "a real > 0")
        for name in ("steps", "eval_every"):
            if not (is_int(getattr(self, name)) and getattr(self, name) >= 1):
                raise bad(name, "an int >= 1")
        if not all(is_int(b) and b >= 2 for b in self.batch_sizes):
            raise bad("batch_sizes", "ints >= 2")
        if not all(is_real(p) and 0.0 < p < 1.0 for p in self.mask_probs):
            raise bad("mask_probs", "reals in (0, 1)")
        seeds = tuple(self.seeds)
        if not seeds or not all(is_int(s) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise bad("seeds", "a non-empty sequence of distinct ints >= 0")
        if not (is_int(self.fidelity_draws) and (self.fidelity_draws == 0 or self.fidelity_draws >= 2)):
            raise bad("fidelity_draws", "0 (skip the diagnostic) or an int >= 2")
        # plain Python numbers and tuples from here on (numpy scalars and lists are accepted): the
        # config is hashed and written as JSON after the runs, where a numpy scalar would fail
        for f in fields(self):
            v = getattr(self, f.name)
            if is_int(v):
                object.__setattr__(self, f.name, int(v))
            elif is_real(v):
                object.__setattr__(self, f.name, float(v))
        object.__setattr__(self, "seeds", tuple(int(s) for s in seeds))
        object.__setattr__(self, "batch_sizes", tuple(int(b) for b in self.batch_sizes))
        object.__setattr__(self, "mask_probs", tuple(float(p) for p in self.mask_probs))

    @classmethod
    def from_section(cls, section: profiles.NDSection, **overrides: Any) -> "NDConfig":
        """The section's values (with ``overrides``: any field, or a field of its ``optim``), validated."""
        values = {f.name: getattr(section, f.name) for f in fields(section)}
        optim = {k: overrides.pop(k) for k in _OPTIM_FIELDS if k in overrides}
        values.update(overrides)
        if optim:
            values["optim"] = replace(values["optim"], **optim)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as one flat dict (the results' ``config``): ``optim``'s fields in its place,
        ``momentum`` only when not 0, so every committed record's ``config`` and name stay as they were."""
        return {k: v for k, v in super().to_dict().items() if k != "momentum" or v != 0.0}

    def runs(self) -> list[tuple[str, Optional[float]]]:
        """The (method, parameter) pairs of the experiment, in table order."""
        return ([("full", None)] + [("minibatch", int(b)) for b in self.batch_sizes]
                + [("backdrop", float(p)) for p in self.mask_probs])


def get_config(profile: str | profiles.Profile = profiles.DEFAULT, **overrides: Any) -> NDConfig:
    """The :class:`NDConfig` of ``profile`` (from the profile table) with ``overrides`` applied.

    Example
    -------
    >>> get_config("smoke", steps=5).steps
    5
    """
    return NDConfig.from_section(profiles.get(profile).nondecomposable, **overrides)


def label(method: str, param: Optional[float]) -> str:
    """``"full batch"``, ``"minibatch B=32"`` or ``"backdrop p=0.9"``."""
    if method == "full":
        return "full batch"
    return f"minibatch B={int(param)}" if method == "minibatch" else f"backdrop p={param:g}"  # type: ignore[arg-type]


def _optimizer(config: NDConfig, params: Any) -> torch.optim.Optimizer:
    # "sgd" is plain SGD by default (the section's momentum 0): the setting this experiment has always used
    return make_optimizer(params, **asdict(config.optim))


def train_run(config: NDConfig, method: str, param: Optional[float], seed: int,
              data: Optional[dict[str, torch.Tensor]] = None) -> dict[str, Any]:
    """Train one scorer with ``method`` (``"full"``, ``"minibatch"`` with batch size ``param``,
    ``"backdrop"`` with mask probability ``param``) for ``config.steps`` steps.

    Initialisation and split depend on ``seed`` only, so all methods of one seed start from the
    same network on the same split (paired comparison). Returns the final ``val_auc``,
    ``test_auc``, ``train_auc``, ``train_loss`` (surrogate on the training split), ``skipped``
    (minibatch steps with no positive-negative pair, which make no update) and
    ``curve`` = {"step", "val_auc", "test_auc", "train_auc", "train_loss"} lists.

    Example
    -------
    >>> r = train_run(get_config("smoke", steps=3, eval_every=1), "backdrop", 0.9, seed=0)
    >>> len(r["curve"]["step"])
    4
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "minibatch" and not (is_int(param) and param >= 2):
        raise ValueError(f"param must be the batch size (int >= 2) for method 'minibatch', got {param!r}")
    if method == "backdrop" and not (is_real(param) and not is_int(param) and 0 < param < 1):
        raise ValueError(f"param must be the mask probability (a float in (0, 1)) for method 'backdrop', got {param!r}")
    with torch_threads(1):    # these matrices are tiny
        data = data if data is not None else load_data(config, seed)
        n = data["x_train"].shape[0]
        if method == "minibatch" and param > n:  # type: ignore[operator]
            raise ValueError(f"param (batch size) must be <= the training split ({n} samples), got {param!r}")
        return _train(config, method, param, seed, data)


def _train(config: NDConfig, method: str, param: Any, seed: int, data: dict[str, torch.Tensor]) -> dict[str, Any]:
    xtr, ytr = data["x_train"], data["y_train"]
    n = xtr.shape[0]
    model = make_model(xtr.shape[1], config.hidden, seed)
    opt = _optimizer(config, model.parameters())
    loss_kw = {"surrogate": config.surrogate, "tau": config.tau}
    gen = torch_generator(seed, "nd_masks")
    mask = BackdropMask(float(param), dims=(0,), generator=gen) if method == "backdrop" else None
    order, cursor, skipped = torch.randperm(n, generator=gen), 0, 0
    curve: dict[str, list] = {"step": [], "val_auc": [], "test_auc": [], "train_auc": [], "train_loss": []}

    def evaluate(step: int) -> None:
        with torch.no_grad():
            s_tr = model(xtr)
            curve["step"].append(step)  # values rounded to 6 significant digits: a small JSON
            curve["train_loss"].append(float(f"{float(pairwise_auc_loss(s_tr, ytr, **loss_kw)):.6g}"))
            curve["train_auc"].append(round(exact_auc(s_tr, ytr), 6))
            for part in ("val", "test"):
                curve[f"{part}_auc"].append(round(exact_auc(model(data[f"x_{part}"]), data[f"y_{part}"]), 6))

    evaluate(0)
    for step in range(1, config.steps + 1):
        if method == "minibatch":
            if cursor + param > n:  # reshuffle each epoch; drop the incomplete tail
                order, cursor = torch.randperm(n, generator=gen), 0
            idx = order[cursor:cursor + param]
            cursor += param
            yb = ytr[idx]
            loss = pairwise_auc_loss(model(xtr[idx]), yb, **loss_kw) if 0 < yb.sum() < len(yb) else None
        else:
            scores = model(xtr)
            loss = pairwise_auc_loss(scores if mask is None else mask(scores), ytr, **loss_kw)
        if loss is None:
            skipped += 1           # no positive-negative pair in the batch: no update
        else:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if step % config.eval_every == 0 or step == config.steps:
            evaluate(step)
    last = {k: v[-1] for k, v in curve.items() if k != "step"}
    return {"method": method, "param": param, "label": label(method, param), "seed": int(seed), **last,
            "skipped": skipped, "curve": curve}


def fidelity(config: NDConfig, seed: int, data: Optional[dict[str, torch.Tensor]] = None,
             pretrain_steps: int = FIDELITY_PRETRAIN_STEPS) -> dict[str, Any]:
    """:func:`.fidelity.gradient_fidelity` of every stochastic setting at the network of
    ``seed``, at initialisation and after ``pretrain_steps`` full-batch steps (same split).

    Example: ``fidelity(get_config("smoke"), 0)["at_init"][0]["label"] == "minibatch B=32"``.
    """
    with torch_threads(1):    # these matrices are tiny
        data = data if data is not None else load_data(config, seed)
        x, y = data["x_train"], data["y_train"]
        model = make_model(x.shape[1], config.hidden, seed)
        settings = [(label(m, p), m, p) for m, p in config.runs()[1:]]
        kw = {"n_draws": config.fidelity_draws, "seed": seed, "surrogate": config.surrogate, "tau": config.tau}
        at_init = gradient_fidelity(model, x, y, settings, **kw)
        opt = _optimizer(config, model.parameters())
        for _ in range(int(pretrain_steps)):
            opt.zero_grad(set_to_none=True)
            pairwise_auc_loss(model(x), y, surrogate=config.surrogate, tau=config.tau).backward()
            opt.step()
        return {"seed": int(seed), "n_draws": config.fidelity_draws, "pretrain_steps": int(pretrain_steps),
                "at_init": at_init, "after_100_steps": gradient_fidelity(model, x, y, settings, **kw)}


def describe(config: NDConfig | profiles.NDSection) -> str:
    """Markdown describing the set-up of ``config`` for the notebook: :func:`backdrop_repro.render.nd_setup` with the
    training-split size counted on the data (:func:`.data.n_train`).

    Example: ``"digit 8" in describe(profiles.get("smoke").nondecomposable)``.
    """
    from ...render import nd_setup

    return nd_setup(config, n_train(config))


def banner(config: NDConfig | profiles.NDSection) -> str:
    """One line naming this experiment's own settings for the header of an executed notebook copy:
    :func:`backdrop_repro.render.nd_setup` (``banner``) with the training-split size counted on the data (:func:`.data.n_train`).

    Example: ``banner(profiles.get("smoke").nondecomposable)`` starts ``"digit 8 vs rest"``.
    """
    from ...render import nd_setup

    return nd_setup(config, n_train(config), banner=True)


def results_name(profile: str | profiles.Profile, config: NDConfig) -> str:
    """``"nondecomposable"`` for the profile's own settings; ``"nondecomposable-custom-<hash>"``
    for any other seeds or settings, so a subset run never overwrites the profile's table.

    Example: ``results_name("smoke", get_config("smoke")) == "nondecomposable"``.
    """
    if config == get_config(profile):
        return "nondecomposable"
    return f"nondecomposable-custom-{content_key(config.to_dict(), 8)}"


def _results_folder(profile: str | profiles.Profile) -> Path:
    return check_writable(paths.results_dir(profile), "results folder", "set BACKDROP_REPRO_OUTPUT to another folder")


def run_experiment(profile: str | profiles.Profile = profiles.DEFAULT, config: Optional[NDConfig] = None,
                   progress: bool = True, write: bool = True) -> dict[str, Any]:
    """Run every (method, parameter) of the profile for every seed; optionally write results.

    Parameters
    ----------
    profile : a name of :func:`backdrop_repro.profiles.names` or a :class:`~backdrop_repro.profiles.Profile`
        (settings and results folder).
    config : override the profile's settings (results then go to a name of :func:`results_name`).
    progress : show a tqdm bar (``TQDM_DISABLE=1`` also silences it).
    write : write ``results/<profile>/<results_name>.json`` and ``.csv`` (checked before running).

    Returns
    -------
    dict with ``profile``, ``name``, ``config``, ``data`` (sizes), ``runs`` (one record per seed
    and setting, with curves), ``summary`` (per setting: mean curves), ``fidelity``,
    ``comparisons`` and ``headline`` (see :mod:`.report`), ``versions`` and ``wall_s``.

    Example
    -------
    >>> res = run_experiment("smoke", progress=False, write=False)   # doctest: +SKIP
    """
    from tqdm import tqdm

    p = profiles.get(profile)          # resolved once: a name or a Profile
    config = config or get_config(p)
    if not isinstance(config, NDConfig):
        raise ValueError(f"config must be an NDConfig (get_config(profile, ...)), got {type(config).__name__}")
    folder = _results_folder(p) if write else None
    if write:
        paths.clean_package_orphans(p.name)
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    jobs = [(seed, m, q) for seed in config.seeds for m, q in config.runs()]
    data: dict[str, torch.Tensor] = {}
    for seed, method, param in tqdm(jobs, desc="nondecomposable", disable=tqdm_disable(progress)):
        if not data or runs[-1]["seed"] != seed:
            data = load_data(config, seed)
        r0 = time.perf_counter()
        runs.append(train_run(config, method, param, seed, data=data))
        runs[-1]["wall_s"] = round(time.perf_counter() - r0, 3)
    d = load_data(config, config.seeds[0])
    data_info = {f"{k}_{part}": int(v) for part in ("train", "val", "test")
                 for k, v in (("n", d[f"y_{part}"].numel()), ("pos", d[f"y_{part}"].sum()))}
    result: dict[str, Any] = {
        "experiment": "nondecomposable", "profile": p.name, "name": results_name(p, config),
        "config": config.to_dict(),
        "data": {"source": "sklearn.datasets.load_digits", "task": f"digit {config.positive_digit} vs rest",
                 "n_features": int(d["x_train"].shape[1]), **data_info},
        "summary": _summarise(config, runs),
        "fidelity": fidelity(config, config.seeds[0], data=d) if config.fidelity_draws else {},
        "runs": runs,
    }
    result["comparisons"] = comparisons(result)
    result["headline"] = headline(result)
    with torch_threads(1):                  # the threads every run trained with (train_run, fidelity)
        versions = machine.versions()
    result.update(versions=versions, torch_threads_used=1, wall_s=round(time.perf_counter() - t0, 2))
    if write:
        write_results(result, p, folder)
    return result


def _r6(a: Any) -> list[float]:
    return [float(f"{v:.6g}") for v in np.asarray(a, dtype=float)]


def _summarise(config: NDConfig, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting: seeds and the mean ± sd curves (for the figures)."""
    out = []
    for method, param in config.runs():
        rs = [r for r in runs if r["method"] == method and r["param"] == param]
        if not rs:
            continue
        ddof = 1 if len(rs) > 1 else 0
        entry: dict[str, Any] = {"method": method, "param": param, "label": rs[0]["label"], "n_seeds": len(rs),
                                 "curve_step": rs[0]["curve"]["step"]}
        for key in ("val_auc", "test_auc", "train_loss"):
            c = np.array([r["curve"][key] for r in rs])
            entry[f"curve_{key}_mean"], entry[f"curve_{key}_std"] = _r6(c.mean(0)), _r6(c.std(0, ddof=ddof))
        out.append(entry)
    return out


def write_results(result: dict[str, Any], profile: str | profiles.Profile, folder: Optional[Path] = None) -> tuple[Path, Path]:
    """Write ``result`` to ``<folder>/<result["name"]>.json`` and ``.csv`` (one row per run),
    each atomically; ``folder`` defaults to ``results/<profile>``. Returns the two paths."""
    folder = folder or _results_folder(profile)
    name = result.get("name", "nondecomposable")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in result["runs"]:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    jpath = paths.write_json(folder / f"{name}.json", result)
    return jpath, paths.write_text(folder / f"{name}.csv", buf.getvalue())


#: the per-run figures a reader uses: AUCs in [0, 1]; the loss a finite number
_AUCS = ("val_auc", "test_auc", "train_auc")


def check_runs(result: Any, where: "str | Path" = "the result") -> None:
    """One ``ValueError`` naming ``where`` (the file) and the first bad run unless ``result`` is a
    results dict of :func:`run_experiment` whose every run has a method of :data:`METHODS`, a label,
    an integer seed, ``val_auc`` and ``test_auc`` (and ``train_auc`` when present) finite numbers in
    [0, 1], and a finite ``train_loss`` when present: a NaN or 7.5 AUC is never summarised.

    Example: ``check_runs({"runs": [{"method": "full", "label": "full batch", "seed": 0, "val_auc": 0.9,
    "test_auc": float("nan")}]}, "x.json")`` raises ``x.json: run 0 (full batch, seed 0): test_auc must be ...``.
    """
    if not isinstance(result, dict) or not isinstance(result.get("runs"), list) or not result["runs"]:
        raise ValueError(f"{where}: not a non-decomposable result (no list of runs)")
    for i, r in enumerate(result["runs"]):
        if not isinstance(r, dict):
            raise ValueError(f"{where}: run {i} is a JSON {type(r).__name__}, not an object")
        name = f"{where}: run {i} ({r.get('label', '?')}, seed {r.get('seed', '?')})"
        if r.get("method") not in METHODS or not isinstance(r.get("label"), str) or not is_int(r.get("seed")):
            raise ValueError(f"{name}: method must be one of {METHODS} with a label and an integer seed")
        for key in _AUCS:
            if key not in r and key == "train_auc":
                continue
            v = r.get(key)
            if not is_real(v) or not np.isfinite(v) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: {key} must be a finite number in [0, 1], got {v!r}")
        if "train_loss" in r and not (is_real(r["train_loss"]) and np.isfinite(r["train_loss"])):
            raise ValueError(f"{name}: train_loss must be a finite number, got {r['train_loss']!r}")


def read_results(path: "str | Path") -> dict[str, Any]:
    """The results JSON at ``path`` (``results/<profile>/nondecomposable.json``), read and checked by
    :func:`check_runs`; strict JSON (a ``NaN`` literal is refused). One ``ValueError`` (a missing file:
    ``FileNotFoundError``) naming the file, before anything is summarised.

    Example: ``read_results(paths.results_dir("default") / "nondecomposable.json")["profile"] == "default"``.
    """
    from ...records import parse

    path = Path(path)
    try:
        result = parse(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: run `backdrop-repro nondecomposable` first") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read ({err}); run `backdrop-repro nondecomposable` again") from None
    check_runs(result, path)
    return result

