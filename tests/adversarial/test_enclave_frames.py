"""The host speaks to the enclave directly and sends it hostile frames.

The enclave is the real ``python -m enclave`` child, reached over its loopback TCP frame
protocol exactly as the host reaches it. Every hostile frame must get one ``error`` frame with
a clear code, the stream must stay in step (the next valid request is answered), memory must stay
bounded, and the process must neither crash nor print a traceback.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.requests.dispatch import HANDLERS
from protocol.errors import CleanroomError
from protocol.wire import (
    MAX_FRAME_BYTES,
    MESSAGES,
    PROTOCOL_VERSION,
    Field,
    Message,
    encode_frame,
    pack,
    unpack,
)
from tests.support.deployment import ROOT

pytestmark = pytest.mark.slow



def _codes(cls: type[CleanroomError]) -> set[str]:
    return {cls.code}.union(*(_codes(sub) for sub in cls.__subclasses__()))


_KNOWN_CODES = _codes(CleanroomError)
# The whole process may grow to this after every attack here (it idles near 60 MiB with NumPy).
_MAX_RSS_BYTES = 400 * 1024 * 1024


class EnclavePeer:
    """The host's end of one enclave connection, with the child process and its output."""

    def __init__(self, state: Path, output: Path, timeout: float = 30) -> None:
        self._output: IO[bytes] = output.open("wb")
        self.output_path = output
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(timeout)
            env = {**os.environ, "CLEANROOM_ENCLAVE_CONNECT": f"127.0.0.1:{listener.getsockname()[1]}",
                   "CLEANROOM_STATE_DIR": str(state)}
            self.process = subprocess.Popen([sys.executable, "-m", "enclave"], cwd=ROOT, env=env,
                                            stdout=self._output, stderr=subprocess.STDOUT)
            try:
                self.conn, _ = listener.accept()
            except BaseException:
                self.close()
                raise
        self.conn.settimeout(timeout)
        self.reader = self.conn.makefile("rb")

    def _read_exact(self, n: int) -> bytes:
        data = self.reader.read(n)
        if data is None or len(data) != n:
            raise AssertionError("the enclave closed the connection")
        return data

    def send_raw(self, data: bytes) -> Message:
        self.conn.sendall(data)
        (length,) = struct.unpack(">I", self._read_exact(4))
        return unpack(self._read_exact(length))

    def send_payload(self, payload: bytes) -> Message:
        return self.send_raw(struct.pack(">I", len(payload)) + payload)

    def call(self, type_: str, body: dict) -> Message:
        return self.send_raw(encode_frame(pack(type_, body)))

    def peak_rss(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")

    def hang_up(self, timeout: float = 30) -> int:
        """Close our end; the enclave must exit on its own. Returns its exit status."""
        self.reader.close()
        self.conn.close()
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if hasattr(self, "reader"):
            self.reader.close()
        if hasattr(self, "conn"):
            self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._output.close()

    def output(self) -> str:
        self._output.flush()
        return self.output_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory, policy_bytes: bytes) -> Iterator[EnclavePeer]:
    tmp = tmp_path_factory.mktemp("enclave-frames")
    enclave = EnclavePeer(tmp / "state", tmp / "enclave.log")
    try:
        assert enclave.call("init", {"policy": policy_bytes}).type == "ready"
        yield enclave
        assert enclave.hang_up() == 0
        assert "Traceback" not in enclave.output()
    finally:
        enclave.close()


def _assert_error(reply: Message, *codes: str) -> None:
    assert reply.type == "error", f"expected an error frame, got {reply.type}"
    assert reply.body["code"] in codes, reply.body


def _assert_in_step(peer: EnclavePeer) -> None:
    assert peer.call("health", {}).type == "status"
    assert peer.peak_rss() < _MAX_RSS_BYTES


def _envelope(type_: str, body: object, v: object = PROTOCOL_VERSION) -> bytes:
    return msgpack.packb({"v": v, "type": type_, "body": body}, use_bin_type=True)


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


# Payloads (inside a well-formed frame) and the code each must get.
_BOMBS: dict[str, tuple[bytes, str]] = {
    # Deep nesting: msgpack's own stack limit, then our depth limit inside a valid envelope.
    "100k nested arrays": (b"\x91" * 100_000 + b"\xc0", "bad_message"),
    "100k nested maps": (b"\x81\xa1k" * 100_000 + b"\xc0", "bad_message"),
    "nesting past the limit in a body": (_envelope("health", {"x": _nested(50)}), "bad_message"),
    # Huge declared lengths with nothing behind them: no allocation may follow the declaration.
    "bin32 declaring 4 GiB": (b"\xc6\xff\xff\xff\xff" + b"x" * 16, "bad_message"),
    "str32 declaring 4 GiB": (b"\xdb\xff\xff\xff\xff" + b"x" * 16, "bad_message"),
    "array32 declaring 4G items": (b"\xdd\xff\xff\xff\xff" + b"\xc0" * 16, "bad_message"),
    "map32 declaring 4G pairs": (b"\xdf\xff\xff\xff\xff" + b"\xa1k\xc0" * 16, "bad_message"),
    "bin length past the frame": (_envelope("init", {"policy": b""})[:-1] + b"\xc6\x00\x10\x00\x00",
                                  "bad_message"),
    # Many items inside the limits: parsed, then refused by the schema.
    "two million nils": (b"\xdd" + struct.pack(">I", 2_000_000) + b"\xc0" * 2_000_000, "bad_message"),
    "100k unknown fields": (_envelope("health", {f"f{i}": i for i in range(100_000)}), "bad_message"),
    "ext type": (msgpack.packb(msgpack.ExtType(1, b"x" * 64)), "bad_message"),
    "timestamp ext": (b"\xd6\xff\x00\x00\x00\x00", "bad_message"),
    "integer map key": (msgpack.packb({1: 2}), "bad_message"),
    "bytes and text keys mixed in a body": (
        msgpack.packb({"v": 1, "type": "health", "body": {b"raw": 1, "text": 2}}, use_bin_type=True),
        "bad_message"),
    "trailing bytes": (_envelope("health", {}) + b"\xc0", "bad_message"),
    "not an envelope": (msgpack.packb([1, "health", {}]), "bad_message"),
    "unknown version": (_envelope("health", {}, v=2), "bad_version"),
    "bool as version": (_envelope("health", {}, v=True), "bad_version"),
    "unknown type": (_envelope("drop_tables", {}), "bad_message"),
    "a response type sent as a request": (_envelope("ready", {"mode": "x", "policy_hash": bytes(32),
                                                              "enc_pub": bytes(32), "sig_pub": bytes(32)}),
                                          "bad_message"),
    "largest stream id": (_envelope("upload_commit", {"stream": 2**64 - 1}), "bad_message"),
    "most negative stream id": (_envelope("upload_chunk", {"stream": -(2**63), "index": -1, "last": True,
                                                           "data": b""}), "bad_message"),
    "empty payload": (b"", "bad_message"),
}


