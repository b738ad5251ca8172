"""Training the learnability map: the runs of :mod:`.plan` through the GP sweep's machinery.

:func:`run_one` trains one CNN or spectral-energy run (the GP sweep's ``train`` loop, datasets
and per-scale metrics, :func:`~backdrop_repro.experiments.gp_sweep.run.scale_metrics`) or scores
the likelihood classifier on the task's test set, and writes its keyed record atomically;
:func:`run_part` runs one part in parallel through
:func:`~backdrop_repro.experiments.gp_sweep.run.run_specs` (records already present are
skipped, so every call resumes); :func:`run_all` runs the parts in priority order: the map at
every size but the largest, the map at the largest size, the edge (chosen from the map's
records), the two-scale task, then writes the summary (:func:`.report.write_summary`).

Example
-------
>>> summary = run_all("smoke", progress=False)                 # doctest: +SKIP
>>> summary["edge"]["cells"][0]["comparisons"][0]["claim"]     # doctest: +SKIP
"""
from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ... import paths, profiles
from ..._shared import torch_generator, torch_threads
from ...models import TwoScaleCNN
from ...train import train
from ..gp_sweep.run import load_data, run_specs, scale_metrics
from .plan import PARTS, LearnSpec, ckpt_path, find_record, plan_map, plan_part, records_dir, section
from .spectral import SpectralEnergyNet

__all__ = ["build_model", "run_one", "run_part", "run_all", "energy_statistic"]


def build_model(spec: LearnSpec) -> torch.nn.Module:
    """The run's network: the 2-scale CNN (masks from the seed's ``gp_masks`` stream, as in the GP
    sweep) or the spectral-energy net, initialised from ``seed``."""
    s = spec.section
    if spec.model == "spectral":
        return SpectralEnergyNet(n_classes=spec.n_classes, channels=s.spectral_channels, kernel=s.spectral_kernel,
                                 init_seed=spec.seed)
    if spec.model != "cnn":
        raise ValueError(f"build_model needs a cnn or spectral spec, got model {spec.model!r}")
    net = TwoScaleCNN(width=s.width, n_classes=spec.n_classes, fine_prob=spec.fine_prob, coarse_prob=spec.coarse_prob,
                      n_fine=s.n_fine, n_coarse=s.n_coarse, kernel=2, generator=torch_generator(spec.seed, "gp_masks"),
                      init_seed=spec.seed, init="he")
    net.image_size = s.data.size
    return net


