"""Bounded reading of an upload body: idle timeout, header deadline, rate floor (issue 11.10).

Anyone who reaches the port can open ``POST /v1/uploads`` and go silent, or trickle a byte just
often enough to dodge an idle timeout. Three limits, all configurable (``host/config.py``):

- **idle** (``CLEANROOM_UPLOAD_READ_TIMEOUT``): the socket's own timeout, so no single ``recv``
  waits longer than this for the next byte;
- **header deadline** (``CLEANROOM_UPLOAD_HEADER_TIMEOUT``): record 0, the signed header, must
  arrive whole within this many seconds of the request reaching the view, whatever the pace;
- **rate floor** (``CLEANROOM_UPLOAD_MIN_RATE``): after the header, once the client has had a
  grace period (the idle timeout), the body must average at least this many bytes per second
  of time spent waiting for the client. Time the host spends relaying chunks to the enclave
  (which may be busy with other uploads) is not counted against the client.

The deadline and the floor are enforced by ``StallWatchdog``, one thread per app: a read that
blocks inside the WSGI server (which loops over ``recv`` until it has what was asked) cannot see
the clock, so the watchdog shuts the socket's read side down, which wakes that ``recv`` with an
end of stream. ``GuardedStream.read`` then raises ``RequestTimeout`` (408) rather than letting
the parser report a truncated body.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import weakref
from typing import Protocol

from werkzeug.exceptions import RequestTimeout

__all__ = ["FORCE_CLOSE_KEY", "GuardedStream", "ReadLimits", "StallWatchdog"]

# WSGI environ key (set by host/worker.py): a callable that makes the server close the connection
# after this response instead of keeping it alive and draining the unread body.
FORCE_CLOSE_KEY = "cleanroom.force_close"

log = logging.getLogger(__name__)

_TICK_S = 0.2


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ReadLimits:
    """The three limits of one upload; ``min_rate`` 0 disables the floor."""

    def __init__(self, idle_timeout: float, header_timeout: float, min_rate: float) -> None:
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.min_rate = min_rate

    @classmethod
    def from_config(cls, config: dict[str, object] | object) -> ReadLimits:
        get = config.__getitem__  # type: ignore[union-attr]
        return cls(get("CLEANROOM_UPLOAD_READ_TIMEOUT"), get("CLEANROOM_UPLOAD_HEADER_TIMEOUT"),
                   get("CLEANROOM_UPLOAD_MIN_RATE"))


class GuardedStream:
    """A body stream that enforces ``ReadLimits``; ``sock`` (may be None) is what a cut closes."""

    def __init__(self, stream: _Readable, sock: socket.socket | None, limits: ReadLimits) -> None:
        self._stream = stream
        self._sock = sock
        self._limits = limits
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._in_header = True
        self._client_time = 0.0  # seconds spent inside read(), i.e. waiting for the client
        self._waiting_since: float | None = None
        self._body_time = 0.0  # _client_time when the header was done
        self._body_bytes = 0
        self.cut_reason: str | None = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(limits.idle_timeout)

    def read(self, size: int = -1, /) -> bytes:
        self._raise_if_cut()
        with self._lock:
            self._waiting_since = time.monotonic()
        try:
            data = self._stream.read(size)
        except TimeoutError:  # socket.timeout: no byte within the idle timeout
            self._cut("no data within the read timeout", shutdown=True)
            raise RequestTimeout("the upload body stalled") from None
        finally:
            with self._lock:
                if self._waiting_since is not None:
                    self._client_time += time.monotonic() - self._waiting_since
                self._waiting_since = None
        self._raise_if_cut()  # data may be short: the watchdog woke the read with an end of stream
        if not self._in_header:
            self._body_bytes += len(data)
        reason = self.overdue(time.monotonic())
        if reason is not None:
            self._cut(reason, shutdown=True)
            self._raise_if_cut()
        return data

    def header_done(self) -> None:
        """Record 0 is in: from now on the rate floor applies instead of the header deadline."""
        with self._lock:
            self._in_header = False
            self._body_time = self._client_time

    def overdue(self, now: float) -> str | None:
        """Why this stream should be cut now, or None."""
        with self._lock:
            if self.cut_reason is not None:
                return None
            if self._in_header:
                if now - self._start > self._limits.header_timeout:
                    return "the upload header did not arrive within the header timeout"
                return None
            if not self._limits.min_rate:
                return None
            waiting = self._client_time - self._body_time
            if self._waiting_since is not None:
                waiting += now - self._waiting_since
            grace = self._limits.idle_timeout
            if waiting > grace and self._body_bytes < self._limits.min_rate * (waiting - grace):
                return "the upload body is slower than the minimum rate"
            return None

    def _cut(self, reason: str, *, shutdown: bool) -> None:
        with self._lock:
            if self.cut_reason is not None:
                return
            self.cut_reason = reason
        log.info("upload connection cut off: %s", reason)
        if shutdown and self._sock is not None:
            # Wakes a recv blocked in the WSGI server with an end of stream, and makes the
            # server's drain of the unread body end at once; the write side stays open for
            # the 408.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RD)

    def cut_by_watchdog(self, reason: str) -> None:
        self._cut(reason, shutdown=True)

    def _raise_if_cut(self) -> None:
        if self.cut_reason is not None:
            raise RequestTimeout("the upload was too slow: " + self.cut_reason)


class StallWatchdog:
    """One daemon thread that cuts off guarded streams past their deadline or under the floor."""

    def __init__(self, tick: float = _TICK_S) -> None:
        self._tick = tick
        self._streams: weakref.WeakSet[GuardedStream] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(self, stream: GuardedStream):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._stopped:
                raise RuntimeError("watchdog stopped")
            self._streams.add(stream)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="upload-stall-watchdog",
                                                daemon=True)
                self._thread.start()
        try:
            yield stream
        finally:
            with self._lock:
                self._streams.discard(stream)

    def _run(self) -> None:
        while not self._wake.wait(self._tick):
            with self._lock:
                streams = list(self._streams)
            now = time.monotonic()
            for stream in streams:
                reason = stream.overdue(now)
                if reason is not None:
                    stream.cut_by_watchdog(reason)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=5)
