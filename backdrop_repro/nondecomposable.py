"""Non-decomposable losses: a pairwise ROC-AUC surrogate trained with per-sample backdrop.

The AUC of a scorer is a property of the whole data set, not a sum over samples:

    AUC = 1/(P·Q) · Σ_{i ∈ pos} Σ_{j ∈ neg} H(s_i - s_j),    H = step (H(0) = 1/2),

with P positives and Q negatives. Its smooth relaxation (``pairwise_auc_loss``) replaces
``1 - H(d)`` by a sigmoid, hinge or logistic function of the score difference ``d``. Three ways
to minimise it on a training set of N samples are compared by :func:`run_experiment`:

``full``
    gradient descent on the surrogate of the full training set (exact, no noise);
``minibatch``
    SGD where every minibatch of size B computes the surrogate on its own pairs only (the loss of
    a different, within-batch objective: a batch of 16 at 10 % positives often holds none);
``backdrop``
    the loss is computed on all N scores, but a per-sample backdrop mask (``dims=(0,)``) on the
    scores lets the gradient through a random subset of samples only. By the chain rule,
    ``dL/dθ = Σ_i (∂L/∂s_i)(∂s_i/∂θ)``: each coefficient ``∂L/∂s_i`` still sees every pair, and
    the mask cuts the paths ``∂s_i/∂θ`` of the blocked samples.

The data set ships with scikit-learn (``load_digits``, 1797 8×8 images), turned into an
imbalanced one-vs-rest problem (one digit ≈ 10 % positives). Nothing is downloaded.

Example
-------
>>> res = run_experiment("smoke", progress=False, write=False)   # doctest: +SKIP
>>> print(summary_table(res))                                     # doctest: +SKIP
| setting | test AUC (mean ± std, 2 seeds) | ...
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io as _stdio
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch import nn

from . import paths, profiles
from .masking import BackdropMask

SURROGATES = ("sigmoid", "hinge", "logistic")
METHODS = ("full", "minibatch", "backdrop")
OPTIMIZERS = ("adam", "sgd")

__all__ = [
    "SURROGATES", "METHODS", "NDConfig", "PROFILES", "get_config", "exact_auc", "pairwise_auc_loss",
    "soft_auc", "load_data", "make_model", "train_run", "gradient_fidelity", "run_experiment",
    "summary_table", "fidelity_table", "verdict", "write_results", "add_cli",
]


# --------------------------------------------------------------------------------------------
# AUC: exact and differentiable surrogates
# --------------------------------------------------------------------------------------------
def _as_numpy_1d(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d (N,) or (N, 1), got shape {arr.shape}")
    return arr


def exact_auc(scores: Any, labels: Any) -> float:
    """Exact ROC AUC (Mann-Whitney U / (P·Q)); tied scores count one half.

    Parameters
    ----------
    scores : (N,) or (N, 1) array or tensor of real scores (higher = more positive).
    labels : (N,) array of 0/1 (or bool) labels with at least one of each.

    Example
    -------
    >>> exact_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    from scipy.stats import rankdata

    s = _as_numpy_1d(scores, "scores").astype(np.float64)
    y = _as_numpy_1d(labels, "labels")
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same length, got {s.shape} and {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 (or bool)")
    y = y.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels must contain both classes, got {n_pos} positives and {n_neg} negatives")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    ranks = rankdata(s)  # average ranks: ties count one half
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pairwise_auc_loss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    surrogate: str = "sigmoid",
    tau: float = 1.0,
    margin: float = 1.0,
) -> torch.Tensor:
    """Differentiable surrogate of ``1 - AUC``: the mean of ``ℓ(s_i - s_j)`` over all pairs
    of a positive ``i`` and a negative ``j``.

    Parameters
    ----------
    scores : (N,) or (N, 1) float tensor.
    labels : (N,) 0/1 tensor (any dtype).
    surrogate : ``"sigmoid"``: ``ℓ(d) = sigmoid(-d / tau)`` (→ ``1 - H(d)`` as ``tau → 0``, so
        ``1 - loss`` → the exact AUC with ties counted one half);
        ``"hinge"``: ``ℓ(d) = max(0, margin - d)`` (an upper bound of ``1 - H(d)`` for margin ≥ 1);
        ``"logistic"``: ``ℓ(d) = log2(1 + exp(-d / tau))`` (also an upper bound).
    tau : temperature (> 0) of the sigmoid and logistic surrogates.
    margin : margin (> 0) of the hinge surrogate.

    Returns
    -------
    0-d tensor. With no positive-negative pair (one class missing) the result is
    ``0 * scores.sum()``: zero, still attached to the graph, with a zero gradient.

    Example
    -------
    >>> s = torch.tensor([0.1, 0.4, 0.35, 0.8])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> round(1 - float(pairwise_auc_loss(s, y, tau=1e-4)), 6)
    0.75
    """
    if surrogate not in SURROGATES:
        raise ValueError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}")
    if not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f"tau must be a float > 0, got {tau!r}")
    if not (isinstance(margin, (int, float)) and margin > 0):
        raise ValueError(f"margin must be a float > 0, got {margin!r}")
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1:
        raise ValueError(f"scores must have shape (N,) or (N, 1), got {tuple(scores.shape)}")
    labels = labels.reshape(-1)
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(f"labels must have length {scores.shape[0]} (like scores), got {labels.shape[0]}")
    pos = labels.to(torch.bool)
    s_pos, s_neg = scores[pos], scores[~pos]
    if s_pos.numel() == 0 or s_neg.numel() == 0:
        return scores.sum() * 0.0
    d = s_pos[:, None] - s_neg[None, :]  # (P, Q) score differences
    if surrogate == "sigmoid":
        ell = torch.sigmoid(-d / tau)
    elif surrogate == "hinge":
        ell = torch.relu(margin - d)
    else:
        ell = nn.functional.softplus(-d / tau) / math.log(2.0)
    return ell.mean()


