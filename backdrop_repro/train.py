"""Training loop: full-sample forward passes, cross-entropy, Adam/SGD, checkpoints, exact resume.

Every image is processed whole (no crops): the backdrop masks inside the model decide which
parts of it send a gradient back. Each epoch visits the training samples in a fresh order,
evaluates (in ``eval()`` mode, masks off) on the training and the held-out set, appends the
metrics to the history and writes a checkpoint atomically. ``resume=True`` restarts from the
checkpoint: model, optimiser, mask-generator states and history, so on the CPU a run killed after
any epoch and resumed ends bit-identical to an uninterrupted one.

Speed: the data stay on the device for the whole run, the running loss is summed on the device
(one host synchronisation per epoch, none per step), evaluation runs in large no-grad batches,
``channels_last`` converts the network (and so its feature maps) to NHWC, which is about 1.6x
faster for the 2-scale CNN on a CPU; on CUDA ``cudnn.benchmark`` is on and ``precision`` may be
``"tf32"`` or ``"bf16"`` (autocast).

Determinism: the caller seeds the model's initialisation and its masks' ``torch.Generator``
(see :func:`backdrop_repro.experiments.build_model`); the data order of epoch ``e`` depends only
on ``(config.seed, e)``. On a CPU, the same seed, settings, thread count and machine type give
bit-identical runs. On a GPU, runs are repeatable to rounding only: cuDNN picks algorithms
(``benchmark``) whose summation order may differ between runs, and tf32/bf16 round differently.

Example
-------
>>> import torch
>>> from backdrop_repro.models import TwoScaleCNN
>>> net = TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)
>>> x, y = torch.randn(8, 1, 16, 16), torch.arange(8) % 4
>>> out = train(net, (x, y), (x, y), TrainConfig(epochs=2, batch_size=4), progress=False)
>>> [h["epoch"] for h in out["history"]]
[1, 2]
"""
from __future__ import annotations

import contextlib
import dataclasses
import numbers
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .checks import check_labels, check_optimizer, OPTIMIZERS, resolve_device
from .machine import free_disk
from .paths import atomic_path
from .masking import BackdropMask

