"""Training throughput of the authors' 1024² demo network, as a fraction of a GEMM's FLOP rate, and
runs/hour of the ``paper`` profile on the device at hand.

One process measures, side by side:

1. the FLOP rate of a GEMM (``torch.mm`` of n² matrices; float32 at 1 and at all threads on a
   CPU, bf16 too where the CPU has native bf16; float32, TF32 and bf16 on CUDA);
2. where the time of one training step goes: ``torch.profiler`` over the 1024² width-64 step
   (forward, backward, Adam; masks on: fine 0.3, coarse 0.95 as in the demo), top ops by self
   CPU time, in NCHW and in channels_last;
3. samples/s of that step for each setting (threads, batch, NCHW vs ``channels_last``, fp32 vs
   bf16 autocast, ``torch.compile``, which fuses the ReLUs into the convolutions' epilogues),
   each as a fraction of the GEMM rate of the same precision and thread count. FLOPs per sample
   are counted analytically (:func:`backdrop_repro.models.conv_flops`, 2 per multiply-add,
   backward = 2x forward except the stem's input gradient);
4. runs/hour of the ``paper`` profile: one run = ``epochs`` epochs of the profile's training set
   (4 x ``per_class`` images) plus its evaluations (training + validation set every
   ``eval_every`` epochs, test set at the end), from the measured step and evaluation rates at
   the profile's batch size, memory format and precision; on a CPU one run per core (1 thread
   each), on CUDA one run per device.

Targets (issue 11): >= 50 % of the GEMM rate on a CPU, >= 40 % on CUDA. Each figure is the best
of ``repeats`` timed steps after a warm-up step (the warm-up includes any compilation).

``--formulations`` (issue 18) prints instead each formulation of the network
(:data:`backdrop_repro.models.IMPLS`: ``nn.Conv2d`` in NCHW and NHWC, the copy-free blocked
layout of :mod:`backdrop_repro.formulations`, ``torch.compile`` on top) as a fraction of the
GEMM rate at width 16 (the ``scaled`` network, 256², batch 8) and width 64 (the ``paper``
network, 1024², batch 4), one thread, every row and its GEMM timed interleaved in one process;
each allocator setting (glibc's default, :func:`~backdrop_repro.formulations.keep_freed_memory`) in
its own process; each block ends with the formulation that leads there on this CPU (named). Then
the projected minutes of one ``paper`` run and of the ``scaled`` record on 2 cores (one run per
core). A formulation stays in the package only while this bench shows it ahead on some CPU.

Run: ``python bench/bench_train.py [--quick] [--no-compile] [--no-profile] [--device cuda] [--formulations]``
(about 3-5 minutes with ``--quick`` on 2 cores; compiling takes a good part of it). The numbers
mean most on an idle machine; the header prints the load average and says when it is not idle.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from backdrop_repro import profiles
from backdrop_repro.experiments.gp_sweep import plan as gp_sweep
from backdrop_repro.models import TwoScaleCNN, conv_flops

SIZE, WIDTH = 1024, 64


@dataclass(frozen=True)
class Setting:
    """One measured configuration of the training step."""

    threads: int
    batch: int
    channels_last: bool
    precision: str = "fp32"       # fp32 | tf32 (CUDA) | bf16 (autocast)
    compile: bool = False

    @property
    def label(self) -> str:
        return (f"{self.threads:>7} {self.batch:>5} {'NHWC' if self.channels_last else 'NCHW':>6} "
                f"{self.precision:>5} {'yes' if self.compile else 'no':>7}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_has_native_bf16() -> bool:
    """True when the CPU has AVX512-BF16 or AMX (oneDNN then runs bf16 natively, not emulated)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 for CUDA matmul and cuDNN inside the block (restored after)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def best_time(fn: Callable[[], None], repeats: int, device: torch.device) -> tuple[float, float]:
    """(best seconds of ``repeats`` calls, seconds of the first, warm-up call)."""
    t = time.perf_counter()
    fn()
    _sync(device)
    warm = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return best, warm


