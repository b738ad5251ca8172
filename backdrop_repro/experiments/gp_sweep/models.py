"""Trained networks of the GP sweep for figures: load final weights, re-train them visibly if missing.

Checkpoints are caches in the data folder (``<data cache>/checkpoints/gp_sweep/<key>.pt``), not
results; a figure cell only loads (:func:`load_model`), and :func:`ensure_models` is the one
explicit, visible step that re-trains missing weights (e.g. on a fresh clone whose run records
came from git). CPU training is deterministic, so the re-trained weights equal the originals.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ...checks import tqdm_disable
from ...machine import torch_threads
from ...models import TwoScaleCNN
from ...train import train
from .plan import RunSpec, ckpt_path
from ...checks import resolve_device
from ..core import build_model, load_data

__all__ = ["ensure_models", "load_model"]


def ensure_models(specs: Sequence[RunSpec], progress: bool = True) -> None:
    """Train (visibly, with a progress bar) the runs among ``specs`` whose final weights are not in
    the data cache, e.g. on a fresh clone whose run records came from git. Deterministic on a CPU."""
    from tqdm import tqdm

    missing = [s for s in specs if not _has_final_checkpoint(s)]
    for s in tqdm(missing, desc="re-training the networks shown in figures", unit="run",
                  disable=tqdm_disable(progress)):
        tr, va, te = load_data(s)
        with torch_threads(s.profile.sweep.threads):
            train(build_model(s), tr, te, s.train_config(resolve_device(None, s.default_device)), checkpoint=ckpt_path(s),
                  resume=True, progress=False, val_data=va)


def _finished_state(spec: RunSpec):
    """The run's checkpoint state if training is over (the cap reached, or stopped by its
    convergence rule, not failed), else None. Loaded as tensors and plain data only."""
    path = ckpt_path(spec)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - unreadable: not there
        return None
    stopped = state.get("stopped")
    if stopped and str(stopped).startswith("non-finite"):
        return None
    return state if (state["epoch"] == spec.train_config().epochs or stopped) else None


def _has_final_checkpoint(spec: RunSpec) -> bool:
    return _finished_state(spec) is not None


def load_model(spec: RunSpec) -> TwoScaleCNN:
    """The run's network with the weights it was scored with, from the data cache; never trains:
    the final weights, or under ``select="val"`` those of the validation-selected epoch.

    Raises ``FileNotFoundError`` naming the checkpoint and the call that makes it
    (:func:`ensure_models`) when the weights are missing or unfinished.
    """
    state = _finished_state(spec)
    if state is None:
        raise FileNotFoundError(f"final weights of run {spec.key} ({spec.label}, seed {spec.seed}) not in "
                                f"{ckpt_path(spec)}: call experiments.ensure_models([...]) to train them")
    model = build_model(spec)
    best = state.get("best")
    use_best = spec.train_config().select == "val" and best is not None
    model.load_state_dict(best["model"] if use_best else state["model"])
    return model.eval()