__all__ = ["TrainConfig", "train", "evaluate", "as_tensors", "check_images", "make_optimizer", "OPTIMIZERS", "CheckpointWriteError",
           "save_checkpoint"]


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, quota, I/O error): one line naming the file."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save(state)`` atomically to ``path``; a failed write (torch raises a bare ``RuntimeError``
    such as "enforce fail at inline_container.cc ... file write failed" on a full disk) becomes
    :class:`CheckpointWriteError` naming the file, the free space and what to do; the old
    checkpoint, if any, is kept. Example: ``save_checkpoint(state, Path("run.pt"))``."""
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (RuntimeError, OSError) as err:
        if isinstance(err, CheckpointWriteError):
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        try:
            free = f"{free_disk(path.parent) / 2 ** 20:.0f} MB free there"
        except OSError:
            free = "free space unknown"
        raise CheckpointWriteError(f"cannot write the checkpoint {path} ({first[:160]}; {free}): free some disk "
                                   "space or point BACKDROP_REPRO_DATA at a larger disk, then run the same "
                                   "command again (it resumes)") from None

PRECISIONS = ("fp32", "tf32", "bf16")
SELECTIONS = ("last", "val")
_BUDGET_DEFAULTS = {"patience": None, "loss_target": None, "select": "last"}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    epochs : passes over the training set. batch_size : samples per step (one mask draw per
    step, shared by the batch). lr, optimizer (``"adam"`` | ``"sgd"``), weight_decay, momentum
    (SGD only): the optimiser's fields (the trainer's own; a profile's
    ``OptimSection`` holds the same names, and both go through the one check
    ``checks.check_optimizer``). seed : data order. eval_every : evaluate every this many epochs (and always at
    the last) on the training and validation data. test_every : evaluate on the test data every
    this many epochs (None: with every evaluation; the last epoch always). eval_batch_size :
    samples per evaluation forward pass. device : torch device. channels_last : NHWC memory
    format. precision : ``"fp32"``, ``"tf32"`` (CUDA matmul/conv in TF32) or ``"bf16"`` (autocast).

    Convergence budget (all None / ``"last"``: a fixed budget of ``epochs``): ``epochs`` is then
    the cap. At an evaluation epoch training stops when the training loss (eval mode, masks off)
    is below ``loss_target`` or when the best validation score (accuracy, ties broken by the
    lower validation loss) has not improved for ``patience`` epochs. ``select="val"`` scores the test set once, at the end, with the weights of the epoch
    of best validation accuracy (ties: lower validation loss, then the earlier epoch); it needs
    validation data. Fields left at these defaults are omitted from :meth:`to_dict`, so the
    identity of fixed-budget runs is what it was before they existed.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    epochs: int = 20
    batch_size: int = 8
    seed: int = 0
    eval_every: int = 1
    eval_batch_size: int = 64
    device: str = "cpu"
    test_every: Optional[int] = None
    channels_last: bool = False
    precision: str = "fp32"
    patience: Optional[int] = None
    loss_target: Optional[float] = None
    select: str = "last"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "eval_batch_size", "test_every", "patience"):
            v = getattr(self, name)
            if v is None and name in ("test_every", "patience"):
                continue
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        check_optimizer(self)                       # the optimiser's one check (profiles.OptimSection's too)
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, got {self.select!r}")
        if self.loss_target is not None:
            if not (isinstance(self.loss_target, numbers.Real) and not isinstance(self.loss_target, bool)
                    and self.loss_target > 0):
                raise ValueError(f"loss_target must be a positive float or None, got {self.loss_target!r}")
            object.__setattr__(self, "loss_target", float(self.loss_target))
        object.__setattr__(self, "seed", int(self.seed))

    def to_dict(self) -> dict[str, Any]:
        """Every field, except the convergence-budget fields left at their defaults."""
        d = dataclasses.asdict(self)
        for k, default in _BUDGET_DEFAULTS.items():
            if d[k] == default:
                del d[k]
        return d

    @property
    def converges(self) -> bool:
        """True when a stopping rule or validation selection is set (``epochs`` is a cap)."""
        return self.patience is not None or self.loss_target is not None or self.select != "last"


def as_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 1, H, W) float32, labels (N,) int64)`` from a dataset or a pair.

    ``data`` : an object with ``.images`` ((N, H, W) or (N, 1, H, W)) and ``.labels`` (e.g. a
    :class:`backdrop_repro.data.files.GPDataset`) or a pair ``(images, labels)`` of arrays/tensors.
    Example: ``x, y = as_tensors((np.zeros((2, 8, 8)), [0, 1]))``.
    """
    if hasattr(data, "images") and hasattr(data, "labels"):
        images, labels = data.images, data.labels
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    else:
        raise ValueError("data must be a dataset with .images/.labels or a pair (images, labels)")
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images, dtype=np.float32))
    y = torch.from_numpy(check_labels(labels, "labels"))     # integers >= 0: 1.7 is never truncated to 1
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must have shape (N, H, W) or (N, 1, H, W), got {tuple(x.shape)}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    return x.float(), y