def soft_auc(scores: torch.Tensor, labels: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Smooth AUC ``1 - pairwise_auc_loss(scores, labels, "sigmoid", tau)`` (→ AUC as tau → 0).

    Example
    -------
    >>> float(soft_auc(torch.tensor([0.0, 5.0]), torch.tensor([0, 1]), tau=1e-3))
    1.0
    """
    return 1.0 - pairwise_auc_loss(scores, labels, "sigmoid", tau=tau)


# --------------------------------------------------------------------------------------------
# Configuration and profiles
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NDConfig:
    """Everything that defines one non-decomposable experiment (see :data:`PROFILES`).

    ``positive_digit`` of ``load_digits`` is the positive class (≈ 10 %); ``train_fraction``
    of the 1797 images (stratified, split drawn from the seed) is the training set, the rest the
    test set. Every method does ``steps`` optimiser updates with the same optimiser and rate;
    ``batch_sizes`` are the minibatch sizes, ``mask_probs`` the backdrop blocking probabilities.
    ``hidden = 0`` is a linear scorer, otherwise an MLP 64 → hidden → 1 (ReLU).
    """

    positive_digit: int = 8
    train_fraction: float = 0.2
    hidden: int = 32
    surrogate: str = "sigmoid"
    tau: float = 1.0
    optimizer: str = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0
    steps: int = 600
    eval_every: int = 10
    batch_sizes: tuple[int, ...] = (32, 128)
    mask_probs: tuple[float, ...] = (0.5, 0.9, 0.97)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    fidelity_draws: int = 200

    def __post_init__(self) -> None:
        if not (isinstance(self.positive_digit, int) and 0 <= self.positive_digit <= 9):
            raise ValueError(f"positive_digit must be an int in 0..9, got {self.positive_digit!r}")
        if not 0.05 <= self.train_fraction <= 0.95:
            raise ValueError(f"train_fraction must be in [0.05, 0.95], got {self.train_fraction!r}")
        if not (isinstance(self.hidden, int) and self.hidden >= 0):
            raise ValueError(f"hidden must be an int >= 0 (0 = linear), got {self.hidden!r}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (self.lr > 0 and self.tau > 0 and self.weight_decay >= 0):
            raise ValueError(f"lr and tau must be > 0 and weight_decay >= 0, got {self.lr}, {self.tau}, {self.weight_decay}")
        if not (isinstance(self.steps, int) and self.steps >= 1 and isinstance(self.eval_every, int) and self.eval_every >= 1):
            raise ValueError(f"steps and eval_every must be ints >= 1, got {self.steps!r}, {self.eval_every!r}")
        if not all(isinstance(b, int) and b >= 2 for b in self.batch_sizes):
            raise ValueError(f"batch_sizes must be ints >= 2, got {self.batch_sizes!r}")
        if not all(0.0 < p < 1.0 for p in self.mask_probs):
            raise ValueError(f"mask_probs must lie in (0, 1), got {self.mask_probs!r}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        if not (isinstance(self.fidelity_draws, int) and (self.fidelity_draws == 0 or self.fidelity_draws >= 2)):
            raise ValueError(f"fidelity_draws must be 0 (skip the diagnostic) or an int >= 2, got {self.fidelity_draws!r}")

    def runs(self) -> list[tuple[str, Optional[float]]]:
        """The (method, parameter) pairs of the experiment, in table order."""
        return ([("full", None)] + [("minibatch", int(b)) for b in self.batch_sizes]
                + [("backdrop", float(p)) for p in self.mask_probs])


PROFILES: dict[str, NDConfig] = {
    # CI: seconds.
    "smoke": NDConfig(steps=40, eval_every=10, batch_sizes=(32,), mask_probs=(0.9,), seeds=(0, 1),
                      fidelity_draws=50),
    # make reproduce (2 CPU cores): about a minute.
    "quick": NDConfig(steps=600, eval_every=20, batch_sizes=(16, 64, 256),
                      mask_probs=(0.5, 0.9, 0.97), seeds=tuple(range(24))),
    # more seeds, longer training, more settings (still CPU-friendly: about ten minutes).
    "paper": NDConfig(steps=1500, eval_every=50, batch_sizes=(16, 32, 64, 128, 256),
                      mask_probs=(0.3, 0.5, 0.7, 0.9, 0.95, 0.97, 0.99), seeds=tuple(range(30)),
                      fidelity_draws=1000),
}


def get_config(profile: str, **overrides: Any) -> NDConfig:
    """The :class:`NDConfig` of ``profile`` with ``overrides`` applied.

    Example
    -------
    >>> get_config("smoke", steps=5).steps
    5
    """
    paths.check_profile(profile)
    return replace(PROFILES[profile], **overrides)


# --------------------------------------------------------------------------------------------
# Data and model
# --------------------------------------------------------------------------------------------
def load_data(config: NDConfig, seed: int) -> dict[str, torch.Tensor]:
    """Digits one-vs-rest, stratified train/test split drawn from ``seed``, standardised with
    the training mean/std.

    Returns ``{"x_train": (Ntr, 64) float32, "y_train": (Ntr,) float32, "x_test", "y_test"}``.

    Example
    -------
    >>> d = load_data(PROFILES["smoke"], seed=0)
    >>> d["x_train"].shape[1], round(float(d["y_train"].mean()), 2)
    (64, 0.1)
    """
    from sklearn.datasets import load_digits

    x, digit = load_digits(return_X_y=True)
    y = (digit == config.positive_digit).astype(np.float32)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7041]))
    train = np.zeros(len(y), dtype=bool)
    for cls in (0.0, 1.0):  # stratified split
        idx = np.flatnonzero(y == cls)
        k = int(round(config.train_fraction * len(idx)))
        train[rng.choice(idx, size=k, replace=False)] = True
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std < 1e-6] = 1.0
    x = ((x - mean) / std).astype(np.float32)
    t = torch.from_numpy
    return {"x_train": t(x[train]), "y_train": t(y[train]), "x_test": t(x[~train]), "y_test": t(y[~train])}


def make_model(n_features: int, hidden: int, seed: int) -> nn.Module:
    """Scorer ``(N, n_features) -> (N,)``: linear if ``hidden == 0``, else a 1-hidden-layer MLP.

    Example
    -------
    >>> make_model(64, 8, seed=0)(torch.zeros(3, 64)).shape
    torch.Size([3])
    """
    gen_state = torch.random.get_rng_state()
    try:  # parameters from a private seed without touching the global RNG afterwards
        torch.manual_seed(int(seed))
        if hidden == 0:
            body: nn.Module = nn.Linear(n_features, 1)
        else:
            body = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    finally:
        torch.random.set_rng_state(gen_state)
    return nn.Sequential(body, nn.Flatten(0))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread (these matrices are tiny: extra threads only cost, a lot on a
    busy machine) and restore the previous setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _optimizer(config: NDConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)


def train_run(
    config: NDConfig,
    method: str,
    param: Optional[float],
    seed: int,
    data: Optional[dict[str, torch.Tensor]] = None,
) -> dict[str, Any]:
    """Train one scorer with ``method`` (``"full"``, ``"minibatch"`` with batch size ``param``,
    ``"backdrop"`` with mask probability ``param``) for ``config.steps`` updates.

    The model initialisation and the data split depend on ``seed`` only, so all methods of one
    seed start from the same network on the same split (paired comparison).

    Returns a dict with the final ``test_auc``, ``train_auc``, ``train_loss`` (surrogate on the
    full training set), ``skipped`` (minibatch steps with no positive-negative pair, which make
    no update) and ``curve`` = {"step", "test_auc", "train_auc", "train_loss"} lists.

    Example
    -------
    >>> r = train_run(get_config("smoke", steps=3, eval_every=1), "backdrop", 0.9, seed=0)
    >>> len(r["curve"]["step"])
    4
    """
    with _one_thread():
        return _train_run(config, method, param, seed, data)


def _train_run(config: NDConfig, method: str, param: Optional[float], seed: int,
               data: Optional[dict[str, torch.Tensor]]) -> dict[str, Any]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "minibatch" and not (isinstance(param, int) and param >= 2):
        raise ValueError(f"param must be the batch size (int >= 2) for method 'minibatch', got {param!r}")
    if method == "backdrop" and not (isinstance(param, float) and 0 < param < 1):
        raise ValueError(f"param must be the mask probability in (0, 1) for method 'backdrop', got {param!r}")
    data = data if data is not None else load_data(config, seed)
    xtr, ytr, xte, yte = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    n = xtr.shape[0]
    model = make_model(xtr.shape[1], config.hidden, seed)
    opt = _optimizer(config, model.parameters())
    loss_kw = {"surrogate": config.surrogate, "tau": config.tau}
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), 991]).generate_state(1)[0]))
    mask = BackdropMask(param, dims=(0,), generator=gen) if method == "backdrop" else None
    order = torch.randperm(n, generator=gen)
    cursor, skipped = 0, 0
    curve: dict[str, list] = {"step": [], "test_auc": [], "train_auc": [], "train_loss": []}

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            s_tr, s_te = model(xtr), model(xte)
            curve["step"].append(step)
            # stored rounded (6 significant digits) to keep the results JSON small
            curve["train_loss"].append(float(f"{float(pairwise_auc_loss(s_tr, ytr, **loss_kw)):.6g}"))
            curve["train_auc"].append(round(exact_auc(s_tr, ytr), 6))
            curve["test_auc"].append(round(exact_auc(s_te, yte), 6))
        model.train()

    evaluate(0)
    for step in range(1, config.steps + 1):
        if method == "minibatch":
            b = int(param)  # type: ignore[arg-type]
            if cursor + b > n:  # reshuffle each epoch; drop the incomplete tail
                order, cursor = torch.randperm(n, generator=gen), 0
            idx = order[cursor:cursor + b]
            cursor += b
            xb, yb = xtr[idx], ytr[idx]
            if yb.sum() == 0 or yb.sum() == len(yb):
                skipped += 1
                if step % config.eval_every == 0 or step == config.steps:
                    evaluate(step)
                continue
            loss = pairwise_auc_loss(model(xb), yb, **loss_kw)
        else:
            scores = model(xtr)
            if mask is not None:
                scores = mask(scores)  # identity forward; backward through kept samples only
            loss = pairwise_auc_loss(scores, ytr, **loss_kw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % config.eval_every == 0 or step == config.steps:
            evaluate(step)
    return {
        "method": method, "param": param, "seed": int(seed),
        "test_auc": curve["test_auc"][-1], "train_auc": curve["train_auc"][-1],
        "train_loss": curve["train_loss"][-1], "skipped": skipped, "curve": curve,
    }


def _flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else 0.0


def gradient_fidelity(
    config: NDConfig,
    seed: int = 0,
    n_draws: Optional[int] = None,
    pretrain_steps: int = 0,
    data: Optional[dict[str, torch.Tensor]] = None,
) -> list[dict[str, Any]]:
    """How well does each stochastic gradient estimate the full-batch gradient of the surrogate?

    At the network of ``seed`` (after ``pretrain_steps`` full-batch updates), draw ``n_draws``
    (default ``config.fidelity_draws``) minibatch gradients per batch size and backdrop gradients
    per mask probability, and compare them with the exact full-batch gradient ``g``
    (all parameters flattened):

    * ``rel_bias``: ``|E[v] - g| / |g|``, estimated without the finite-draw noise as
      ``sqrt(max(0, |mean - g|^2 - tr(Cov)/K)) / |g|`` (0 = unbiased; a minibatch loss only
      sees within-batch pairs, so its expected gradient is the gradient of a different loss);
    * ``bias_resolution``: ``sqrt(tr(Cov)/K) / |g|``, the noise of the mean of the K draws (a
      ``rel_bias`` below about twice this is not resolved);
    * ``rel_noise``: ``sqrt(tr(Cov)) / |g|``, the spread of one draw;
    * ``single_cos``: mean cosine between a single draw and ``g``.

    Returns one dict per setting (``method``, ``param``, ``label`` and the three numbers).

    Example
    -------
    >>> f = gradient_fidelity(get_config("smoke"), n_draws=10)
    >>> [r["label"] for r in f]
    ['minibatch B=32', 'backdrop p=0.9']
    """
    n_draws = config.fidelity_draws if n_draws is None else int(n_draws)
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2, got {n_draws}")
    with _one_thread():
        return _gradient_fidelity(config, seed, n_draws, pretrain_steps, data)


def _gradient_fidelity(config: NDConfig, seed: int, n_draws: int, pretrain_steps: int,
                       data: Optional[dict[str, torch.Tensor]]) -> list[dict[str, Any]]:
    data = data if data is not None else load_data(config, seed)
    xtr, ytr = data["x_train"], data["y_train"]
    n = xtr.shape[0]
    model = make_model(xtr.shape[1], config.hidden, seed)
    params = list(model.parameters())
    kw = {"surrogate": config.surrogate, "tau": config.tau}
    if pretrain_steps:
        opt = _optimizer(config, params)
        for _ in range(int(pretrain_steps)):
            opt.zero_grad(set_to_none=True)
            pairwise_auc_loss(model(xtr), ytr, **kw).backward()
            opt.step()
    g = _flat_grad(pairwise_auc_loss(model(xtr), ytr, **kw), params)
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), 5003]).generate_state(1)[0]))
    out = []
    for method, param in config.runs()[1:]:
        draws = []
        for _ in range(n_draws):
            if method == "minibatch":
                idx = torch.randperm(n, generator=gen)[: int(param)]  # type: ignore[arg-type]
                loss = pairwise_auc_loss(model(xtr[idx]), ytr[idx], **kw)
            else:
                scores = BackdropMask(float(param), dims=(0,), generator=gen)(model(xtr))  # type: ignore[arg-type]
                loss = pairwise_auc_loss(scores, ytr, **kw)
            draws.append(_flat_grad(loss, params))
        d = torch.stack(draws).double()
        g64 = g.double()
        mean = d.mean(0)
        trace = float(((d - mean) ** 2).sum(1).mean()) * n_draws / max(1, n_draws - 1)  # tr(Cov), unbiased
        bias2 = float(((mean - g64) ** 2).sum()) - trace / n_draws
        gn = float(g64.norm())
        out.append({"method": method, "param": param, "label": _label(method, param),
                    "rel_bias": math.sqrt(max(0.0, bias2)) / gn, "rel_noise": math.sqrt(trace) / gn,
                    "bias_resolution": math.sqrt(trace / n_draws) / gn,
                    "single_cos": float(np.mean([_cos(v, g64) for v in d]))})
    return out


def _label(method: str, param: Optional[float]) -> str:
    if method == "full":
        return "full batch"
    if method == "minibatch":
        return f"minibatch B={int(param)}"  # type: ignore[arg-type]
    return f"backdrop p={param:g}"


def run_experiment(
    profile: str = "smoke",
    config: Optional[NDConfig] = None,
    progress: bool = True,
    write: bool = True,
) -> dict[str, Any]:
    """Run every (method, parameter) of the profile for every seed; optionally write results.

    Parameters
    ----------
    profile : ``"smoke"``, ``"quick"`` or ``"paper"`` (chooses the config and results folder).
    config : override the profile's :class:`NDConfig` (the results still go to ``profile``).
    progress : show a tqdm bar (``TQDM_DISABLE=1`` also silences it).
    write : write ``results/<profile>/nondecomposable.json`` and ``.csv``.

    Returns
    -------
    dict with ``profile``, ``config``, ``data`` (sizes), ``runs`` (per seed, with curves),
    ``summary`` (per setting: test AUC mean ± std over seeds, paired difference to full batch,
    mean curves), ``versions`` and ``wall_s``.

    Example
    -------
    >>> res = run_experiment("smoke", progress=False, write=False)   # doctest: +SKIP
    """
    from tqdm import tqdm

    paths.check_profile(profile)
    config = config or PROFILES[profile]
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with _one_thread():
        jobs = [(seed, m, p) for seed in config.seeds for m, p in config.runs()]
        data_info: dict[str, Any] = {}
        cache: dict[int, dict[str, torch.Tensor]] = {}
        for seed, method, param in tqdm(jobs, desc="nondecomposable", **({} if progress else {"disable": True})):
            if seed not in cache:
                cache.clear()
                cache[seed] = load_data(config, seed)
                d = cache[seed]
                data_info = {"n_train": int(d["x_train"].shape[0]), "n_test": int(d["x_test"].shape[0]),
                             "pos_train": int(d["y_train"].sum()), "pos_test": int(d["y_test"].sum()),
                             "n_features": int(d["x_train"].shape[1])}
            r0 = time.perf_counter()
            r = train_run(config, method, param, seed, data=cache[seed])
            r["label"] = _label(method, param)
            r["wall_s"] = round(time.perf_counter() - r0, 3)
            runs.append(r)
        fidelity: dict[str, Any] = {}
        if config.fidelity_draws:
            d0 = load_data(config, config.seeds[0])
            fidelity = {"seed": config.seeds[0], "n_draws": config.fidelity_draws,
                        "at_init": gradient_fidelity(config, config.seeds[0], data=d0),
                        "after_100_steps": gradient_fidelity(config, config.seeds[0], pretrain_steps=100, data=d0)}
    result = {
        "experiment": "nondecomposable",
        "profile": profile,
        "config": asdict(config),
        "data": {"source": "sklearn.datasets.load_digits", "task": f"digit {config.positive_digit} vs rest", **data_info},
        "summary": _summarise(config, runs),
        "fidelity": fidelity,
        "runs": runs,
        "versions": paths.versions(),
        "torch_threads_used": 1,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    if write:
        write_results(result, profile)
    return result


def _r6(a: np.ndarray) -> list[float]:
    """Values rounded to 6 significant digits (for the JSON)."""
    return [float(f"{v:.6g}") for v in np.asarray(a, dtype=float)]


def _summarise(config: NDConfig, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    full = {r["seed"]: r["test_auc"] for r in runs if r["method"] == "full"}
    out = []
    for method, param in config.runs():
        rs = [r for r in runs if r["method"] == method and r["param"] == param]
        if not rs:
            continue
        auc = np.array([r["test_auc"] for r in rs])
        diff = np.array([r["test_auc"] - full[r["seed"]] for r in rs if r["seed"] in full])
        curves = np.array([r["curve"]["test_auc"] for r in rs])
        losses = np.array([r["curve"]["train_loss"] for r in rs])
        ddof = 1 if len(rs) > 1 else 0
        out.append({
            "method": method, "param": param, "label": _label(method, param), "n_seeds": len(rs),
            "test_auc_mean": float(auc.mean()), "test_auc_std": float(auc.std(ddof=ddof)),
            "diff_vs_full_mean": float(diff.mean()) if diff.size else float("nan"),
            "diff_vs_full_std": float(diff.std(ddof=ddof)) if diff.size else float("nan"),
            "train_auc_mean": float(np.mean([r["train_auc"] for r in rs])),
            "train_loss_mean": float(np.mean([r["train_loss"] for r in rs])),
            "skipped_mean": float(np.mean([r["skipped"] for r in rs])),
            "curve_step": rs[0]["curve"]["step"],
            "curve_test_auc_mean": _r6(curves.mean(0)), "curve_test_auc_std": _r6(curves.std(0, ddof=ddof)),
            "curve_train_loss_mean": _r6(losses.mean(0)), "curve_train_loss_std": _r6(losses.std(0, ddof=ddof)),
        })
    return out


CSV_FIELDS = ("method", "param", "label", "seed", "test_auc", "train_auc", "train_loss", "skipped", "wall_s")


def write_results(result: dict[str, Any], profile: str) -> tuple[Any, Any]:
    """Write ``result`` to ``results/<profile>/nondecomposable.json`` and ``.csv`` (one row per
    run), atomically. Returns the two paths."""
    folder = paths.results_dir(profile)
    jpath = paths.write_json(folder / "nondecomposable.json", result)
    buf = _stdio.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in result["runs"]:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    cpath = paths.write_text(folder / "nondecomposable.csv", buf.getvalue())
    return jpath, cpath


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------
def summary_table(result: dict[str, Any], digits: int = 3) -> str:
    """Markdown table: setting, test AUC mean ± std, paired difference to full batch, final
    training surrogate loss. Floats rounded to ``digits``.

    Example
    -------
    >>> print(summary_table(run_experiment("smoke", progress=False, write=False)))  # doctest: +SKIP
    """
    n = result["summary"][0]["n_seeds"] if result["summary"] else 0
    steps = result["config"]["steps"]
    lines = [f"| setting | test AUC (mean ± std, {n} seeds) | Δ vs full batch (paired, mean ± std) "
             f"| train surrogate loss | steps without a pair (of {steps}) |",
             "|---|---|---|---|---|"]
    for s in result["summary"]:
        diff = "—" if s["method"] == "full" else f"{s['diff_vs_full_mean']:+.{digits}f} ± {s['diff_vs_full_std']:.{digits}f}"
        lines.append(f"| {s['label']} | {s['test_auc_mean']:.{digits}f} ± {s['test_auc_std']:.{digits}f} | {diff} "
                     f"| {s['train_loss_mean']:.{digits}f} | {s['skipped_mean']:.0f} |")
    return "\n".join(lines)


def fidelity_table(result: dict[str, Any], digits: int = 3) -> str:
    """Markdown table of :func:`gradient_fidelity` (at initialisation and after 100 full-batch
    steps) stored in ``result["fidelity"]``; empty string if it was skipped."""
    fid = result.get("fidelity") or {}
    if not fid:
        return ""
    lines = ["| setting | bias ± resolution, init | noise, init | cos(draw, g), init "
             "| bias ± resolution, 100 steps | noise, 100 steps | cos(draw, g), 100 steps |",
             "|---|---|---|---|---|---|---|"]
    for a, b in zip(fid["at_init"], fid["after_100_steps"]):
        cells = []
        for r in (a, b):
            cells += [f"{r['rel_bias']:.{digits}f} ± {r['bias_resolution']:.{digits}f}",
                      f"{r['rel_noise']:.{digits}f}", f"{r['single_cos']:.{digits}f}"]
        lines.append(f"| {a['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(result: dict[str, Any]) -> str:
    """A plain-language verdict from the numbers: does the best backdrop setting beat full-batch
    gradient descent and the best minibatch setting by more than the seed-to-seed noise
    (standard error of the paired difference)?"""
    summ = {(s["method"], s["param"]): s for s in result["summary"]}
    full = summ.get(("full", None))
    bd = [s for s in result["summary"] if s["method"] == "backdrop"]
    mb = [s for s in result["summary"] if s["method"] == "minibatch"]
    if full is None or not bd:
        return "Not enough settings to compare."
    best_bd = max(bd, key=lambda s: s["test_auc_mean"])
    n = best_bd["n_seeds"]
    se = best_bd["diff_vs_full_std"] / math.sqrt(n) if n > 1 else float("inf")
    d = best_bd["diff_vs_full_mean"]
    if n < 3:
        call = "too few seeds to tell"
    elif d > 2 * se:
        call = "backdrop is better"
    elif d < -2 * se:
        call = "backdrop is worse"
    else:
        call = "no difference beyond the seed-to-seed noise"
    text = (f"Best backdrop setting ({best_bd['label']}): test AUC {best_bd['test_auc_mean']:.3f} ± "
            f"{best_bd['test_auc_std']:.3f} against {full['test_auc_mean']:.3f} ± {full['test_auc_std']:.3f} for "
            f"full-batch gradient descent; paired difference {d:+.3f} ± {se:.3f} (s.e.): {call}.")
    if len(bd) > 1:
        text += (f" (The best of {len(bd)} mask probabilities was picked, so a margin of two standard errors "
                 "is optimistic.)")
    if mb:
        best_mb = max(mb, key=lambda s: s["test_auc_mean"])
        by_seed = {r["seed"]: r["test_auc"] for r in result["runs"] if r["label"] == best_mb["label"]}
        gaps = np.array([r["test_auc"] - by_seed[r["seed"]] for r in result["runs"]
                         if r["label"] == best_bd["label"] and r["seed"] in by_seed])
        gse = gaps.std(ddof=1) / math.sqrt(gaps.size) if gaps.size > 1 else float("nan")
        text += (f" Best minibatch setting ({best_mb['label']}): {best_mb['test_auc_mean']:.3f} ± "
                 f"{best_mb['test_auc_std']:.3f}; backdrop − minibatch (paired) = {gaps.mean():+.3f} ± {gse:.3f} (s.e.).")
    return text


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def _cmd(args: argparse.Namespace) -> None:
    overrides = {k: v for k, v in (("steps", args.steps), ("seeds", tuple(range(args.seeds)) if args.seeds else None))
                 if v is not None}
    config = get_config(args.profile, **overrides)
    result = run_experiment(args.profile, config=config, progress=True, write=True)
    print(summary_table(result))
    print(verdict(result))
    print(f"wrote {paths.results_dir(args.profile) / 'nondecomposable.json'} (+ .csv) in {result['wall_s']:.1f} s")


def add_cli(subparsers: Any) -> None:
    """Register ``backdrop-repro nondecomposable --profile smoke|quick|paper``."""
    p = subparsers.add_parser("nondecomposable", help="pairwise-AUC experiment: full batch vs minibatch vs per-sample backdrop")
    p.add_argument("--profile", choices=profiles.names(), default="quick")
    p.add_argument("--steps", type=int, default=None, help="override the number of updates")
    p.add_argument("--seeds", type=int, default=None, help="override: use seeds 0..SEEDS-1")
    p.set_defaults(func=_cmd)
