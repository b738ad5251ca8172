"""The one run core of every experiment: a spec protocol, one model factory, one train-and-record.

The GP sweep (:class:`.gp_sweep.plan.RunSpec`, and its likelihood-classifier reference
:class:`.gp_sweep.plan.ReferenceSpec`), the learnability map (:class:`.learnability.plan.LearnSpec`),
the confirmatory study (:class:`.confirm.plan.ConfirmSpec`) and the GPU window all run through
:func:`run_one` here. A spec says *what* a run is (:class:`Spec`: its key, data recipes, budget, network
options, record path); this module says *how* it runs, once: datasets (:func:`load_data`), the network
(:func:`build_model`), the device (:func:`backdrop_repro.checks.resolve_device`), the training loop
(:func:`backdrop_repro.train.train`), per-scale metrics (:func:`scale_metrics`), the likelihood
classifier for specs of model ``"oracle"`` (:func:`score_oracle`) and the record, written atomically.
*Where* runs go (processes here, SLURM, a GPU window's deadline pool) is a launcher
(:mod:`.launchers`), above this module: nothing here imports a launcher or an experiment.

Example
-------
>>> from backdrop_repro.experiments.gp_sweep.plan import plan_grid
>>> spec = plan_grid("smoke", ["demo"], [0])[0]
>>> type(build_model(spec)).__name__, spec.model
('TwoScaleCNN', 'cnn')
>>> rec = run_one(spec, progress=False)                          # doctest: +SKIP
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .. import machine, paths, profiles, records
from ..checks import resolve_device
from ..machine import torch_threads
from ..seeds import torch_generator
from ..formulations import keep_freed_memory
from ..models import TwoScaleCNN
from ..spectral import SpectralEnergyNet
from ..train import train

__all__ = ["Spec", "MODELS", "load_data", "build_model", "device_name", "scale_metrics", "score_oracle", "run_one",
           "pending"]

#: what a spec's ``model`` may be: a trained network (``cnn``, ``spectral``) or the likelihood classifier
MODELS = ("cnn", "spectral", "oracle")


@runtime_checkable
class Spec(Protocol):
    """What the core needs of a run (every experiment's spec class has it).

    ``profile`` (the resolved :class:`~backdrop_repro.profiles.Profile`, so a worker process needs no
    table), ``seed``, ``model`` (one of :data:`MODELS`), ``label``, ``key`` (a cached hash of
    ``to_dict()``), ``record_path``, ``checkpoint`` (None for a model that does not train), ``threads``
    (torch threads, None: leave them), ``default_device`` (None: ``auto``); ``recipes()`` (train, val,
    test; an oracle's last recipe is its test set), ``to_dict()``, ``find_record()`` (its usable record
    or None), ``record_extra()`` (fields an experiment adds to the record). A trained model's spec also
    has ``train_config(device)``, ``net_options()`` (the network's constructor options) and
    ``fine_prob``/``coarse_prob`` (a CNN's); an oracle's ``oracle_settings()`` and
    ``oracle_extra(images, labels, classifier)``.
    """

    profile: profiles.Profile
    seed: int

    @property
    def model(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def record_path(self) -> Path: ...
    @property
    def checkpoint(self) -> Optional[Path]: ...
    @property
    def threads(self) -> Optional[int]: ...
    @property
    def default_device(self) -> Optional[str]: ...
    def recipes(self) -> tuple: ...
    def to_dict(self) -> dict[str, Any]: ...
    def find_record(self) -> Optional[dict[str, Any]]: ...
    def record_extra(self) -> dict[str, Any]: ...


_DATA_CACHE: dict[str, Any] = {}


def load_data(spec: Spec, progress: bool = False) -> tuple[Any, ...]:
    """The spec's :class:`~backdrop_repro.data.files.GPDataset` per recipe (``(train, val, test)``; an
    oracle's ``(test,)``), cached on disk and, within a process, in memory."""
    from ..data.datasets import build_dataset, recipe_key

    out = []
    for r in spec.recipes():
        k = recipe_key(r)
        if k not in _DATA_CACHE:
            _DATA_CACHE[k] = build_dataset(r, progress=progress)
        out.append(_DATA_CACHE[k])
    return tuple(out)


def build_model(spec: Spec) -> torch.nn.Module:
    """The one model factory: the spec's network, initialised from ``seed``.

    ``model="cnn"``: :class:`~backdrop_repro.models.TwoScaleCNN` with ``net_options()`` (``width``,
    ``kernel``, ``init``, ``n_classes``, ``impl``/``stem``; ``n_fine``/``n_coarse``, else placed by
    receptive field from ``size``/``small_cl``/``large_cl``) and the spec's ``fine_prob``/``coarse_prob``,
    masks drawn from the seed's ``gp_masks`` stream (``Generator(seed + 10**6)``).
    ``model="spectral"``: :class:`~backdrop_repro.spectral.SpectralEnergyNet` with ``net_options()``.
    """
    o = dict(spec.net_options())
    if spec.model == "spectral":
        return SpectralEnergyNet(**o, init_seed=spec.seed)
    if spec.model != "cnn":
        raise ValueError(f"build_model needs a spec of model 'cnn' or 'spectral', got {spec.model!r}")
    size, small_cl, large_cl = o.pop("size"), o.pop("small_cl", None), o.pop("large_cl", None)
    if o.get("impl") == "blocked":
        keep_freed_memory()             # speed only (host malloc): glibc keeps the 1024² maps' memory between steps
    kw = dict(o, fine_prob=spec.fine_prob, coarse_prob=spec.coarse_prob, generator=torch_generator(spec.seed, "gp_masks"),
              init_seed=spec.seed)
    if kw.get("n_fine") is not None and kw.get("n_coarse") is not None:
        net = TwoScaleCNN(**kw)
        net.image_size = size
        return net
    kw.pop("n_fine", None), kw.pop("n_coarse", None)
    return TwoScaleCNN.for_scales(size, small_cl=small_cl, large_cl=large_cl, **kw)


def device_name(dev: str) -> str:
    """What a record says it ran on: the GPU's name, or ``cpu (<processor>, <n> threads)``."""
    if dev.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(dev))
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def scale_metrics(spec: Spec, train_ds: Any, val_ds: Any, test_ds: Any,
                  predictions: dict[str, Sequence[int]]) -> dict[str, Any]:
    """Per-scale accuracy and confusion matrices of a run's predictions.

    A prediction is right on scale ``s`` when the predicted class has the true class's
    correlation length on that scale (the 4-class problem marginalised onto one scale). Returns,
    for each split with predictions (``val``, ``test``): ``<split>_scale_accuracy`` (one accuracy
    per scale, smallest scale first) and ``<split>_confusion`` (rows: true class, columns:
    predicted). Example: all right -> ``test_scale_accuracy == [1.0, 1.0]``.
    """
    classes = spec.recipes()[-1].classes
    out: dict[str, Any] = {}
    for split, ds in (("val", val_ds), ("test", test_ds)):
        if split not in predictions:
            continue
        pred = np.asarray(predictions[split], dtype=np.int64)
        true = np.asarray(ds.labels, dtype=np.int64)
        if pred.shape != true.shape:
            raise ValueError(f"{split} predictions: {pred.shape[0]} for {true.shape[0]} images")
        lengths = np.asarray(classes)                       # (classes, scales)
        out[f"{split}_scale_accuracy"] = [float(np.mean(lengths[pred, s] == lengths[true, s]))
                                          for s in range(lengths.shape[1])]
        conf = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(conf, (true, pred), 1)
        out[f"{split}_confusion"] = conf.tolist()
    return out


def score_oracle(spec: Spec, progress: bool = False) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The likelihood classifier (:func:`backdrop_repro.gp.oracle.oracle_for_recipe` with the spec's
    ``oracle_settings()``) on the spec's test set (its last recipe): ``(final, predictions)``. ``final``:
    ``test_accuracy``, ``exact`` (:func:`~backdrop_repro.gp.oracle.is_exact`: the exact likelihood of
    the data, else an approximation, not a ceiling), the per-scale metrics of :func:`scale_metrics`
    and the spec's ``oracle_extra`` fields."""
    from ..gp import oracle

    test = spec.recipes()[-1]
    ds = load_data(spec, progress=progress)[-1]
    images, labels = np.asarray(ds.images), np.asarray(ds.labels)
    settings = dict(spec.oracle_settings())
    clf = oracle.oracle_for_recipe(test, **settings)
    pred = clf.predict(images)
    settings.pop("floor", None)
    final: dict[str, Any] = {"test_accuracy": float(np.mean(pred == labels)), "exact": bool(oracle.is_exact(test, **settings))}
    final.update(spec.oracle_extra(images, labels, clf))
    final.update(scale_metrics(spec, None, None, ds, {"test": pred.tolist()}))
    return final, {"test": pred.tolist()}


def run_one(spec: Spec, device: Optional[str] = None, reuse: bool = True, progress: bool = False) -> dict[str, Any]:
    """Train (or, for an oracle, score) one run and write its record; with ``reuse`` return the record
    already there (``spec.find_record()``). Resumable: training restarts from the spec's checkpoint;
    ``reuse=False`` deletes the checkpoint first and overwrites the record.

    The record (written atomically to ``spec.record_path``): ``key``, ``config`` (``spec.to_dict()``),
    ``label``, ``history``, ``final`` (a failed run: ``final.failed``, no per-scale metrics), ``predictions``
    (per split, one class digit per image), ``wall_time_s`` (training, or scoring), ``device``
    (:func:`device_name`), ``versions``, and the spec's ``record_extra()``.
    """
    if reuse:
        rec = spec.find_record()
        if rec is not None:
            return rec
    elif spec.checkpoint is not None:
        spec.checkpoint.unlink(missing_ok=True)
    history: list[dict[str, Any]] = []
    with torch_threads(spec.threads):
        if spec.model == "oracle":
            t0 = time.perf_counter()
            final, predictions = score_oracle(spec, progress)
            wall, dev = time.perf_counter() - t0, "cpu"
        else:
            tr, va, te = load_data(spec, progress=progress)
            dev = resolve_device(device, spec.default_device)
            out = train(build_model(spec), tr, te, spec.train_config(dev), checkpoint=spec.checkpoint, resume=True,
                        progress=progress, val_data=va)
            history, final, predictions, wall = out["history"], dict(out["final"]), out["predictions"], out["wall_time_s"]
            if out.get("failed"):
                final["failed"] = out["failed"]
            else:
                final.update(scale_metrics(spec, tr, va, te, predictions))
        name = device_name(dev)
        versions = machine.versions()         # inside the block: its torch threads are the run's, not the caller's
    rec = {"key": spec.key, "config": spec.to_dict(), "label": spec.label, "history": history, "final": final,
           "predictions": {k: "".join(map(str, v)) for k, v in predictions.items()},
           "wall_time_s": round(wall, 2), "device": name, "versions": versions,
           "run_id": uuid.uuid4().hex, **spec.record_extra()}      # run_id: this training, never a copy's
    records.keep_unusable(spec.record_path, spec)     # an edited record is never overwritten: kept as .orig-<n>
    paths.write_json(spec.record_path, rec)
    return rec


def pending(specs: Sequence[Spec], reuse: bool = True) -> list[Spec]:
    """The specs without a usable record (all of them when ``reuse`` is False), seed-major (stable), so a
    partial run of a launcher holds complete pairs of seeds."""
    todo = [s for s in specs if not (reuse and s.find_record() is not None)]
    return sorted(todo, key=lambda s: s.seed)
