"""How well does one stochastic gradient estimate the full-batch gradient of a pairwise AUC loss?

A diagnostic of the non-decomposable experiment (:mod:`.nondecomposable`), kept apart so that it
depends only on the AUC maths and the mask: it receives a network and a training set and draws
minibatch gradients (the surrogate of B random samples) and per-sample backdrop gradients (the
surrogate of all N samples with a mask over the scores) and compares them with the exact
full-batch gradient.

Example
-------
>>> rows = gradient_fidelity(model, x, y, [("backdrop p=0.9", "backdrop", 0.9)], n_draws=50)  # doctest: +SKIP
>>> print(fidelity_table({"fidelity": {"at_init": rows, "after_100_steps": rows}}))         # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...checks import is_int
from ...seeds import torch_generator
from ...auc import pairwise_auc_loss
from ...masking import BackdropMask
from ...render import table as markdown_table

__all__ = ["gradient_fidelity", "fidelity_table"]


def _flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else 0.0


def gradient_fidelity(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: Sequence[tuple[str, str, float]],
    n_draws: int = 200,
    seed: int = 0,
    surrogate: str = "sigmoid",
    tau: float = 1.0,
) -> list[dict[str, Any]]:
    """Bias, noise and cosine of stochastic gradients against the exact full-batch gradient ``g``.

    Parameters
    ----------
    model : scorer ``(N, F) -> (N,)``; its parameters are read, never updated.
    x, y : the training set, ``(N, F)`` float and ``(N,)`` 0/1.
    settings : ``(label, method, param)`` triples, ``method`` ``"minibatch"`` (``param`` = batch
        size B ≤ N) or ``"backdrop"`` (``param`` = blocking probability in (0, 1)).
    n_draws : K ≥ 2 stochastic gradients per setting.
    seed : seeds the draws (batches and masks).

    Returns one dict per setting, with ``label``, ``method``, ``param`` and (all parameters
    flattened, divided by ``|g|``):

    * ``rel_bias``: ``|E[v] - g| / |g|``, estimated without the finite-draw noise as
      ``sqrt(max(0, |mean - g|^2 - tr(Cov)/K)) / |g|`` (0 = unbiased; a minibatch loss only
      sees within-batch pairs, so its expected gradient is the gradient of a different loss);
    * ``bias_resolution``: ``sqrt(tr(Cov)/K) / |g|``, the noise of the mean of the K draws (a
      ``rel_bias`` below about twice this is not resolved);
    * ``rel_noise``: ``sqrt(tr(Cov)) / |g|``, the spread of one draw;
    * ``single_cos``: mean cosine between a single draw and ``g``.

    Example
    -------
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(0))
    >>> x, y = torch.randn(40, 4), (torch.arange(40) % 4 == 0).float()
    >>> [r["label"] for r in gradient_fidelity(net, x, y, [("bd", "backdrop", 0.5)], n_draws=5)]
    ['bd']
    """
    if not is_int(n_draws) or n_draws < 2:
        raise ValueError(f"n_draws must be an int >= 2, got {n_draws!r}")
    n = x.shape[0]
    params = list(model.parameters())
    kw = {"surrogate": surrogate, "tau": tau}
    g64 = _flat_grad(pairwise_auc_loss(model(x), y, **kw), params).double()
    gn = float(g64.norm())
    gen = torch_generator(seed, "nd_fidelity")
    out = []
    for label, method, param in settings:
        if method == "minibatch" and not 2 <= int(param) <= n:
            raise ValueError(f"settings: batch size must be in [2, {n}], got {param!r}")
        if method not in ("minibatch", "backdrop"):
            raise ValueError(f"settings: method must be 'minibatch' or 'backdrop', got {method!r}")
        draws = []
        for _ in range(int(n_draws)):
            if method == "minibatch":
                idx = torch.randperm(n, generator=gen)[: int(param)]
                loss = pairwise_auc_loss(model(x[idx]), y[idx], **kw)
            else:
                loss = pairwise_auc_loss(BackdropMask(float(param), dims=(0,), generator=gen)(model(x)), y, **kw)
            draws.append(_flat_grad(loss, params))
        d = torch.stack(draws).double()                                    # (K, n_params)
        mean = d.mean(0)
        trace = float(((d - mean) ** 2).sum(1).sum()) / (n_draws - 1)      # tr(Cov), unbiased
        bias2 = float(((mean - g64) ** 2).sum()) - trace / n_draws
        out.append({"method": method, "param": param, "label": label,
                    "rel_bias": math.sqrt(max(0.0, bias2)) / gn, "rel_noise": math.sqrt(trace) / gn,
                    "bias_resolution": math.sqrt(trace / n_draws) / gn,
                    "single_cos": float(np.mean([_cos(v, g64) for v in d]))})
    return out


def fidelity_table(result: dict[str, Any], digits: int = 3) -> str:
    """Markdown table of ``result["fidelity"]`` (rows of :func:`gradient_fidelity` at
    initialisation and after some full-batch steps); empty string if the diagnostic was skipped.

    Example: ``fidelity_table({"fidelity": {}}) == ""``.
    """
    fid: Optional[dict[str, Any]] = result.get("fidelity") or None
    if not fid:
        return ""
    k = fid.get("pretrain_steps", 100)
    header = ["setting", "bias ± resolution, init", "noise, init", "cos(draw, g), init",
              f"bias ± resolution, {k} steps", f"noise, {k} steps", f"cos(draw, g), {k} steps"]
    rows = []
    for a, b in zip(fid["at_init"], fid["after_100_steps"]):
        cells = [a["label"]]
        for r in (a, b):
            cells += [f"{r['rel_bias']:.{digits}f} ± {r['bias_resolution']:.{digits}f}",
                      f"{r['rel_noise']:.{digits}f}", f"{r['single_cos']:.{digits}f}"]
        rows.append(cells)
    return markdown_table(header, rows)
