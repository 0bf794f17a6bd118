"""Bounded reading of upload bodies (host/read_guard.py), the upload admission order, and the CLI's
worker model (issue 11, point 10). The real-host versions are tests/adversarial/test_host_stall.py.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from werkzeug.exceptions import RequestTimeout

from host.cli import DEFAULT_THREADS, upload_connections
from host.read_guard import GuardedStream, ReadLimits, StallWatchdog


class _Trickle:
    """A body that returns ``piece`` bytes per read, ``delay`` seconds after being asked."""

    def __init__(self, piece: int, delay: float) -> None:
        self.piece = piece
        self.delay = delay

    def read(self, size: int = -1) -> bytes:
        time.sleep(self.delay)
        return b"\0" * min(self.piece, size)


class _Stalls:
    def read(self, size: int = -1) -> bytes:
        raise TimeoutError("timed out")  # what a socket with a timeout raises


def _read_until_cut(stream: GuardedStream, limit_s: float) -> float:
    start = time.monotonic()
    with pytest.raises(RequestTimeout):
        while time.monotonic() - start < limit_s:
            stream.read(4096)
    return time.monotonic() - start


def test_the_header_must_arrive_within_its_deadline_whatever_the_pace() -> None:
    stream = GuardedStream(_Trickle(1, 0.02), None, ReadLimits(5, 0.3, 0))
    took = _read_until_cut(stream, 3)
    assert 0.3 <= took < 1.5
    assert stream.cut_reason and "header" in stream.cut_reason


def test_the_body_must_keep_above_the_rate_floor_after_a_grace_period() -> None:
    stream = GuardedStream(_Trickle(1, 0.02), None, ReadLimits(0.3, 5, 10_000))
    stream.header_done()
    took = _read_until_cut(stream, 3)
    assert 0.3 <= took < 1.5
    assert stream.cut_reason and "minimum rate" in stream.cut_reason


def test_time_the_host_spends_elsewhere_is_not_charged_to_the_client() -> None:
    # Fast reads with long pauses between them (the host relaying to a busy enclave).
    stream = GuardedStream(_Trickle(4096, 0), None, ReadLimits(0.1, 5, 10_000))
    stream.header_done()
    for _ in range(5):
        assert len(stream.read(4096)) == 4096
        time.sleep(0.1)
    assert stream.cut_reason is None


def test_a_disabled_floor_never_cuts() -> None:
    stream = GuardedStream(_Trickle(1, 0.02), None, ReadLimits(0.05, 5, 0))
    stream.header_done()
    for _ in range(20):
        stream.read(10)
    assert stream.cut_reason is None


def test_an_idle_socket_timeout_becomes_a_408() -> None:
    stream = GuardedStream(_Stalls(), None, ReadLimits(1, 5, 0))
    with pytest.raises(RequestTimeout):
        stream.read(10)
    assert stream.cut_reason == "no data within the read timeout"
    with pytest.raises(RequestTimeout):  # and stays cut
        stream.read(10)


def test_the_watchdog_wakes_a_read_blocked_inside_the_server() -> None:
    ours, peer = socket.socketpair()
    reader = ours.makefile("rb")
    watchdog = StallWatchdog(tick=0.05)
    try:
        stream = GuardedStream(reader, ours, ReadLimits(30, 0.3, 0))  # idle far away
        outcome: list[Any] = []

        def run() -> None:
            try:
                stream.read(1000)  # blocks: the peer never sends 1000 bytes
            except RequestTimeout as exc:
                outcome.append(exc)

        with watchdog.watching(stream):
            start = time.monotonic()
            thread = threading.Thread(target=run)
            thread.start()
            peer.sendall(b"\0")  # a trickle that resets no deadline
            thread.join(timeout=5)
            took = time.monotonic() - start
        assert not thread.is_alive()
        assert outcome and took < 2
        ours.sendall(b"408")  # only the read side was shut down: the answer can still go out
        peer.settimeout(2)
        assert peer.recv(16) == b"408"
    finally:
        watchdog.stop()
        reader.close()
        ours.close()
        peer.close()


def test_the_cli_keeps_half_the_threads_free_of_uploads() -> None:
    assert upload_connections(DEFAULT_THREADS, 8) == 8
    assert DEFAULT_THREADS - upload_connections(DEFAULT_THREADS, 8) >= 8
    assert upload_connections(4, 8) == 2
    assert upload_connections(1, 8) == 1
    assert upload_connections(64, 8) == 8


def _post(client: Any, body: bytes) -> Any:
    return client.post("/v1/uploads", data=body, content_type="application/octet-stream")


def test_the_upload_slot_is_taken_only_after_the_enclave_accepted_the_header(
        make_app: Any, state_dir: Any, h: Any) -> None:
    app = make_app(CLEANROOM_MAX_CONCURRENT_UPLOADS=1)
    slots = app.extensions["cleanroom"].upload_slots
    client = app.test_client()
    assert slots.acquire(blocking=False)  # one upload is streaming
    try:
        # A header the enclave refuses is answered as such, not with "busy": the enclave was
        # asked before any slot was wanted.
        refused = _post(client, h.build_upload(h.new_id(), [b"x"], mode="poison"))
        assert refused.status_code == 400
        assert refused.get_json()["error"]["code"] == "decrypt_failed"
        # An accepted header finds no slot: the enclave stream it opened is aborted again.
        busy = _post(client, h.build_upload(h.new_id(), [b"x"]))
        assert busy.status_code == 503
        assert busy.get_json()["error"]["code"] == "enclave_busy"
        assert h.wait_for(lambda: "abort" in h.events(state_dir))
    finally:
        slots.release()
    assert _post(client, h.build_upload(h.new_id(), [b"x"])).status_code == 201


def test_upload_connections_beyond_the_limit_are_refused_before_reading(make_app: Any, h: Any) -> None:
    app = make_app(CLEANROOM_MAX_UPLOAD_CONNECTIONS=1)
    connections = app.extensions["cleanroom"].upload_connections
    assert connections.acquire(blocking=False)  # one request is receiving its header
    try:
        response = _post(app.test_client(), h.build_upload(h.new_id(), [b"x"]))
    finally:
        connections.release()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "enclave_busy"
