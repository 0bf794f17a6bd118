"""Runs the enclave as a child process and keeps exactly one healthy connection to it.

Start: listen on an ephemeral loopback port, spawn the enclave command with
``CLEANROOM_ENCLAVE_CONNECT`` and ``CLEANROOM_STATE_DIR`` in its environment, accept its
connection, send ``init {policy}``, expect ``ready``, then run the ``on_start`` hook (the replay
of stored uploads) before any request may use the enclave. The child's stdout and stderr go to
the host log, line by line and prefixed; they are never parsed for data.

Failure: a dead child or a broken channel makes every request fail at once with
``EnclaveUnavailable`` (HTTP 503) while a background thread starts a new child, with a doubling,
capped delay and a bounded number of consecutive attempts. Requests are never queued behind a
restart. Each incarnation gets a new ``generation``; an ``EnclaveHandle`` stays pinned to the
incarnation it came from, so an upload stream can never continue in a different enclave.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host.relay import Caller, EnclaveChannel, EnclaveUpload
from host.storage import UploadStore
from host.upload_stream import UploadChunk, UploadHeader, iter_upload_records
from protocol.errors import CleanroomError, EnclaveUnavailable, ProtocolError, StateError
from protocol.wire import Message

__all__ = [
    "EnclaveHandle",
    "EnclaveInfo",
    "EnclaveSupervisor",
    "SupervisorSettings",
    "replay_uploads",
]

log = logging.getLogger(__name__)
_child_log = logging.getLogger("host.enclave")

_ACCEPT_POLL = 0.2
_MAX_LOG_LINE = 4096


@dataclass(frozen=True)
class SupervisorSettings:
    command: list[str]
    cwd: Path
    state_dir: Path  # the host's; the child gets <state_dir>/enclave
    start_timeout: float = 120.0
    call_timeout: float = 300.0
    stop_timeout: float = 10.0
    restart_delay: float = 0.5
    restart_max_delay: float = 30.0
    max_restarts: int = 20

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SupervisorSettings:
        return cls(
            command=list(config["CLEANROOM_ENCLAVE_COMMAND"]),
            cwd=Path(config["CLEANROOM_ENCLAVE_CWD"]),
            state_dir=Path(config["CLEANROOM_STATE_DIR"]),
            start_timeout=config["CLEANROOM_ENCLAVE_START_TIMEOUT"],
            call_timeout=config["CLEANROOM_ENCLAVE_CALL_TIMEOUT"],
            stop_timeout=config["CLEANROOM_ENCLAVE_STOP_TIMEOUT"],
            restart_delay=config["CLEANROOM_ENCLAVE_RESTART_DELAY"],
            restart_max_delay=config["CLEANROOM_ENCLAVE_RESTART_MAX_DELAY"],
            max_restarts=config["CLEANROOM_ENCLAVE_MAX_RESTARTS"],
        )


@dataclass(frozen=True)
class EnclaveInfo:
    """What the enclave said in ``ready``, plus which incarnation said it."""

    generation: int
    mode: str
    policy_hash: bytes
    enc_pub: bytes
    sig_pub: bytes


class EnclaveHandle:
    """Calls into one enclave incarnation; a failure reports the incarnation dead."""

    def __init__(self, channel: EnclaveChannel, info: EnclaveInfo, timeout: float,
                 on_failure: Callable[[EnclaveChannel], None]) -> None:
        self._channel = channel
        self.info = info
        self._timeout = timeout
        self._on_failure = on_failure

    def call(self, type_: str, body: Mapping[str, Any], *, timeout: float | None = None,
             expect: str | tuple[str, ...] | None = None) -> Message:
        try:
            return self._channel.call(type_, body, timeout=timeout or self._timeout, expect=expect)
        except EnclaveUnavailable:
            self._on_failure(self._channel)
            raise


@dataclass
class _Incarnation:
    process: subprocess.Popen[bytes]
    channel: EnclaveChannel
    handle: EnclaveHandle
    monitor: threading.Thread
    started_at: float = field(default_factory=time.monotonic)


class EnclaveSupervisor:
    """Owns the enclave child process; thread-safe."""

    def __init__(self, settings: SupervisorSettings, policy: bytes, *,
                 on_start: Callable[[Caller], None] | None = None) -> None:
        self._settings = settings
        self._policy = policy
        self._on_start = on_start
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._current: _Incarnation | None = None
        self._restarter: threading.Thread | None = None
        self._generation = 0
        self._next_delay = settings.restart_delay
        self._gave_up = False

    # lifecycle

    def start(self) -> None:
        """Start the first enclave and wait until it is ready; raise if it does not come up."""
        with self._lock:
            if self._current is not None or self._stop_event.is_set():
                raise RuntimeError("supervisor already started or stopped")
        atexit.register(self.stop)
        try:
            incarnation = self._launch()
        except BaseException:
            atexit.unregister(self.stop)
            raise
        with self._lock:
            self._current = incarnation

    def stop(self) -> None:
        """Stop the enclave (EOF, then SIGTERM, then SIGKILL) and any restart in progress."""
        self._stop_event.set()
        atexit.unregister(self.stop)
        with self._lock:
            current, self._current = self._current, None
            restarter = self._restarter
        if current is not None:
            self._dispose(current)
        if restarter is not None and restarter is not threading.current_thread():
            restarter.join(self._settings.start_timeout + 2 * self._settings.stop_timeout)

    # requests

    @property
    def info(self) -> EnclaveInfo | None:
        with self._lock:
            return None if self._current is None else self._current.handle.info

    @property
    def child_pid(self) -> int | None:
        with self._lock:
            return None if self._current is None else self._current.process.pid

    def handle(self) -> EnclaveHandle:
        """The current enclave, or ``EnclaveUnavailable`` at once (starting a restart if due)."""
        with self._lock:
            current = self._current
        if current is None:
            raise EnclaveUnavailable()
        if current.channel.broken or current.process.poll() is not None:
            self._failed(current.channel)
            raise EnclaveUnavailable()
        return current.handle

    def call(self, type_: str, body: Mapping[str, Any], *, timeout: float | None = None,
             expect: str | tuple[str, ...] | None = None) -> Message:
        return self.handle().call(type_, body, timeout=timeout, expect=expect)

    # failure and restart

    def _failed(self, channel: EnclaveChannel) -> None:
        with self._lock:
            current = self._current
            if current is None or current.channel is not channel or self._stop_event.is_set():
                return  # already being replaced, or shutting down
            self._current = None
            lived = time.monotonic() - current.started_at
            # Reset the backoff only after an incarnation that ran for a while, so a child that
            # dies right after start is retried ever more slowly rather than in a tight loop.
            if lived > self._settings.restart_max_delay:
                self._next_delay = self._settings.restart_delay
            self._restarter = threading.Thread(
                target=self._restart, args=(current,), name="enclave-restart", daemon=True
            )
            self._restarter.start()
        log.warning("enclave (generation %d) is gone; restarting", current.handle.info.generation)

    def _restart(self, dead: _Incarnation) -> None:
        self._dispose(dead)
        for attempt in range(1, self._settings.max_restarts + 1):
            delay = self._next_delay
            self._next_delay = min(delay * 2, self._settings.restart_max_delay)
            if self._stop_event.wait(delay):
                return
            try:
                incarnation = self._launch()
            except Exception as exc:
                log.error("enclave restart attempt %d failed: %s", attempt, _describe(exc))
                continue
            with self._lock:
                if not self._stop_event.is_set():
                    self._current = incarnation
                    return
            self._dispose(incarnation)
            return
        self._gave_up = True
        log.critical("enclave did not restart after %d attempts; the host stays unavailable",
                     self._settings.max_restarts)

    # one incarnation

    def _launch(self) -> _Incarnation:
        settings = self._settings
        enclave_state = settings.state_dir / "enclave"
        enclave_state.mkdir(parents=True, exist_ok=True, mode=0o700)
        channel: EnclaveChannel | None = None
        process: subprocess.Popen[bytes] | None = None
        monitor: threading.Thread | None = None
        started = time.monotonic()
        try:
            # The listener lives only until the child connects: one connection, then closed.
            with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
                host, port = listener.getsockname()[:2]
                env = {**os.environ, "CLEANROOM_ENCLAVE_CONNECT": f"{host}:{port}",
                       "CLEANROOM_STATE_DIR": str(enclave_state)}
                # A new session: a Ctrl-C meant for the host does not reach the enclave
                # directly; the host stops it in order.
                process = subprocess.Popen(
                    settings.command, cwd=settings.cwd, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                )
                monitor = threading.Thread(target=self._monitor, args=(process,),
                                           name=f"enclave-{process.pid}", daemon=True)
                monitor.start()
                conn = self._accept(listener, process)
            connected = time.monotonic()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            channel = EnclaveChannel(conn)
            generation = self._generation + 1
            info = self._init(channel, generation)
            handle = EnclaveHandle(channel, info, settings.call_timeout, self._failed)
            if self._on_start is not None:
                bound = channel
                self._on_start(lambda t, b: bound.call(t, b, timeout=settings.call_timeout))
        except BaseException:
            if channel is not None:
                channel.close()
            if process is not None:
                self._terminate(process)
            if monitor is not None:
                monitor.join(settings.stop_timeout)
            raise
        self._generation = generation
        # The start-up time, split where the host can see it: spawn to connect-back (for
        # Gramine: the library OS, the interpreter and every import) and the init round trip.
        log.info("enclave ready: pid %d, generation %d, mode %s, in %.1f s (connected after %.1f s)",
                 process.pid, generation, info.mode, time.monotonic() - started, connected - started)
        return _Incarnation(process, channel, handle, monitor)

    def _accept(self, listener: socket.socket, process: subprocess.Popen[bytes]) -> socket.socket:
        listener.settimeout(_ACCEPT_POLL)
        deadline = time.monotonic() + self._settings.start_timeout
        while True:
            try:
                conn, _ = listener.accept()
                return conn
            except TimeoutError:
                pass
            if process.poll() is not None:
                raise EnclaveUnavailable(
                    f"the enclave exited during start with status {process.returncode}; its "
                    f"output is in the host log, lines 'enclave[{process.pid}]: ...'")
            if self._stop_event.is_set():
                raise EnclaveUnavailable("the host is shutting down")
            if time.monotonic() > deadline:
                raise EnclaveUnavailable("the enclave did not connect in time")

    def _init(self, channel: EnclaveChannel, generation: int) -> EnclaveInfo:
        reply = channel.call("init", {"policy": self._policy},
                             timeout=self._settings.start_timeout, expect="ready")
        body = reply.body
        if body["policy_hash"] != hashlib.sha256(self._policy).digest():
            raise StateError("the enclave loaded a different policy")
        return EnclaveInfo(generation, body["mode"], body["policy_hash"],
                           body["enc_pub"], body["sig_pub"])

    def _monitor(self, process: subprocess.Popen[bytes]) -> None:
        """Copy the child's output to the log until EOF, then report its exit."""
        assert process.stdout is not None
        prefix = f"enclave[{process.pid}]"
        try:
            for line in iter(lambda: process.stdout.readline(_MAX_LOG_LINE), b""):
                text = line.decode("utf-8", "replace").rstrip()
                # Escape control characters so the child cannot forge host log lines.
                _child_log.info("%s: %s", prefix, text.encode("unicode_escape").decode("ascii"))
        except (OSError, ValueError):  # the pipe was closed under us during shutdown
            pass
        finally:
            process.stdout.close()
        code = process.wait()
        log.info("%s exited with status %d", prefix, code)
        with self._lock:
            current = self._current
        if current is not None and current.process is process:
            self._failed(current.channel)

    def _dispose(self, incarnation: _Incarnation) -> None:
        incarnation.channel.close()
        self._terminate(incarnation.process)
        if incarnation.monitor is not threading.current_thread():
            incarnation.monitor.join(self._settings.stop_timeout)

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        # EOF on its connection is the polite request; then SIGTERM; then SIGKILL.
        timeout = self._settings.stop_timeout
        for step in ("eof", "terminate", "kill"):
            if step == "terminate":
                process.terminate()
            elif step == "kill":
                log.warning("enclave pid %d ignored SIGTERM; killing it", process.pid)
                process.kill()
            try:
                process.wait(timeout / 2 if step == "eof" else timeout)
                return
            except subprocess.TimeoutExpired:
                continue


