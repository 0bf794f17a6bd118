"""``python -m enclave``: the enclave's only I/O layer.

Connects to the host at ``CLEANROOM_ENCLAVE_CONNECT`` (loopback TCP: Gramine cannot pass pipes
or Unix sockets between the host and the enclave), then answers one frame with one frame until
the host hangs up. Sealed state lives in ``CLEANROOM_STATE_DIR`` (a Gramine encrypted mount in
SGX). Nothing here logs or prints a message body.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from enclave.engine.noise_source import ExactNoise
from enclave.requests.dispatch import error_frame, handle_frame
from enclave.requests.quote_provider import QuoteProvider
from enclave.requests.session import Session
from enclave.state.mount import STATE_KEY_NAME_SGX, provision_direct_mode_key
from enclave.state.sealing import derive_sealing_key
from protocol.errors import MessageTooLarge
from protocol.wire import FRAME_HEADER, MAX_FRAME_BYTES, encode_frame

DEV_ATTESTATION = Path("/dev/attestation")
SEALED_STATE_PREFIX = "collaboration-"  # + policy hash hex + ".sealed"
# Simulation and gramine-direct have no hardware sealing key. This file makes restarts work
# there; anyone who can read the host's disk can read it, hence the name.
INSECURE_KEY_FILE = "INSECURE-simulation-sealing.key"


def _sealing_root_key(mode: str, state_dir: Path) -> bytes:
    if mode == "sgx":
        return (DEV_ATTESTATION / "keys" / STATE_KEY_NAME_SGX).read_bytes()
    path = state_dir / INSECURE_KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(32))
            out.flush()
            os.fsync(out.fileno())
    return path.read_bytes()


def _sealed_path(state_dir: Path, policy_hash: bytes) -> Path:
    return state_dir / f"{SEALED_STATE_PREFIX}{policy_hash.hex()}.sealed"


def _loader(state_dir: Path) -> Callable[[bytes], bytes | None]:
    def load(policy_hash: bytes) -> bytes | None:
        path = _sealed_path(state_dir, policy_hash)
        return path.read_bytes() if path.exists() else None

    return load


def _atomic_writer(state_dir: Path) -> Callable[[bytes, bytes], None]:
    def persist(policy_hash: bytes, blob: bytes) -> None:
        path = _sealed_path(state_dir, policy_hash)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    return persist


def _read_exact(read: Callable[[int], bytes | None], size: int) -> bytes:
    data = read(size)
    if data is None or len(data) != size:
        raise EOFError
    return data


def _serve(sock: socket.socket, session: Session) -> None:
    reader = io.BufferedReader(sock.makefile("rb", buffering=0), buffer_size=1024 * 1024)
    try:
        while True:
            (length,) = FRAME_HEADER.unpack(_read_exact(reader.read, FRAME_HEADER.size))
            if length > MAX_FRAME_BYTES:
                remaining = length
                while remaining:  # drain it, so the stream stays in sync for the next frame
                    step = min(1024 * 1024, remaining)
                    _read_exact(reader.read, step)
                    remaining -= step
                reply = error_frame(MessageTooLarge())
            else:
                reply = handle_frame(session, _read_exact(reader.read, length))
            if len(reply) > MAX_FRAME_BYTES:  # handle_frame never makes one; never die of one
                reply = error_frame(MessageTooLarge())
            sock.sendall(encode_frame(reply))
    except (EOFError, ConnectionError):  # the host hung up: nothing to answer, no traceback
        return
    finally:
        reader.close()


def main() -> int:
    address = os.environ.get("CLEANROOM_ENCLAVE_CONNECT", "")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        sys.stderr.write("CLEANROOM_ENCLAVE_CONNECT must be HOST:PORT\n")
        return 2
    state_dir = Path(os.environ.get("CLEANROOM_STATE_DIR", "state/enclave"))
    provision_direct_mode_key(str(DEV_ATTESTATION))
    state_dir.mkdir(parents=True, exist_ok=True)
    provider = QuoteProvider(DEV_ATTESTATION)
    session = Session(
        mode=provider.mode,
        quote=provider.quote,
        sealing_key=derive_sealing_key(_sealing_root_key(provider.mode, state_dir)),
        load_sealed=_loader(state_dir),
        persist=_atomic_writer(state_dir),
        noise=ExactNoise(),
        clock=time.time,  # the edges: wall-clock time, the OS CSPRNG, and real sleeps
        random_bytes=os.urandom,
        sleep=time.sleep,
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _serve(sock, session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
