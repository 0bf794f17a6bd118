"""How the benchmarks time and weigh a run: medians, resident memory (sampled, and the kernel's
high-water mark), the machine and its load."""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["cpu_model", "loadavg", "median_time", "memory_status", "peak_rss_growth",
           "reset_peak_rss"]


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Run ``fn`` ``repeat`` times: (median seconds, every run's seconds, the last result)."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, out


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_growth(fn: Callable[[], Any]) -> int | None:
    """Growth of resident memory while ``fn`` ran, sampled every millisecond by a thread.

    VmHWM is not used: the kernel updates it lazily, so it misses short-lived peaks. Under the
    tuned glibc settings freed NumPy memory stays resident, so this under-counts the core.
    """
    try:
        before = _resident_bytes()
    except (OSError, ValueError):
        return None
    peak, done = [before], threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], _resident_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], _resident_bytes()) - before


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_status() -> dict[str, int]:
    """VmPeak, VmHWM (peak resident), VmRSS of this process in bytes (empty off Linux).

    The kernel's VmHWM includes every peak, however short: it is raised before any resident
    page is given back. ``reset_peak_rss`` starts it again from the current resident size.
    """
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key = line.split(":", 1)[0]
                if key in ("VmPeak", "VmHWM", "VmRSS"):
                    out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current resident size (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def loadavg() -> str:
    """``/proc/loadavg`` as the kernel prints it (1, 5, 15 min; runnable/total; last pid)."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
