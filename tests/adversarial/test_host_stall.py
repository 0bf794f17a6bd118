"""Anyone who reaches the port opens upload connections and then goes silent (issue 11, point 10).

Each test starts its own real host (gunicorn, CLI defaults for threads and worker) with short
read timeouts where the test needs them, opens raw loopback sockets that send an upload's HTTP
headers and a few body bytes and then nothing, and checks that valid uploads, ``/v1/health`` and
``/v1/attestation`` are still answered within a few seconds, and that silent connections are cut
off once the host's read timeouts expire. Every loop is bounded and every socket is closed.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleanroom.keys import PartyKeys
from protocol.policy import Policy
from protocol.upload import RECORD_HEADER
from tests.adversarial.kit import (
    ALLOW_SIMULATION,
    OCTET,
    MarkedData,
    SealedUpload,
    assert_no_leak,
    assert_still_serving,
    encrypt_csv,
)
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow

ANSWER_WITHIN_S = 5.0  # "a few seconds": far below any read timeout the default host uses


def _deployment(tmp_path: Path, policy_bytes: bytes, **env: str) -> HostDeployment:
    (tmp_path / "deployment").mkdir()
    # threads=None: the CLI's own default thread count, i.e. the production worker model.
    return HostDeployment(tmp_path / "deployment", policy_bytes, threads=None, env=env)


class _Silent:
    """Raw upload connections that send headers and a prefix of the body, then stay silent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []

    def open(self, prefix: bytes = RECORD_HEADER.pack(1000), content_length: int = 1 << 20) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sockets.append(sock)
        head = (f"POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {content_length}\r\n\r\n")
        sock.sendall(head.encode() + prefix)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()


@contextlib.contextmanager
def _silent(port: int) -> Iterator[_Silent]:
    silent = _Silent(port)
    try:
        yield silent
    finally:
        silent.close()


def _reply_or_close(sock: socket.socket, timeout: float) -> tuple[float, int | None]:
    """Wait for the host to answer or hang up; (seconds it took, HTTP status or None)."""
    start = time.monotonic()
    sock.settimeout(timeout)
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        status: int | None = response.status
        response.read()
    except (http.client.HTTPException, ConnectionError):
        status = None  # hung up without a complete answer: cut off too
    except TimeoutError:
        pytest.fail(f"a silent connection was still open after {timeout:g} s")
    finally:
        response.close()
    return time.monotonic() - start, status


def _timed(host: HostDeployment, method: str, path: str, body: bytes | None = None,
           headers: dict[str, str] | None = None) -> tuple[float, int]:
    start = time.monotonic()
    try:
        reply = host.request(method, path, body, headers, timeout=ANSWER_WITHIN_S)
    except TimeoutError:
        pytest.fail(f"{method} {path} was not answered within {ANSWER_WITHIN_S:g} s")
    return time.monotonic() - start, reply.status


def _sealed(host: HostDeployment, policy: Policy, policy_bytes: bytes, parties: dict[str, PartyKeys],
            marked: MarkedData, count: int) -> list[SealedUpload]:
    enclave = host.client.verify(policy_bytes, ALLOW_SIMULATION)
    return [encrypt_csv(policy, parties["advertiser"], "conversions", marked.conversions(rows=50),
                        enclave.enc_pub) for _ in range(count)]


def test_silent_upload_connections_do_not_block_uploads_or_health(
        tmp_path: Path, policy_bytes: bytes, policy: Policy, parties: dict[str, PartyKeys],
        marked: MarkedData) -> None:
    # More silent connections than upload slots (4), fewer than the upload connections the host
    # admits (8): none of them has sent a signed header, so none may hold an upload slot.
    with _deployment(tmp_path, policy_bytes) as host:
        upload, = _sealed(host, policy, policy_bytes, parties, marked, 1)
        with _silent(host.port) as silent:
            for _ in range(6):
                silent.open()
            time.sleep(0.5)  # every silent request is inside the upload view by now
            for path in ("/v1/health", "/v1/attestation?nonce=" + "cd" * 32):
                took, status = _timed(host, "GET", path)
                assert status == 200, path
                assert took < ANSWER_WITHIN_S
            took, status = _timed(host, "POST", "/v1/uploads", upload.body, OCTET)
            assert status == 201, "a valid upload was refused while silent connections stay open"
        assert_no_leak(host, marked)
        assert_still_serving(host)


