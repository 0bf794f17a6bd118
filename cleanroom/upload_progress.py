"""Progress of reading a party's file, on stderr: bytes and rows read, rows/s, MB/s, elapsed, ETA.

Shown only when stderr is a terminal (one updating line) or with ``--progress`` (a line every
few seconds, for logs); otherwise nothing, so scripted runs and tests keep clean output. The
share read is of the file on disk (compressed bytes for ``.csv.gz``/``.csv.zst``; whole row
groups for Parquet), which is what the ETA extrapolates.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["ProgressPrinter", "human_bytes", "human_seconds"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def human_seconds(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ProgressPrinter:
    """Call it with any object holding ``rows_done``/``bytes_done``/``bytes_total`` (and
    optionally ``sent_bytes``, ``ignored_columns``); ``done()`` prints the final totals."""

    def __init__(self, *, enabled: bool | None = None, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, what: str = "read") -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()
        self.enabled = self.tty if enabled is None else enabled
        self.clock = clock
        self.what = what
        self.started = clock()
        self.last = 0.0
        self.latest: Any = None

    def __call__(self, p: Any) -> None:
        if not self.enabled:
            return
        if self.latest is None and getattr(p, "ignored_columns", ()):
            print("ignored columns (not named by the policy, never uploaded): "
                  + ", ".join(p.ignored_columns), file=self.stream)
        self.latest = p
        now = self.clock()
        if now - self.last >= (0.2 if self.tty else 5.0):
            self.last = now
            self._show(p)

    def line(self, p: Any) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        done, total = p.bytes_done, p.bytes_total
        share = f" of {human_bytes(total)} ({100 * done // total}%)" if total else ""
        text = (f"{self.what} {human_bytes(done)}{share}, {p.rows_done:,} rows, "
                f"{p.rows_done / elapsed:,.0f} rows/s, {done / elapsed / 1e6:.1f} MB/s, "
                f"elapsed {human_seconds(elapsed)}")
        if total and 0 < done < total:
            text += f", ETA {human_seconds(elapsed * (total - done) / done)}"
        sent = getattr(p, "sent_bytes", None)
        if sent:
            text += f", sent {human_bytes(sent)}"
        return text

    def _show(self, p: Any) -> None:
        text = self.line(p)
        print(("\r" + text + "   ") if self.tty else text, end="" if self.tty else "\n",
              file=self.stream, flush=True)

    def done(self) -> None:
        if self.enabled and self.latest is not None:
            self._show(self.latest)  # the final totals, whatever the throttle skipped
            if self.tty:
                print(file=self.stream)


class TableProgress:
    """The progress fields of a ``cleanroom.tables.Table`` being read (for ``validate``)."""

    def __init__(self, table: Any) -> None:
        self.rows_done = table.rows_read
        self.bytes_done = table.bytes_read
        self.bytes_total = table.total_bytes
        self.ignored_columns = table.extra_columns