def energy_statistic(images: np.ndarray) -> np.ndarray:
    """``log`` of the mean squared slope of each image (periodic finite differences): ``(N,)``.

    For a standardised field with a squared-exponential kernel of length ``l`` the expected mean
    squared slope per axis is about ``1 / l^2``, so one number per image carries the class.
    Example: ``energy_statistic(np.zeros((1, 4, 4)) + 1)`` -> ``[-inf]`` (a flat image has no slope).
    """
    x = np.asarray(images, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(((np.roll(x, 1, -1) - x) ** 2 + (np.roll(x, 1, -2) - x) ** 2).mean(axis=(-2, -1)) / 2)


def _oracle(spec: LearnSpec, progress: bool) -> tuple[dict[str, Any], dict[str, list[int]]]:
    from ...data.datasets import build_dataset
    from ...gp.oracle import is_exact, oracle_for_recipe

    test = spec.recipes()[2]
    ds = build_dataset(test, progress=progress)
    images, labels = np.asarray(ds.images), np.asarray(ds.labels)
    oracle = oracle_for_recipe(test)
    res = oracle.evaluate(images, labels)
    pred = oracle.predict(images)
    final: dict[str, Any] = {"test_accuracy": res["accuracy"], "test_loss": res["loss"], "exact": is_exact(test)}
    if spec.n_classes == 2:
        e = energy_statistic(images)
        a, b = e[labels == 0], e[labels == 1]
        sd = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
        final["energy"] = {"mean": [float(a.mean()), float(b.mean())], "sd": [float(a.std(ddof=1)), float(b.std(ddof=1))],
                           "dprime": float(abs(a.mean() - b.mean()) / sd) if sd > 0 else None}
    final.update(scale_metrics(spec, None, None, ds, {"test": pred.tolist()}))
    return final, {"test": pred.tolist()}


def _device(device: Optional[str]) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def run_one(spec: LearnSpec, device: Optional[str] = None, reuse: bool = True, progress: bool = False) -> dict[str, Any]:
    """Train (or score) one run, or with ``reuse`` return its record; resumable from its checkpoint.

    Returns the record written to ``results/<profile>/learnability/<key>.json``: ``key``, ``config``
    (:meth:`LearnSpec.to_dict`), ``label``, ``cell`` (scale, ratio, per_class), ``history``,
    ``final`` (test/validation accuracy at the selected epoch, per-scale accuracy, stop reason;
    the oracle's: its accuracy and the energy statistic's separation ``dprime``), ``predictions``
    (per image, as a string of class digits), ``wall_time_s``, ``device``, ``versions``.
    """
    if reuse:
        rec = find_record(spec)
        if rec is not None:
            return rec
    else:
        ckpt_path(spec).unlink(missing_ok=True)
    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    with torch_threads(spec.section.threads):
        if spec.model == "oracle":
            final, predictions = _oracle(spec, progress)
            dev = "cpu"
        else:
            tr, va, te = load_data(spec, progress=progress)
            dev = _device(device)
            out = train(build_model(spec), tr, te, spec.train_config(dev), checkpoint=ckpt_path(spec), resume=True,
                        progress=progress, val_data=va)
            history, final, predictions = out["history"], dict(out["final"]), out["predictions"]
            if out.get("failed"):
                final["failed"] = out["failed"]
            else:
                final.update(scale_metrics(spec, tr, va, te, predictions))
    rec = {"key": spec.key, "config": spec.to_dict(), "label": spec.label,
           "cell": {"scale": spec.scale, "ratio": list(spec.ratio), "per_class": spec.per_class,
                    "lengths": [list(ls) for ls in spec.lengths]},
           "history": history, "final": final,
           "predictions": {k: "".join(map(str, v)) for k, v in predictions.items()},
           "wall_time_s": round(time.perf_counter() - t0, 2), "device": dev, "versions": paths.versions(),
           **spec.record_extra()}
    paths.write_json(spec.record_path, rec)
    return rec


def run_part(profile: "str | profiles.Profile", part: str, jobs: Optional[int] = None, reuse: bool = True,
             device: Optional[str] = None, progress: bool = True, per_class: Optional[Sequence[int]] = None,
             seeds: Optional[Sequence[int]] = None) -> list[LearnSpec]:
    """Run one of :data:`.plan.PARTS` (``per_class``/``seeds``: a subset of the map). The oracle runs
    (one per task, seconds) first here, the networks through ``run_specs`` (``jobs`` processes,
    default: the section's), seed-major. Returns the part's specs."""
    p = profiles.get(profile)
    s = section(p)
    specs = plan_map(p, per_class, seeds) if part == "map" else plan_part(p, part)
    for spec in specs:
        if spec.model == "oracle":
            run_one(spec, device=device, reuse=reuse, progress=progress)
    nets = [x for x in specs if x.model != "oracle"]
    run_specs(nets, jobs=s.jobs if jobs is None else jobs, device=device, reuse=reuse, progress=progress,
              desc=f"learnability {p.name}: {part}", run=run_one, find=find_record)
    return specs


def run_all(profile: "str | profiles.Profile", parts: Sequence[str] = PARTS, jobs: Optional[int] = None,
            reuse: bool = True, device: Optional[str] = None, progress: bool = True) -> dict[str, Any]:
    """Run ``parts`` in priority order (the map at every size but the largest first, then the largest;
    then the edge, then the two-scale task), then write and return :func:`.report.write_summary`."""
    from .report import write_summary

    p = profiles.get(profile)
    s = section(p)
    bad = [x for x in parts if x not in PARTS]
    if bad or not parts:
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {list(parts)!r}")
    t0 = time.perf_counter()
    if "map" in parts:
        sizes = sorted(s.per_class)
        for batch in ([sizes[:-1], sizes[-1:]] if len(sizes) > 1 else [sizes]):
            run_part(p, "map", jobs, reuse, device, progress, per_class=batch)
    for part in ("edge", "twoscale"):
        if part in parts:
            run_part(p, part, jobs, reuse, device, progress)
    return write_summary(p, wall=time.perf_counter() - t0)
