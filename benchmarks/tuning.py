"""The tuned process environment of the benchmarks, applied by re-executing the process.

On AMD CPUs with AVX-512 (Zen 4) NumPy's AVX-512 sort is several times slower than its AVX2
sort, because compress-store is microcoded there, so ``retune`` sets ``NPY_DISABLE_CPU_FEATURES``;
and glibc is told to keep freed memory (``MALLOC_MMAP_MAX_=0``, a high trim threshold) so that
repeated queries reuse pages instead of re-faulting them, as DuckDB's and Polars' own allocators
do. The enclave manifest can set the same environment; a host started from the tuned process
(and its enclave child) inherits it. ``--no-tune`` measures the process as it starts.
"""

from __future__ import annotations

import os
import sys

__all__ = ["AVX2_SORT_ENV", "TUNED_ENV", "retune"]

TUNED_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
}
AVX2_SORT_ENV = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}


def _amd_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read(8192)
    except OSError:
        return False
    return "AuthenticAMD" in text and " avx512f" in text


def retune(argv: list[str], module: str = "benchmarks.run") -> None:
    """Re-execute ``python -m module *argv`` with the tuned environment unless done or refused."""
    if "--no-tune" in argv or os.environ.get("CLEANROOM_BENCH_TUNED") == "1":
        return
    env = {**os.environ, **TUNED_ENV, "CLEANROOM_BENCH_TUNED": "1"}
    if _amd_avx512() and "NPY_DISABLE_CPU_FEATURES" not in os.environ:
        env.update(AVX2_SORT_ENV)
    sys.stdout.flush()
    # The environment must be in place before NumPy and glibc initialise: hence a re-exec.
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)  # noqa: S606
