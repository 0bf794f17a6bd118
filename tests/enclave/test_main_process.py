"""``python -m enclave`` as a real child process, driven over loopback TCP like the host does."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.wire import encode_frame, pack, read_frame, unpack

ROOT = Path(__file__).resolve().parents[2]


class _Peer:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.reader = conn.makefile("rb")

    def _read_exact(self, n: int) -> bytes:
        data = self.reader.read(n)
        assert data is not None and len(data) == n, "enclave closed the connection"
        return data

    def send_raw(self, data: bytes):
        self.conn.sendall(data)
        return unpack(read_frame(self._read_exact))

    def call(self, type_: str, body: dict):
        return self.send_raw(encode_frame(pack(type_, body)))


@pytest.fixture
def enclave_process(tmp_path: Path) -> Iterator[tuple[_Peer, subprocess.Popen]]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    env = {**os.environ, "CLEANROOM_ENCLAVE_CONNECT": f"127.0.0.1:{listener.getsockname()[1]}",
           "CLEANROOM_STATE_DIR": str(tmp_path / "state")}
    child = subprocess.Popen([sys.executable, "-m", "enclave"], cwd=ROOT, env=env)
    try:
        conn, _ = listener.accept()
        conn.settimeout(30)
        peer = _Peer(conn)
        yield peer, child
        peer.reader.close()
        conn.close()
        assert child.wait(timeout=30) == 0
    finally:
        listener.close()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_enclave_process_serves_frames(enclave_process, policy_bytes: bytes, tmp_path: Path) -> None:
    peer, _ = enclave_process
    ready = peer.call("init", {"policy": policy_bytes})
    assert ready.type == "ready" and ready.body["mode"] == "simulation"
    attestation = peer.call("attest", {"nonce": b"n" * 32})
    assert attestation.type == "attestation" and attestation.body["quote"] is None
    # A garbage frame and a frame over the limit are answered, and the stream stays in sync.
    assert peer.send_raw(encode_frame(b"\xc1")).body["code"] == "bad_message"
    too_big = 20 * 1024 * 1024
    reply = peer.send_raw(struct.pack(">I", too_big) + bytes(too_big))
    assert reply.body["code"] == "message_too_large"
    assert peer.call("health", {}).type == "status"
    names = {p.name for p in (tmp_path / "state").iterdir()}
    policy_hash = hashlib.sha256(policy_bytes).hexdigest()
    assert names >= {f"collaboration-{policy_hash}.sealed", "INSECURE-simulation-sealing.key"}


def test_enclave_process_keeps_its_keys_across_restarts(policy_bytes: bytes, tmp_path: Path) -> None:
    keys = []
    for _ in range(2):
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(30)
        env = {**os.environ, "CLEANROOM_ENCLAVE_CONNECT": f"127.0.0.1:{listener.getsockname()[1]}",
               "CLEANROOM_STATE_DIR": str(tmp_path / "state")}
        child = subprocess.Popen([sys.executable, "-m", "enclave"], cwd=ROOT, env=env)
        conn, _ = listener.accept()
        conn.settimeout(30)
        peer = _Peer(conn)
        keys.append(peer.call("init", {"policy": policy_bytes}).body["sig_pub"])
        peer.reader.close()
        conn.close()
        listener.close()
        assert child.wait(timeout=30) == 0
    assert keys[0] == keys[1]


def test_missing_connect_address_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CLEANROOM_ENCLAVE_CONNECT"}
    done = subprocess.run([sys.executable, "-m", "enclave"], cwd=ROOT, env=env, capture_output=True,
                          timeout=30, check=False)
    assert done.returncode == 2 and b"CLEANROOM_ENCLAVE_CONNECT" in done.stderr