def gemm_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 3,
                use_tf32: bool = False) -> float:
    """GFLOP/s of an n² x n² GEMM (2 n³ FLOPs) at the current thread count."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    with tf32(use_tf32) if device.type == "cuda" else contextlib.nullcontext():
        sec, _ = best_time(lambda: torch.mm(a, b), repeats, device)
    return 2 * n ** 3 / sec / 1e9


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_step(s: Setting, device: torch.device) -> Callable[[], None]:
    """A closure running one training step of ``TwoScaleCNN(64)`` on a random 1024² batch."""
    torch.set_num_threads(s.threads)
    net = TwoScaleCNN(WIDTH, fine_prob=0.3, coarse_prob=0.95, init_seed=0,
                      generator=torch.Generator().manual_seed(0)).to(device)   # as the sweep builds it
    x = torch.randn(s.batch, 1, SIZE, SIZE, device=device)
    y = torch.arange(s.batch, device=device) % 4
    if s.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    fwd = torch.compile(net) if s.compile else net

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with _autocast(s.precision, device):
            loss = torch.nn.functional.cross_entropy(fwd(x).float(), y)
        loss.backward()
        opt.step()

    return step


def make_eval(s: Setting, device: torch.device) -> Callable[[], None]:
    """A closure running one no-grad forward pass (eval mode, masks off) of ``s.batch`` samples."""
    torch.set_num_threads(s.threads)
    net = TwoScaleCNN(WIDTH, init_seed=0).to(device).eval()
    x = torch.randn(s.batch, 1, SIZE, SIZE, device=device)
    if s.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def run() -> None:
        with _autocast(s.precision, device):
            net(x)

    return run


def profile_step(s: Setting, device: torch.device, top: int = 10) -> None:
    """Print the ``top`` ops by self CPU time over two profiled steps (after one warm-up step)."""
    from torch.profiler import ProfilerActivity, profile

    step = make_step(s, device)
    step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(2):
            step()
        _sync(device)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    print(f"\nProfile, {'channels_last' if s.channels_last else 'NCHW'}, {s.threads} thread(s), batch {s.batch}: "
          f"{total / 2e3:.0f} ms self CPU time per step")
    print(f"  {'op':<44} {'self CPU ms/step':>16} {'share':>6} {'calls/step':>10}")
    for e in events[:top]:
        print(f"  {e.key[:44]:<44} {e.self_cpu_time_total / 2e3:>16.1f} {100 * e.self_cpu_time_total / total:>5.1f}% "
              f"{e.count / 2:>10.0f}")


def paper_run_samples() -> dict[str, int]:
    """Training and evaluation samples of one ``paper`` run (its grid's first spec's budget)."""
    p = profiles.get("paper")
    cfg = gp_sweep.plan_grid(p, ["none"], [0])[0].train_config()
    n_train, n_val, n_test = (4 * p.data.per_class, 4 * p.data.val_per_class, 4 * p.data.test_per_class)
    evals = len([e for e in range(1, cfg.epochs + 1) if e % cfg.eval_every == 0 or e == cfg.epochs])
    tests = len([e for e in range(1, cfg.epochs + 1) if e % (cfg.test_every or cfg.eval_every) == 0
                 or e == cfg.epochs])
    return {"epochs": cfg.epochs, "batch": cfg.batch_size, "train": cfg.epochs * n_train,
            "eval": evals * (n_train + n_val) + tests * n_test}


def measure(settings: list[Setting], device: torch.device, flops: float, repeats: int) -> dict:
    """Print one row per setting; return ``{setting: samples/s}`` (missing when it failed).

    Each row's reference is a GEMM of the same precision and thread count timed right before and
    right after its steps (their mean), so a row and its reference share the machine's load.
    """
    print(f"\n{'threads':>7} {'batch':>5} {'layout':>6} {'prec':>5} {'compile':>7} {'samples/s':>9} {'GFLOP/s':>8} "
          f"{'GEMM GF/s':>9} {'% of GEMM':>9} {'warm-up s':>9}")
    out = {}
    for s in settings:
        try:
            step = make_step(s, device)
            ref = gemm_rate(s, device)
            with tf32(s.precision == "tf32") if device.type == "cuda" else contextlib.nullcontext():
                sec, warm = best_time(step, repeats, device)
            ref = (ref + gemm_rate(s, device)) / 2
        except Exception as err:  # noqa: BLE001 - e.g. torch.compile without a C++ toolchain
            print(f"{s.label}  skipped: {type(err).__name__}: {str(err).splitlines()[0][:80]}")
            continue
        rate = s.batch * flops / sec / 1e9
        out[s] = s.batch / sec
        print(f"{s.label} {s.batch / sec:>9.2f} {rate:>8.1f} {ref:>9.1f} {100 * rate / ref:>8.0f}% {warm:>9.1f}",
              flush=True)
    return out


def gemm_rate(s: Setting, device: torch.device) -> float:
    """GFLOP/s of the GEMM that row ``s`` is compared with (bf16 only where it runs natively)."""
    torch.set_num_threads(s.threads)
    if device.type == "cuda":
        dtype = torch.bfloat16 if s.precision == "bf16" else torch.float32
        return gemm_gflops(device, dtype, n=8192, repeats=3, use_tf32=s.precision == "tf32")
    native = s.precision == "bf16" and cpu_has_native_bf16()
    return gemm_gflops(device, torch.bfloat16 if native else torch.float32, n=1024, repeats=3)


def cpu_settings(cores: int, batch: int, quick: bool, no_compile: bool) -> list[Setting]:
    """Rows on a CPU: threads 1 vs all for both layouts, the paper's batch, bf16 and compile.

    bf16 and compile rows use 1 thread (one run per core is how the sweep uses a CPU, and a
    single thread is not disturbed by other jobs the way a team of threads is).
    """
    out = [Setting(cores, 1, False), Setting(cores, 1, True), Setting(1, 1, False), Setting(1, 1, True),
           Setting(1, batch, True), Setting(1, 1, True, "bf16")]
    if not quick:
        out += [Setting(1, batch, False), Setting(cores, batch, True), Setting(1, 1, False, "bf16"),
                Setting(cores, 1, True, "bf16")]
    if not no_compile:
        out += [Setting(1, 1, True, compile=True)] + ([] if quick else [Setting(cores, 1, True, compile=True)])
    return out


def cuda_settings(batch: int, no_compile: bool) -> list[Setting]:
    """Rows on CUDA: the paper's batch and 16, NCHW and channels_last, fp32 / tf32 / bf16, compile."""
    out = [Setting(1, b, cl, prec) for b in (batch, 16) for cl in (False, True) for prec in ("fp32", "tf32", "bf16")]
    return out + ([] if no_compile else [Setting(1, 16, True, "tf32", True), Setting(1, 16, True, "bf16", True)])


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer settings and repeats (about 3-5 min on 2 cores)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    ap.add_argument("--no-profile", action="store_true", help="skip the torch.profiler breakdown")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    ap.add_argument("--formulations", action="store_true", help="only the formulations of issue 18 (CPU)")
    ap.add_argument("--repeats", type=int, default=4, help="interleaved rounds of --formulations")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        return _formulation_child(args._child, args.repeats, args.no_compile)
    if args.formulations:
        return formulations(args.repeats, args.no_compile)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("bench_train: error: --device cuda but no CUDA device is available")
    repeats = 2 if args.quick else 3
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    flops = conv_flops(TwoScaleCNN(WIDTH), SIZE)
    fwd_flops = conv_flops(TwoScaleCNN(WIDTH), SIZE, backward=False)
    load = os.getloadavg()[0]
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {cores} cores"
    print(f"TwoScaleCNN width {WIDTH}, {SIZE}² input: {flops / 1e9:.2f} GFLOP per sample per training step, "
          f"{fwd_flops / 1e9:.2f} per forward (analytic); torch {torch.__version__}; device: {name}")
    print(f"load average {load:.1f} on {cores} cores" + (
        f" -- NOT IDLE: measured under load (another job shares the cores), so absolute rates are low and "
        f"noisy; only rows measured in this run compare with each other" if load > 0.5 * cores else " (idle)"))
    native_bf16 = cuda or cpu_has_native_bf16()

    # 1. GEMM reference rates
    gemm: dict[tuple[int, str], float] = {}
    if cuda:
        n = 8192
        gemm[(1, "fp32")] = gemm_gflops(device, n=n)
        gemm[(1, "tf32")] = gemm_gflops(device, n=n, use_tf32=True)
        gemm[(1, "bf16")] = gemm_gflops(device, torch.bfloat16, n=n)
        for (_, prec), g in gemm.items():
            print(f"GEMM {n}² {prec}: {g / 1e3:.1f} TFLOP/s")
    else:
        for t in sorted({1, cores}):
            torch.set_num_threads(t)
            gemm[(t, "fp32")] = gemm_gflops(device)
            print(f"GEMM 2048² float32, {t} thread(s): {gemm[(t, 'fp32')]:.1f} GFLOP/s")
            if native_bf16:
                gemm[(t, "bf16")] = gemm_gflops(device, torch.bfloat16)
                print(f"GEMM 2048² bf16, {t} thread(s): {gemm[(t, 'bf16')]:.1f} GFLOP/s")
        if not native_bf16:
            print("this CPU has no native bf16 (no AVX512-BF16/AMX): bf16 rows are emulated and compared with "
                  "the float32 GEMM")

    # 2. where the time goes
    if not args.no_profile:
        for cl in (False, True):        # one thread on a CPU: how the sweep runs there (one run per core)
            profile_step(Setting(1, 4 if cuda else 1, cl), device)

    # 3. settings side by side
    paper = profiles.get("paper")
    run = paper_run_samples()
    pb = run["batch"]
    settings = cuda_settings(pb, args.no_compile) if cuda else cpu_settings(cores, pb, args.quick, args.no_compile)
    print("\nTraining step (forward + backward + Adam, masks on); % of the rate of a GEMM of the same precision"
          + (" (bf16 rows: of the float32 GEMM)" if not native_bf16 else "") + " and thread count, timed "
          "right before and after the row:")
    sps = measure(settings, device, flops, repeats)

    # 4. runs/hour of the paper profile on this device
    prec = paper.sweep.precision if cuda else "fp32"          # tf32 means fp32 on a CPU
    run_threads = 1                                            # CPU: one run per core; CUDA: threads unused
    step_s = Setting(run_threads, pb, paper.sweep.channels_last, prec)
    eval_s = Setting(run_threads, 16 if cuda else 8, paper.sweep.channels_last, prec)
    with tf32(prec == "tf32") if cuda else contextlib.nullcontext():
        ev_sec, _ = best_time(make_eval(eval_s, device), repeats, device)
    ev_ref = gemm_rate(eval_s, device)
    eval_sps = eval_s.batch / ev_sec
    train_sps = sps.get(step_s)
    print(f"\nEvaluation (no-grad forward, batch {eval_s.batch}, {run_threads} thread(s)): {eval_sps:.2f} samples/s "
          f"({100 * eval_s.batch * fwd_flops / ev_sec / 1e9 / ev_ref:.0f} % "
          "of the GEMM rate)")
    if train_sps is None:
        print("runs/hour: the paper-profile setting was not measured")
        return 0
    run_s = run["train"] / train_sps + run["eval"] / eval_sps
    per_device = 1 if cuda else cores
    n_grid = len(gp_sweep.plan_grid(paper))
    print(f"paper profile: one run = {run['epochs']} epochs x {run['train'] // run['epochs']} training images "
          f"({run['train']} training samples, batch {pb}) + {run['eval']} evaluation samples; "
          f"{'channels_last' if step_s.channels_last else 'NCHW'}, {prec}")
    print(f"  one run: {run_s / 3600:.2f} h on {'the GPU' if cuda else '1 thread'} "
          f"({run['train'] / train_sps / 3600:.2f} h training at {train_sps:.2f} samples/s, "
          f"{run['eval'] / eval_sps / 3600:.2f} h evaluation)")
    print(f"  runs/hour on this device: {per_device * 3600 / run_s:.3f} "
          f"({'one run on the GPU at a time' if cuda else f'{cores} runs at once, one per core'}); "
          f"the full grid ({n_grid} runs: {len(paper.sweep.seeds)} seeds) takes {n_grid * run_s / per_device / 3600:.0f} h")
    if cuda:
        print("  (several runs can share one GPU when one does not fill it: start the sweep with --jobs k)")
    return 0