def _describe(exc: BaseException) -> str:
    return exc.code if isinstance(exc, CleanroomError) else type(exc).__name__


def replay_uploads(store: UploadStore, call: Caller) -> None:
    """Send every stored upload, in acceptance order, through begin/chunks/commit.

    The enclave re-ingests exactly the uploads its sealed manifest lists; one it refuses, or a
    stored file that does not parse, is moved to quarantine. ``EnclaveUnavailable`` propagates:
    the enclave died and the start attempt fails.
    """
    count = 0
    for upload_id in store.accepted():
        try:
            with store.open(upload_id) as stored:
                _replay_one(stored, call, upload_id)
            count += 1
        except EnclaveUnavailable:
            raise
        except CleanroomError as exc:
            log.warning("stored upload %s refused on replay: %s", upload_id.hex(), exc.code)
            store.quarantine(upload_id)
        except OSError as exc:
            log.error("stored upload %s unreadable: %s", upload_id.hex(), type(exc).__name__)
    if count:
        log.info("replayed %d stored uploads", count)


def _replay_one(stored: Any, call: Caller, upload_id: bytes) -> None:
    size = os.fstat(stored.fileno()).st_size
    records = _stored_records(iter_upload_records(stored, max_bytes=size))
    first = next(records)
    assert isinstance(first, UploadHeader)
    upload = EnclaveUpload.begin(call, first.header, first.signature, replay=True)
    try:
        if upload.upload_id != upload_id:
            raise StateError("stored upload is filed under another id")
        for chunk in records:
            assert isinstance(chunk, UploadChunk)
            upload.chunk(chunk.last, chunk.data)
        upload.commit()
    except BaseException:
        upload.abort_quietly()
        raise


def _stored_records(records: Iterator[Any]) -> Iterator[Any]:
    """A stored file that does not parse was damaged on disk: say so, not "malformed request"."""
    try:
        yield from records
    except ProtocolError as exc:
        raise StateError("the stored upload is truncated or corrupt") from exc
