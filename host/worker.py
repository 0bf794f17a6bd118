"""gunicorn's gthread worker with a read timeout on every connection (issue 11, point 10).

Stock gthread reads a request's head and body on a blocking socket with no timeout: a client
that sends half a request line, or the headers and then nothing, holds a thread for as long as it
keeps the connection open. This worker sets the socket timeout to ``CLEANROOM_UPLOAD_READ_TIMEOUT``
(``--read-timeout``) every time a thread picks a connection up, so no ``recv`` waits longer than
that for the next byte. A timeout while the head is still being read is reported to gunicorn as
an end of stream (it closes the connection quietly, with a debug line, instead of logging a
traceback); a timeout while the app reads the body reaches the app as ``TimeoutError``, which
``host/read_guard.py`` and ``host/errors.py`` answer with 408.

Closing is not allowed to wait for a client either: gunicorn lingers for the peer in its main
loop, so connections this worker closes are handed to one background "lingerer" thread
(``handle``), and the app may ask for a connection to be closed after a refusal instead of
having its unread body drained for up to 5 s (``FORCE_CLOSE_KEY``).

Everything else is gunicorn's own worker; ``load_wsgi``, ``enqueue_req``, ``handle`` and
``handle_request`` are wrapped, not replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import threading
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from host.config import READ_TIMEOUT_ENV, SETTINGS
from host.read_guard import FORCE_CLOSE_KEY

__all__ = ["ReadTimeoutThreadWorker"]


def _read_timeout() -> float:
    """The setting's own parse and default (``host.config``); an unparseable value, which the
    CLI has already refused, falls back to the default rather than stopping the worker."""
    setting = SETTINGS[READ_TIMEOUT_ENV]
    try:
        return float(setting.parse(os.environ.get(READ_TIMEOUT_ENV, setting.default)))
    except (TypeError, ValueError):
        return float(setting.default)


class _ClosedSocket:
    """Stands in for a socket handed to the lingerer: gunicorn's close of it does nothing."""

    def shutdown(self, how: int) -> None:
        raise OSError(errno.EBADF, "handed to the lingerer")

    def setblocking(self, flag: bool) -> None:
        pass

    def close(self) -> None:
        pass


_CLOSED = _ClosedSocket()


class _Lingerer:
    """Closes sockets as RFC 9112 section 9.6 asks, without blocking whoever closes them.

    ``close`` half-closes the write side (the peer gets every byte of the response, then FIN)
    and registers the socket; one thread reads and discards what the peer still sends and fully
    closes the socket when the peer hangs up, after ``max_drain`` bytes, or after ``linger`` s.
    """

    def __init__(self, linger: float = 2.0, max_drain: int = 128 * 1024) -> None:
        self._linger = linger
        self._max_drain = max_drain
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._incoming: list[tuple[socket.socket, float]] = []
        self._open: dict[socket.socket, list[float]] = {}  # sock -> [deadline, drained]
        threading.Thread(target=self._run, name="linger-close", daemon=True).start()

    def close(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        with self._lock:
            self._incoming.append((sock, time.monotonic() + self._linger))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _finish(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(sock)
        self._open.pop(sock, None)
        sock.close()

    def _run(self) -> None:
        while True:
            with self._lock:
                incoming, self._incoming = self._incoming, []
            for sock, deadline in incoming:
                try:
                    self._selector.register(sock, selectors.EVENT_READ)
                except (OSError, ValueError):
                    sock.close()
                    continue
                self._open[sock] = [deadline, 0]
            for key, _ in self._selector.select(timeout=0.25):
                sock = key.fileobj
                if sock is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    continue
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                state = self._open.get(sock)
                if state is None:
                    continue
                state[1] += len(data)
                if not data or state[1] >= self._max_drain:
                    self._finish(sock)
            now = time.monotonic()
            for sock in [s for s, (deadline, _) in self._open.items() if deadline <= now]:
                self._finish(sock)


_LINGERER: _Lingerer | None = None
_LINGERER_LOCK = threading.Lock()


def _lingerer() -> _Lingerer:
    global _LINGERER
    with _LINGERER_LOCK:
        if _LINGERER is None:
            _LINGERER = _Lingerer()
        return _LINGERER


class _HeadUnreaderGuard:
    """Wraps a parser's ``unreader.chunk``: a timeout before the head is parsed is an EOF."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.chunk = conn.parser.unreader.chunk

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        try:
            return self.chunk(*args, **kwargs)
        except TimeoutError:
            if getattr(self.conn, "cleanroom_in_head", False):
                return b""  # gunicorn: NoMoreData / StopIteration, the connection is closed
            raise


class ReadTimeoutThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, plus a bounded wait for every byte a client sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = _read_timeout()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            # start_response is gunicorn's Response.start_response: let the app ask for the
            # connection to be closed (no keep-alive, no 5 s drain of an unread body).
            response = getattr(start_response, "__self__", None)
            if response is not None and hasattr(response, "force_close"):
                environ[FORCE_CLOSE_KEY] = response.force_close
            return app(environ, start_response)

        self.wsgi = wsgi

    def enqueue_req(self, conn: Any) -> None:
        if "init" not in vars(conn):
            original_init = conn.init
            timeout = self.read_timeout

            def init() -> None:
                original_init()  # handle() has just made the socket blocking (no timeout)
                conn.cleanroom_in_head = True
                if conn.is_http2 or conn.parser is None:
                    return
                conn.sock.settimeout(timeout)
                unreader = conn.parser.unreader
                if not isinstance(getattr(unreader, "chunk", None), _HeadUnreaderGuard):
                    unreader.chunk = _HeadUnreaderGuard(conn)

            conn.init = init
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        result = super().handle(conn)
        if result is False and not conn.is_http2:
            # gunicorn would close the connection gracefully (half-close, then linger up to 2 s
            # for the peer to hang up) in its main loop, which accepts nothing meanwhile: four
            # silent clients cut off together stopped the host accepting for 8 s. The lingering
            # is handed to one background thread instead, so neither the main loop nor this
            # pool thread waits for a silent peer; the main loop's own close finds nothing left.
            sock, conn.sock = conn.sock, _CLOSED
            _lingerer().close(sock)
        return result

    def handle_request(self, req: Any, conn: Any) -> Any:
        conn.cleanroom_in_head = False  # the head is in: body timeouts now reach the app
        return super().handle_request(req, conn)
