"""The machine a result was made on: CPU identification, version stamps, memory and disk probes, threads.

Every record carries :func:`versions` (the software, the CPU's name, family numbers and the
instruction set torch dispatches to): records made on CPUs of another model or instruction set can
differ by rounding (docs/reliability.md, "Cross-machine drift"). :func:`available_memory` and
:func:`free_disk` let a command refuse work that cannot fit before starting it;
:func:`torch_threads` sets torch's thread count for a block.

Example
-------
>>> isinstance(cpu_name(), str)
True
"""
from __future__ import annotations

import contextlib
import os
import platform
import shutil
from pathlib import Path
from typing import Iterator, Optional

__all__ = ["cpu_id", "cpu_name", "versions", "available_memory", "free_disk", "torch_threads"]


def cpu_id() -> str:
    """The CPU's vendor, family, model and stepping numbers from ``/proc/cpuinfo`` (a virtual machine
    often names only "AMD EPYC": the numbers tell generations apart), or ``""`` where none is known.
    Example: ``cpu_id()`` -> ``'AuthenticAMD family 26 model 2 stepping 1'``.
    """
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if not line.strip():
                break                                   # the first processor is enough
            k, _, v = line.partition(":")
            fields.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return " ".join(([fields["vendor_id"]] if fields.get("vendor_id") else [])
                    + [f"{label} {fields[k]}" for k, label in (("cpu family", "family"), ("model", "model"),
                                                                 ("stepping", "stepping")) if fields.get(k)])


def versions() -> dict[str, str]:
    """Versions of the software a result depends on, and the machine (stored in every results JSON).

    ``machine``: architecture, CPU count and torch threads; ``cpu``: :func:`cpu_name`; ``cpu_id``:
    :func:`cpu_id`; ``cpu_isa``: the instruction set torch's CPU kernels dispatch to
    (``torch.backends.cpu.get_cpu_capability()``: ``DEFAULT``, ``AVX2``, ``AVX512``, ...);
    ``cpu_cores``: ``os.cpu_count()``. Records made on CPUs of another model or instruction set can
    differ by rounding (docs/reliability.md, "Cross-machine drift").
    """
    import numpy
    import scipy
    import torch

    from . import __version__

    return {
        "backdrop_repro": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}",
        "cpu": cpu_name(),
        "cpu_id": cpu_id(),
        "cpu_isa": str(torch.backends.cpu.get_cpu_capability()),
        "cpu_cores": str(os.cpu_count()),
    }


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`), so two records
    can be told apart by machine. Example: ``cpu_name()`` -> ``'AMD EPYC'`` (``'unknown'`` if nothing says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip() or "unknown"
    except OSError:
        pass
    return platform.processor() or "unknown"


def available_memory() -> int | None:
    """Bytes of memory available to this process (``MemAvailable``, capped by a cgroup limit), or None.

    Example: ``available_memory() > 2**30`` on most machines.
    """
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    try:
        cg = Path("/sys/fs/cgroup")
        limit = (cg / "memory.max").read_text().strip()
        if limit != "max":
            room = int(limit) - int((cg / "memory.current").read_text())
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def free_disk(folder: str | os.PathLike) -> int:
    """Free bytes on the file system holding ``folder`` (or its nearest existing parent)."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None or 0: leave the count as it is), then restore it.

    Example: ``with torch_threads(1): train(...)``.
    """
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
