"""Data and scorer of the non-decomposable experiment (:mod:`.nondecomposable`).

:func:`load_data`: scikit-learn's bundled ``load_digits`` (1797 8×8 images, nothing is
downloaded) as an imbalanced one-vs-rest task, split per seed into training, validation and test.
:func:`make_model`: a linear scorer or a one-hidden-layer MLP with seeded initial weights.
:func:`n_train`: the training-split size of a config (what the set-up texts quote).

Example
-------
>>> load_data(NDSection(), seed=0)["x_train"].shape
torch.Size([270, 64])
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...seeds import seed_sequence
from ...profiles import NDSection

__all__ = ["load_data", "make_model", "n_train"]


def load_data(config: NDSection, seed: int) -> dict[str, torch.Tensor]:
    """Digits one-vs-rest, stratified train/validation/test split drawn from ``seed``,
    standardised with the mean/std of the training part (validation excluded).

    Returns ``{"x_train": (Ntr, 64) float32, "y_train": (Ntr,) float32, "x_val", "y_val",
    "x_test", "y_test"}``; Ntr ≈ 1797 · train_fraction · (1 − val_fraction).

    Example
    -------
    >>> d = load_data(NDSection(), seed=0)
    >>> d["x_train"].shape, int(d["y_val"].sum())
    (torch.Size([270, 64]), 9)
    """
    from sklearn.datasets import load_digits

    x, digit = load_digits(return_X_y=True)
    y = (digit == config.positive_digit).astype(np.float32)
    rng = np.random.default_rng(seed_sequence(seed, "nd_split"))
    part = np.full(len(y), 2)                      # 0 train, 1 validation, 2 test
    for cls in (0.0, 1.0):                         # stratified split
        idx = rng.permutation(np.flatnonzero(y == cls))
        k = int(round(config.train_fraction * len(idx)))
        k_val = int(round(config.val_fraction * k))
        part[idx[:k - k_val]], part[idx[k - k_val:k]] = 0, 1
    for i, name in enumerate(("training", "validation", "test")):
        if len(np.unique(y[part == i])) < 2:
            raise ValueError(f"train_fraction={config.train_fraction} and val_fraction={config.val_fraction} leave "
                             f"the {name} split without both classes; use larger fractions")
    mean, std = x[part == 0].mean(axis=0), x[part == 0].std(axis=0)
    std[std < 1e-6] = 1.0
    x = ((x - mean) / std).astype(np.float32)
    out = {}
    for i, name in enumerate(("train", "val", "test")):
        out[f"x_{name}"], out[f"y_{name}"] = torch.from_numpy(x[part == i]), torch.from_numpy(y[part == i])
    return out


def n_train(config: NDSection) -> int:
    """Training-split size of ``config`` (an ``NDConfig`` / ``NDSection``): the split of :func:`load_data`
    for the first seed (the stratified split has the same size for every seed).
    Example: ``n_train(NDSection()) == 270``."""
    return int(load_data(config, seed=int(config.seeds[0]))["y_train"].numel())


def make_model(n_features: int, hidden: int, seed: int) -> nn.Module:
    """Scorer ``(N, n_features) -> (N,)``: linear if ``hidden == 0``, else a 1-hidden-layer MLP.
    Initial weights depend on ``seed`` only (the global RNG is left as it was).

    Example
    -------
    >>> make_model(64, 8, seed=0)(torch.zeros(3, 64)).shape
    torch.Size([3])
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        body = (nn.Linear(n_features, 1) if hidden == 0 else
                nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1)))
    return nn.Sequential(body, nn.Flatten(0))
