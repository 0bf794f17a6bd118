"""A line on stderr while a request takes more than a second: the party sees it is running.

A query's answer leaves the enclave only at its release deadline (docs/privacy.md), which for a
large declared ``max_rows`` is many seconds, and a co-signed query waits for its approvers; with
nothing on the screen that looks like a hang. Only on a terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["running"]


@contextmanager
def running(what: str, *, after: float = 1.0, every: float = 1.0,
            stream: TextIO | None = None) -> Iterator[None]:
    """Show ``what ... N s`` on a terminal after ``after`` seconds, updated, until the block ends."""
    out = sys.stderr if stream is None else stream
    if not out.isatty():
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        if done.wait(after):
            return
        while not done.is_set():
            out.write(f"\r{what} ... {time.monotonic() - started:.0f} s")
            out.flush()
            done.wait(every)
        out.write("\r\033[K")
        out.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(2)