def check_images(images: torch.Tensor, name: str) -> None:
    """One ``ValueError`` naming the split ``name`` when ``images`` (N, ...) holds no image or a
    non-finite pixel (NaN or inf): a NaN image scores as some class and is counted, so its accuracy
    (0.25 on 4 classes) would be a number without meaning. Example: ``check_images(x, "test_data")``."""
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 images): every split needs at least one image")
    bad = ~torch.isfinite(images.reshape(images.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise ValueError(f"{name} holds non-finite pixels (NaN or inf) in {int(bad.sum())} of {images.shape[0]} "
                         f"images (the first: image {first}); images must be finite")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
             device: str | torch.device = "cpu", predictions: bool = False) -> dict[str, Any]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on ``x (N,1,H,W)``, ``y (N,)``.

    ``predictions=True`` adds ``"predictions"``: the predicted class of every image (a list of
    ints, input order). Example: ``evaluate(net, x, y)`` -> ``{"loss": 1.38, "accuracy": 0.25}``.
    """
    if len(x) == 0:
        raise ValueError("x is empty (0 images): evaluate needs at least one image")
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    preds = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        out = model(xb).float()
        loss += nn.functional.cross_entropy(out, yb, reduction="sum").double()
        am = out.argmax(dim=1)
        correct += (am == yb).sum()
        if predictions:
            preds.append(am)
    model.train(was_training)
    res: dict[str, Any] = {"loss": float(loss) / len(x), "accuracy": int(correct) / len(x)}
    if predictions:
        res["predictions"] = torch.cat(preds).cpu().tolist() if preds else []
    return res


def _generators(model: nn.Module) -> list[torch.Generator]:
    gens: list[torch.Generator] = []
    for m in model.modules():
        if isinstance(m, BackdropMask) and m.generator is not None and all(m.generator is not g for g in gens):
            gens.append(m.generator)
    return gens


def make_optimizer(params: Any, optimizer: str, lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    """The package's one optimizer factory: ``"adam"`` (``momentum`` unused) or ``"sgd"`` (with ``momentum``).

    Example: ``make_optimizer(net.parameters(), "sgd", lr=0.1, weight_decay=0.0, momentum=0.9)``.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _load_checkpoint(path: Path, device: torch.device) -> Optional[dict[str, Any]]:
    """The checkpoint's state, or None (with a warning naming the file) if it cannot be read or does not
    hold the training time of its epochs: a checkpoint is a cache, so such a one is discarded and the run
    starts again."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)   # tensors and plain data only: never code
        if not isinstance(state, dict) or not {"epoch", "model", "optimizer", "generators", "history", "config"} <= set(state):
            raise ValueError("missing keys")
    except Exception as err:  # noqa: BLE001 - any unreadable file is treated the same way
        warnings.warn(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); deleting it and "
                      "training this run from the start", RuntimeWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    if "elapsed_s" not in state:             # its run's time would be lost: a record states the training time
        warnings.warn(f"checkpoint {path} does not hold the training time of its epochs (written before "
                      "checkpoints kept it); deleting it and training this run from the start", RuntimeWarning,
                      stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    return state


@contextlib.contextmanager
def _precision(precision: str, device: torch.device):
    """Yield a factory of autocast contexts for ``precision``; TF32 switched on (and restored) on CUDA."""
    cuda = device.type == "cuda"
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        if precision == "bf16":
            yield lambda: torch.autocast(device.type, dtype=torch.bfloat16)
        else:
            yield contextlib.nullcontext
    finally:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


def _order(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))


def train(
    model: nn.Module,
    train_data: Any,
    test_data: Any,
    config: TrainConfig = TrainConfig(),
    checkpoint: Optional[str | os.PathLike] = None,
    resume: bool = False,
    progress: bool = True,
    callback: Optional[Callable[[dict], None]] = None,
    val_data: Any = None,
) -> dict[str, Any]:
    """Train ``model`` with cross-entropy on ``train_data``; evaluate on ``test_data`` each epoch.

    Parameters
    ----------
    model : a classifier ``(N, 1, H, W) -> (N, C)`` (e.g. :class:`~backdrop_repro.models.TwoScaleCNN`);
        its backdrop masks' generators are saved in the checkpoints.
    train_data, test_data : datasets or ``(images, labels)`` pairs (see :func:`as_tensors`).
    config : :class:`TrainConfig`.
    checkpoint : file written (atomically) after every epoch; required for ``resume``.
    resume : continue from ``checkpoint`` if it exists (its config must equal ``config``).
    progress : show a tqdm bar over epochs (``TQDM_DISABLE=1`` silences it too).
    callback : called with each epoch's metrics after its checkpoint is written.
    val_data : optional validation data (evaluated with the training data: model selection
        uses it, never the test data).

    Returns
    -------
    ``{"history": [per-epoch dicts: epoch, train_loss (running, masks on), and at evaluated
    epochs train_eval_loss, train_accuracy, val_loss/val_accuracy (with ``val_data``) and, at test
    epochs, test_loss, test_accuracy], "final": the last epoch's metrics (with ``select="val"``:
    the selected epoch's, with the test set scored at its weights; with a convergence budget also
    ``selected_epoch``, ``stopped_epoch``, ``stop_reason``: ``loss_target`` | ``patience`` | ``cap``),
    "predictions": {"val": [...], "test": [...]} the predicted class of every image at the
    scored weights, "failed": None, or why the run failed (a non-finite training loss stops it:
    such a run is not a result), "epochs_run": epochs trained by this call, "wall_time_s": the run's
    training time, resumed calls included (the epochs a checkpoint brought back count the time
    they took when trained; an epoch lost to an interruption is not counted)}``.
    After ``select="val"`` the model holds the selected weights.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    device = torch.device(resolve_device(config.device, what="device"))
    splits = {"train_data": as_tensors(train_data), "test_data": as_tensors(test_data)}
    if val_data is not None:
        splits["val_data"] = as_tensors(val_data)
    for name, (images, _) in splits.items():        # before any step: an empty or NaN split is no result
        check_images(images, name)
    x, y = (v.to(device) for v in splits["train_data"])
    xt, yt = (v.to(device) for v in splits["test_data"])
    xv, yv = (v.to(device) for v in splits["val_data"]) if val_data is not None else (None, None)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if heads:                                  # a label >= the number of outputs: one line, before any step
        n_out = heads[-1].out_features
        for split, lab in (("train", y), ("test", yt), ("val", yv)):
            if lab is not None and lab.numel() and int(lab.max()) >= n_out:
                raise ValueError(f"{split} labels must be class labels in [0, {n_out}) (the model has {n_out} "
                                 f"outputs), got {int(lab.max())}")
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if (config.select == "val" or config.patience is not None) and val_data is None:
        raise ValueError("config.select='val' and config.patience need val_data (a validation split)")
    opt = make_optimizer(model.parameters(), config.optimizer, config.lr, config.weight_decay, config.momentum)
    gens = _generators(model)
    history: list[dict[str, Any]] = []
    start = 0
    best: Optional[dict[str, Any]] = None      # epoch, key, weights of the best validation epoch
    before = 0.0                               # training time of the epochs a checkpoint brought back
    stopped: Optional[str] = None              # why training ended before the cap
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if resume and ckpt is not None and ckpt.exists():
        state = _load_checkpoint(ckpt, device)
        if state is not None:
            if state["config"] != config.to_dict():
                raise ValueError(f"checkpoint {ckpt} was written with another config: {state['config']} != {config.to_dict()}")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if len(state["generators"]) != len(gens):
                raise ValueError(f"checkpoint {ckpt} holds {len(state['generators'])} mask generators, the model has {len(gens)}")
            for g, s in zip(gens, state["generators"]):
                g.set_state(s)
            history, start = state["history"], state["epoch"]
            best, stopped = state.get("best"), state.get("stopped")
            before = float(state["elapsed_s"])
    t0 = time.perf_counter()
    n = len(x)
    test_every = config.test_every or config.eval_every
    in_loop_test = config.select == "last"
    predictions: dict[str, list[int]] = {}
    epochs = range(start + 1, config.epochs + 1) if stopped is None else range(0)
    bar = tqdm(epochs, desc="train", disable=not progress or None, leave=False)
    with _precision(config.precision, device) as autocast:
        for epoch in bar:
            model.train()
            order = _order(config.seed, epoch, n).to(device)
            total = torch.zeros((), device=device)
            for i in range(0, n, config.batch_size):
                idx = order[i:i + config.batch_size]
                xb, yb = x[idx], y[idx]
                opt.zero_grad(set_to_none=True)
                with autocast():
                    loss = nn.functional.cross_entropy(model(xb).float(), yb)
                loss.backward()
                opt.step()
                total += loss.detach() * len(idx)
            rec: dict[str, Any] = {"epoch": epoch, "train_loss": float(total) / n}
            if not np.isfinite(rec["train_loss"]):
                stopped = rec["failed"] = f"non-finite training loss at epoch {epoch}"
            last = epoch == config.epochs
            if stopped is None and (epoch % config.eval_every == 0 or last):
                with autocast():
                    tr = evaluate(model, x, y, config.eval_batch_size, device)
                    rec.update(train_eval_loss=tr["loss"], train_accuracy=tr["accuracy"])
                    if xv is not None:
                        va = evaluate(model, xv, yv, config.eval_batch_size, device, predictions=last and in_loop_test)  # type: ignore[arg-type]
                        rec.update(val_loss=va["loss"], val_accuracy=va["accuracy"])
                        if "predictions" in va:
                            predictions["val"] = va["predictions"]
                if config.converges and xv is not None:
                    key = (rec["val_accuracy"], -rec["val_loss"])
                    if best is None or key > tuple(best["key"]):
                        best = {"epoch": epoch, "key": list(key),
                                "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
                if config.loss_target is not None and rec["train_eval_loss"] < config.loss_target:
                    stopped = "loss_target"
                elif config.patience is not None and best is not None and epoch - best["epoch"] >= config.patience:
                    stopped = "patience"
            if in_loop_test and "failed" not in rec and (epoch % test_every == 0 or last or stopped):
                end = last or stopped is not None
                with autocast():
                    te = evaluate(model, xt, yt, config.eval_batch_size, device, predictions=end)
                rec.update(test_loss=te["loss"], test_accuracy=te["accuracy"])
                if end:
                    predictions["test"] = te["predictions"]
            bar.set_postfix(loss=f"{rec['train_loss']:.3f}")
            history.append(rec)
            if ckpt is not None:
                state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                         "generators": [g.get_state() for g in gens], "history": history,
                         "config": config.to_dict(), "best": best, "stopped": stopped,
                         "elapsed_s": before + time.perf_counter() - t0}
                save_checkpoint(state, ckpt)
            if callback is not None:
                callback(rec)
            if stopped is not None:
                break
        bar.close()
        final = dict(history[-1]) if history else {}
        failed = final.get("failed")
        if not failed and history:
            if config.select == "val" and best is not None:
                model.load_state_dict(best["model"])
                final = dict(next(h for h in history if h["epoch"] == best["epoch"]))
            if config.select == "val" or "test" not in predictions:
                with autocast():
                    va = evaluate(model, xv, yv, config.eval_batch_size, device, predictions=True) if xv is not None else None  # type: ignore[arg-type,assignment]
                    te = evaluate(model, xt, yt, config.eval_batch_size, device, predictions=True)
                if va is not None:
                    predictions["val"] = va.pop("predictions")
                predictions["test"] = te.pop("predictions")
                final.update(test_loss=te["loss"], test_accuracy=te["accuracy"])
        if config.converges and history:
            final.update(selected_epoch=best["epoch"] if (best and config.select == "val") else history[-1]["epoch"],
                         stopped_epoch=history[-1]["epoch"], stop_reason=stopped or "cap")
    return {"history": history, "final": final, "predictions": predictions, "failed": failed,
            "epochs_run": len(history) - start, "wall_time_s": before + time.perf_counter() - t0}