# ---- issue 18: the formulations side by side ---------------------------------------------------
FORMS = (("conv NCHW", "conv", "im2col", False), ("conv NHWC", "conv", "im2col", True),
         ("blocked", "blocked", "im2col", True))
WIDTHS = {16: ("scaled", 8), 64: ("paper", 4)}      # width: (profile whose network it is, batch)


def _net(width: int, impl: str, stem: str):
    p = profiles.get(WIDTHS[width][0])
    d = p.data
    net = TwoScaleCNN.for_scales(d.size, d.scales[0], d.scales[-1], width=width, fine_prob=0.3, coarse_prob=0.95,
                                 init_seed=0, init="he", generator=torch.Generator().manual_seed(0), impl=impl,
                                 stem=stem)
    return net, d.size


def _form_step(width: int, impl: str, stem: str, cl: bool, compile_: bool = False):
    net, size = _net(width, impl, stem)
    batch = WIDTHS[width][1]
    x = torch.randn(batch, 1, size, size)
    y = torch.arange(batch) % 4
    if cl:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    fwd = torch.compile(net) if compile_ else net

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(fwd(x), y).backward()
        opt.step()

    return step, conv_flops(net, size) * batch, batch


def _formulation_child(spec: str, repeats: int, no_compile: bool) -> int:
    """One process: ``spec`` = "<allocator>,<width>"; prints one JSON line of seconds per step."""
    import json

    from backdrop_repro.formulations import keep_freed_memory

    alloc, width = spec.split(",")
    width = int(width)
    if alloc == "keep":
        keep_freed_memory()
    torch.set_num_threads(1)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    rows = {"GEMM": (lambda: torch.mm(a, b), 2 * 1024 ** 3, 1)}
    for label, impl, stem, cl in FORMS:
        rows[label] = _form_step(width, impl, stem, cl)
    if not no_compile and width == 16:
        try:
            rows["blocked + torch.compile"] = _form_step(width, "blocked", "im2col", True, True)
            rows["conv NHWC + torch.compile"] = _form_step(width, "conv", "im2col", True, True)
        except Exception as err:  # noqa: BLE001
            print(f"# compile rows skipped: {type(err).__name__}", file=sys.stderr)
    warm = {}
    for k, (f, _, _) in list(rows.items()):
        t = time.perf_counter()
        try:
            f()
        except Exception as err:  # noqa: BLE001 - e.g. torch.compile without a C++ toolchain
            print(f"# {k} skipped: {type(err).__name__}: {str(err).splitlines()[0][:80]}", file=sys.stderr)
            rows.pop(k)
            continue
        warm[k] = time.perf_counter() - t
    times: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(repeats):                      # interleaved: every row shares the same load
        for k, (f, _, _) in rows.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    print(json.dumps({k: {"s": min(v), "flops": rows[k][1], "batch": rows[k][2], "warm_s": warm[k]}
                      for k, v in times.items()}))
    return 0


