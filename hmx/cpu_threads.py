"""A start-up hint for CPU training on a busy machine: torch's intra-op threads then stall each other.

Measured on a 2-core machine with other jobs running (docs/performance.md): a SmolLM2-135M step
of ``experiment=hmx_feel_smollm2_cpu`` took 106-159 s with torch's 2 intra-op threads and 13.5 s
with one (``OMP_NUM_THREADS=1``): each parallel region waits for its slowest thread, and a thread
whose core is taken by another process waits a whole time slice.
"""

from __future__ import annotations

import os

import torch


def busy_cpu_hint(threads: int, load: float, cores: int) -> str | None:
    """The hint to print when ``threads`` > 1 intra-op threads share ``cores`` with a ``load`` as high."""
    if threads <= 1 or load < cores:
        return None
    return (
        f"hmx: this machine is busy (load average {load:.1f} on {cores} cores) and torch uses {threads} threads, "
        "which then wait on each other; OMP_NUM_THREADS=1 can make each step several times faster here "
        "(docs/performance.md)"
    )


def check_cpu_threads() -> str | None:
    """The hint for this process and machine (None on a GPU, a quiet machine or one thread)."""
    if torch.cuda.is_available() or not hasattr(os, "getloadavg"):
        return None
    return busy_cpu_hint(torch.get_num_threads(), os.getloadavg()[0], os.cpu_count() or 1)
