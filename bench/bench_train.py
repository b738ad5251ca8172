"""Training throughput of the authors' 1024² demo network, as a fraction of a GEMM's FLOP rate.

One process measures, side by side: the FLOP rate of a float32 GEMM (``torch.mm`` of 2048²
matrices) at each thread count, then samples/s of a full training step (forward, backward,
Adam step; masks on: fine 0.3, coarse 0.95 as in the demo) of ``TwoScaleCNN()`` (width 64,
1024² input) for several settings: threads, batch size, ``channels_last`` memory format and
``torch.compile``. FLOPs per sample are counted analytically (:func:`backdrop_repro.models.conv_flops`,
2 per multiply-add, backward = 2x forward except the stem's input gradient). Target: >= 50 % of
the GEMM rate. Each figure is the best of ``REPEATS`` timed steps after a warm-up step.

Run: ``python bench/bench_train.py [--no-compile]`` (about 2-3 minutes on 2 cores; compiling
takes most of it; the machine should be otherwise idle).
"""
from __future__ import annotations

import os
import sys
import time

import torch

from backdrop_repro.models import TwoScaleCNN, conv_flops

SIZE, WIDTH, REPEATS = 1024, 64, 3


def gemm_gflops(threads: int, n: int = 2048) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def step_seconds(threads: int, batch: int, channels_last: bool, compile_: bool) -> tuple[float, float]:
    """(best seconds per training step, seconds of the warm-up step incl. any compilation)."""
    torch.set_num_threads(threads)
    net = TwoScaleCNN(WIDTH, fine_prob=0.3, coarse_prob=0.95, init_seed=0,
                      generator=torch.Generator().manual_seed(0))
    x = torch.randn(batch, 1, SIZE, SIZE)
    y = torch.arange(batch) % 4
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    fwd = torch.compile(net) if compile_ else net

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(fwd(x), y).backward()
        opt.step()

    t = time.perf_counter()
    step()
    warm = time.perf_counter() - t
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    return best, warm


def main(argv: list[str]) -> int:
    do_compile = "--no-compile" not in argv
    cores = os.cpu_count() or 1
    flops = conv_flops(TwoScaleCNN(WIDTH), SIZE)
    print(f"TwoScaleCNN width {WIDTH}, {SIZE}² input: {flops / 1e9:.2f} GFLOP per sample per training step "
          f"(analytic); torch {torch.__version__}, {cores} cores, load average {os.getloadavg()[0]:.1f} "
          f"(numbers are only meaningful on an idle machine)")
    gemm = {t: gemm_gflops(t) for t in sorted({1, cores})}
    for t, g in gemm.items():
        print(f"GEMM 2048² float32, {t} thread(s): {g:.1f} GFLOP/s")
    settings = [(1, 1, False, False), (cores, 1, False, False), (cores, 4, False, False),
                (cores, 1, True, False), (cores, 4, True, False)]
    if do_compile:
        settings.append((cores, 4, False, True))
    print(f"\n{'threads':>7} {'batch':>5} {'chan_last':>9} {'compile':>7} {'samples/s':>9} {'GFLOP/s':>8} "
          f"{'% of GEMM':>9} {'warm-up s':>9}")
    for threads, batch, cl, comp in settings:
        try:
            sec, warm = step_seconds(threads, batch, cl, comp)
        except Exception as err:  # torch.compile needs a working C++ toolchain
            print(f"{threads:>7} {batch:>5} {str(cl):>9} {str(comp):>7}  skipped: {type(err).__name__}: "
                  f"{str(err).splitlines()[0][:80]}")
            continue
        rate = batch * flops / sec / 1e9
        print(f"{threads:>7} {batch:>5} {str(cl):>9} {str(comp):>7} {batch / sec:>9.2f} {rate:>8.1f} "
              f"{100 * rate / gemm[threads]:>8.0f}% {warm:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
