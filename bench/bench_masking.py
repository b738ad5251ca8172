"""Overhead of backdrop masks: one training step of the authors' 1024^2 demo network, with and
without the fine (p=0.3) and coarse (p=0.95) masks, timed side by side in one run.

    python bench/bench_masking.py [--size 1024] [--width 64] [--reps 8]

Steps of the two variants are interleaved (A B A B ...) so drifts in machine load hit both
equally; the medians and their ratio are printed. Target: masks add <= 1 %.

Whole-step timings on a shared 2-core CPU jitter by a few per cent, more than the masks cost, so
the benchmark also times the mask work alone (drawing both masks and multiplying the gradients
of the two masked feature maps, many repetitions) and prints it as a fraction of a step: the
precise estimate of the overhead.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from backdrop_repro.models import TwoScaleCNN


def make_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        return time.perf_counter() - t0

    return step


def mask_only_seconds(net: TwoScaleCNN, x: torch.Tensor, reps: int = 200) -> float:
    """Seconds per step spent in the two BackdropMask layers alone (forward + backward)."""
    with torch.no_grad():
        fine_in = net.fine_features(x)
        coarse_in = net.coarse_features(fine_in)
    feats = [(net.fine_mask, fine_in), (net.coarse_mask, coarse_in)]
    grads = [torch.randn_like(f) for _, f in feats]
    t0 = time.perf_counter()
    for _ in range(reps):
        for (layer, f), g in zip(feats, grads):
            leaf = f.detach().requires_grad_(True)
            layer(leaf).backward(g)
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=12)
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, args.size, args.size)
    y = torch.zeros(args.batch, dtype=torch.long)
    plain = TwoScaleCNN(width=args.width)
    masked = TwoScaleCNN(width=args.width, fine_prob=0.3, coarse_prob=0.95, generator=torch.Generator().manual_seed(0))
    masked.load_state_dict(plain.state_dict())
    steps = {"no masks": make_step(plain, x, y), "fine+coarse masks": make_step(masked, x, y)}
    for s in steps.values():  # warm-up
        s()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.reps):
        for k, s in steps.items():
            times[k].append(s())
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"training step, {args.batch}x1x{args.size}x{args.size}, width {args.width}, "
          f"{torch.get_num_threads()} threads, median of {args.reps} interleaved reps")
    for k, v in med.items():
        print(f"  {k:<18} {v * 1e3:9.1f} ms   (min {min(times[k]) * 1e3:.1f} ms)")
    ratio = med["fine+coarse masks"] / med["no masks"]
    ratio_min = min(times["fine+coarse masks"]) / min(times["no masks"])
    print(f"  ratio masked/plain: median {ratio:.4f}, best-of {ratio_min:.4f}  (whole steps, noisy)")
    alone = mask_only_seconds(masked, x)
    print(f"  mask work alone: {alone * 1e6:.0f} us per step = {alone / med['no masks'] * 100:.3f} % of a step "
          f"-> ratio {1 + alone / med['no masks']:.4f}  (target <= 1.01)")


if __name__ == "__main__":
    main()