def test_many_silent_connections_leave_health_and_attestation_answered(
        tmp_path: Path, policy_bytes: bytes) -> None:
    # As many silent uploads as the host has threads: half are admitted and wait for their
    # header, the rest are refused at once and closed without waiting for their bodies.
    with _deployment(tmp_path, policy_bytes) as host, _silent(host.port) as silent:
        for _ in range(16):
            silent.open()
        time.sleep(0.5)
        for _ in range(3):  # and again, while the refused ones are being closed
            for path in ("/v1/health", "/v1/attestation?nonce=" + "ef" * 32):
                took, status = _timed(host, "GET", path)
                assert status == 200, path
                assert took < ANSWER_WITHIN_S
            time.sleep(0.5)
        refused = 0
        for sock in silent.sockets:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError, ConnectionError):
                refused += sock.recv(64).startswith(b"HTTP/1.1 503")
        assert refused >= 1, "no silent upload was refused: the admission limit is not in force"
        assert_still_serving(host)


def test_a_silent_upload_connection_is_cut_off_after_the_read_timeout(
        tmp_path: Path, policy_bytes: bytes) -> None:
    env = {"CLEANROOM_UPLOAD_READ_TIMEOUT": "1", "CLEANROOM_UPLOAD_HEADER_TIMEOUT": "2"}
    with _deployment(tmp_path, policy_bytes, **env) as host, _silent(host.port) as silent:
        idle = silent.open()  # 4 bytes of a record prefix, then nothing: the idle read timeout
        took, status = _reply_or_close(idle, timeout=8)
        assert took < 5 and status == 408
        # A trickle (a byte every 0.5 s, under the idle timeout) still meets the header deadline.
        trickle = silent.open(prefix=b"")
        start = time.monotonic()
        with contextlib.suppress(OSError):
            for _ in range(16):  # 8 s at most
                trickle.sendall(b"\x00")
                time.sleep(0.5)
                if time.monotonic() - start > 3.5:
                    break
        took, status = _reply_or_close(trickle, timeout=8)
        assert time.monotonic() - start < 6 and status == 408
        # Half a request line, then nothing: the head is read under the same idle timeout.
        head = socket.create_connection(("127.0.0.1", host.port), timeout=5)
        silent.sockets.append(head)
        head.sendall(b"POST /v1/upl")
        took, status = _reply_or_close(head, timeout=8)
        assert took < 5 and status is None  # closed without an answer: no request to answer
        assert_still_serving(host)


def test_an_upload_stalled_after_its_signed_header_is_cut_off_and_frees_its_slot(
        tmp_path: Path, policy_bytes: bytes, policy: Policy, parties: dict[str, PartyKeys],
        marked: MarkedData) -> None:
    env = {"CLEANROOM_UPLOAD_READ_TIMEOUT": "2"}
    with _deployment(tmp_path, policy_bytes, **env) as host, _silent(host.port) as silent:
        *stalled, valid = _sealed(host, policy, policy_bytes, parties, marked, 5)
        # Four genuine signed headers, then silence: these do hold the four upload slots.
        held = [silent.open(prefix=upload.header_record + RECORD_HEADER.pack(1000))
                for upload in stalled]
        time.sleep(0.5)
        _, status = _timed(host, "GET", "/v1/health")
        assert status == 200
        for sock in held:
            _, status = _reply_or_close(sock, timeout=10)
            assert status == 408
        _, status = _timed(host, "POST", "/v1/uploads", valid.body, OCTET)
        assert status == 201, "the slots of the cut-off uploads were not released"
        # Nothing of the stalled uploads stayed behind: no stored or temp file, no index entry.
        uploads = host.state / "uploads"
        stored = {p.name for p in uploads.iterdir() if p.is_file() and p.name != "index"}
        assert stored == {f"{valid.upload_id.hex()}.upload"}
        assert (uploads / "index").read_text().split() == [valid.upload_id.hex()]
        assert_no_leak(host, marked)
        assert_still_serving(host)
