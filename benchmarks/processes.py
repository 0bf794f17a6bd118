"""Where a real host's time goes, seen from outside: child processes, CPU seconds, py-spy.

Linux only (``/proc``). Used by ``benchmarks/http_path.py`` on the host that the shared harness
(``tests/support/deployment.py``) started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["children", "cpu_seconds", "profiling"]

_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


@contextlib.contextmanager
def profiling(pids: Sequence[int], out_dir: Path | None, tag: str) -> Iterator[None]:
    """py-spy flame graphs of ``pids`` while the block runs (if asked and py-spy is there)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if out_dir is None or spy is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
                               "-o", str(out_dir / f"{tag}-{pid}.svg")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for pid in pids]
    time.sleep(0.5)  # let py-spy attach before the measured work starts
    try:
        yield
    finally:
        for proc in procs:  # SIGINT makes py-spy write its output and exit
            proc.send_signal(2)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