def formulations(repeats: int, no_compile: bool) -> int:
    """Print every formulation as a fraction of the GEMM rate at widths 16 and 64, and projections."""
    import json
    import subprocess

    from pathlib import Path

    from backdrop_repro.machine import cpu_name

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))   # the GPU window: a script
    from gpu_window import run_work

    load = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    print(f"Formulations of the 2-scale CNN, training step (fwd + bwd + Adam, masks on), 1 thread; torch "
          f"{torch.__version__}; load average {load:.1f} on {cores} cores"
          + (" -- NOT IDLE: only ratios within one block (one process, rows interleaved) mean anything"
             if load > 0.5 * cores else " (idle)"))
    cpu = cpu_name()
    print(f"CPU: {cpu}")
    best: dict[tuple[str, int], dict] = {}
    for width in (16, 64):
        for alloc in ("default", "keep"):
            out = subprocess.run([sys.executable, __file__, "--_child", f"{alloc},{width}", "--repeats", str(repeats)]
                                 + (["--no-compile"] if no_compile else []), capture_output=True, text=True)
            if out.returncode:
                print(f"width {width}, allocator {alloc}: failed\n{out.stderr[-2000:]}")
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            g = res.pop("GEMM")
            gemm = g["flops"] / g["s"]
            name, batch = WIDTHS[width]
            print(f"\nwidth {width} ({name} network, batch {batch}), allocator: "
                  f"{'glibc default' if alloc == 'default' else 'keep_freed_memory()'}; GEMM 1024² fp32 "
                  f"{gemm / 1e9:.1f} GFLOP/s")
            print(f"  {'formulation':<28} {'ms/step':>9} {'samples/s':>9} {'% of GEMM':>9} {'vs conv NHWC':>12} "
                  f"{'warm-up s':>9}")
            base = res.get("conv NHWC", {}).get("s")
            for k, r in res.items():
                print(f"  {k:<28} {1e3 * r['s']:>9.1f} {r['batch'] / r['s']:>9.2f} "
                      f"{100 * r['flops'] / r['s'] / gemm:>8.1f}% {base / r['s'] if base else float('nan'):>11.2f}x "
                      f"{r['warm_s']:>9.1f}")
                best[(alloc + " " + k, width)] = {"sps": r["batch"] / r["s"], "frac": r["flops"] / r["s"] / gemm}
            lead = max(res, key=lambda k: res[k]["batch"] / res[k]["s"])
            print(f"  leads on this CPU ({cpu}): {lead}")
    # projections: one run per core (1 thread each), evaluation at the training step's efficiency
    paper = gp_sweep.plan_grid("paper", ["none"], [0])[0]
    pw = run_work(paper)
    net64, _ = _net(64, "conv", "im2col")
    fwd_share = conv_flops(net64, 1024, backward=False) / conv_flops(net64, 1024)
    scaled = gp_sweep.plan_runs("scaled")
    net16, _ = _net(16, "conv", "im2col")
    fwd16 = conv_flops(net16, 256, backward=False) / conv_flops(net16, 256)
    sw = [run_work(s) for s in scaled]
    train16, eval16 = sum(w["train"] for w in sw), sum(w["eval"] for w in sw)
    print(f"\nProjections (one run per core, 1 thread each, as the sweep runs; evaluation forwards at the same "
          f"fraction of the GEMM rate as the step, {fwd_share:.2f} of a step's FLOPs per sample at width 64):")
    print(f"  one paper run = {pw['train']} training samples + {pw['eval']} evaluation forwards; the scaled record "
          f"= {len(scaled)} runs, {train16} training samples + {eval16} evaluation forwards")
    for (k, width), r in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if width == 64:
            m = (pw["train"] + pw["eval"] * fwd_share) / r["sps"] / 60
            print(f"  width 64, {k:<40} one paper run {m:7.0f} min on 1 core (2 at once on 2 cores)")
        else:
            m = (train16 + eval16 * fwd16) / r["sps"] / 60 / cores
            print(f"  width 16, {k:<40} the scaled record {m:7.0f} min on {cores} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