@pytest.mark.parametrize("bomb", sorted(_BOMBS))
def test_msgpack_bombs_get_one_error_frame(peer: EnclavePeer, bomb: str) -> None:
    payload, code = _BOMBS[bomb]
    assert len(payload) <= MAX_FRAME_BYTES
    _assert_error(peer.send_payload(payload), code)
    _assert_in_step(peer)


@pytest.mark.parametrize("excess", [1, 12 * 1024 * 1024])
def test_frames_over_the_size_limit_are_drained_and_refused(peer: EnclavePeer, excess: int) -> None:
    size = MAX_FRAME_BYTES + excess
    # Sent in pieces: the enclave must drain it without ever holding it whole.
    peer.conn.sendall(struct.pack(">I", size))
    piece = bytes(1024 * 1024)
    remaining = size
    while remaining > len(piece):
        peer.conn.sendall(piece)
        remaining -= len(piece)
    _assert_error(peer.send_raw(bytes(remaining)), "message_too_large")
    _assert_in_step(peer)


def test_a_frame_at_the_size_limit_is_parsed_not_refused(peer: EnclavePeer) -> None:
    _assert_error(peer.send_payload(b"\xc1" * MAX_FRAME_BYTES), "bad_message")
    _assert_in_step(peer)


# Random request bodies for every message type the enclave handles: the pack/unpack schema or
# the handler must refuse them with a code of the error tree, never "internal" (an unexpected
# exception inside the trusted code).
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=80)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                      max_size=4),
    max_leaves=12,
)


def _typed(field: Field) -> st.SearchStrategy[object]:
    """Values of the field's declared type (so the handler runs), sometimes of the wrong size."""
    options: list[st.SearchStrategy[object]] = []
    for kind in field.types:
        if kind is bytes:
            size = field.exact_len or min(field.max_len or 64, 64)
            options.append(st.binary(min_size=size, max_size=size) | st.binary(max_size=size + 1))
        elif kind is int:
            options.append(st.integers(-1, 3) | st.integers(-(2**63), 2**64 - 1))
        elif kind is bool:
            options.append(st.booleans())
        elif kind is str:
            options.append(st.text(max_size=20))
        elif kind is list:
            options.append(st.lists(_values, max_size=3))
        elif kind is dict:
            options.append(st.dictionaries(st.text(max_size=8), _values, max_size=3))
        else:
            options.append(st.none())
    return st.one_of(options)


def _field_value(type_name: str) -> st.SearchStrategy[object]:
    fields = MESSAGES[type_name]
    required = {name: _typed(f) for name, f in fields.items() if f.required}
    optional = {name: _typed(f) | _values for name, f in fields.items() if not f.required}
    # Mostly well-typed bodies (they reach the handler), sometimes anything at all.
    return st.fixed_dictionaries(required, optional=optional) | st.fixed_dictionaries(
        {}, optional={**{name: _values for name in fields}, "extra": _values})


_REQUEST_TYPES = sorted(set(HANDLERS) - {"init"})  # init is covered by policy tests; keep one policy


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_requests_never_reach_an_internal_error(peer: EnclavePeer, data: st.DataObject) -> None:
    type_name = data.draw(st.sampled_from(_REQUEST_TYPES))
    body = data.draw(_field_value(type_name))
    reply = peer.send_payload(_envelope(type_name, body))
    if reply.type == "error":
        assert reply.body["code"] in _KNOWN_CODES - {"internal"}, reply.body
    assert peer.call("health", {}).type == "status"


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=512))
def test_random_bytes_get_an_error_frame(peer: EnclavePeer, payload: bytes) -> None:
    reply = peer.send_payload(payload)
    assert reply.type == "error" and reply.body["code"] in {"bad_message", "bad_version"}


def test_a_frame_cut_off_by_a_hang_up_ends_the_enclave_cleanly(tmp_path: Path, policy_bytes: bytes) -> None:
    enclave = EnclavePeer(tmp_path / "state", tmp_path / "enclave.log")
    try:
        assert enclave.call("init", {"policy": policy_bytes}).type == "ready"
        # Announce the largest possible frame, send a little of it, and go away.
        enclave.conn.sendall(struct.pack(">I", 0xFFFFFFFF) + bytes(4096))
        assert enclave.hang_up() == 0
        assert "Traceback" not in enclave.output()
    finally:
        enclave.close()
