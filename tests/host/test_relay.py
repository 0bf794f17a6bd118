"""EnclaveChannel: one request, one reply; any stream failure breaks the channel for good."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from host.relay import EnclaveChannel
from protocol.errors import (
    BudgetExhausted,
    EnclaveUnavailable,
    InternalError,
    ProtocolError,
)
from protocol.wire import FRAME_HEADER, encode_frame, pack, read_frame, unpack


@pytest.fixture
def pair() -> Iterator[tuple[EnclaveChannel, socket.socket]]:
    host_end, enclave_end = socket.socketpair()
    channel = EnclaveChannel(host_end)
    yield channel, enclave_end
    channel.close()
    host_end.close()
    enclave_end.close()


def _serve_once(sock: socket.socket, reply: Callable[[bytes], bytes]) -> threading.Thread:
    def run() -> None:
        def read_exact(n: int) -> bytes:
            data = b""
            while len(data) < n:
                piece = sock.recv(n - len(data))
                if not piece:
                    raise EOFError
                data += piece
            return data

        request = read_frame(read_exact)
        sock.sendall(reply(request))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_reply_is_returned(pair: tuple[EnclaveChannel, socket.socket]) -> None:
    channel, peer = pair
    thread = _serve_once(peer, lambda req: encode_frame(pack("ok", {})))
    assert channel.call("health", {}, timeout=5).type == "ok"
    thread.join(5)
    assert not channel.broken


def test_error_frame_is_raised_as_its_class(pair: tuple[EnclaveChannel, socket.socket]) -> None:
    channel, peer = pair
    thread = _serve_once(peer, lambda req: encode_frame(
        pack("error", {"code": "budget_exhausted", "message": "privacy budget exhausted"})))
    with pytest.raises(BudgetExhausted):
        channel.call("health", {}, timeout=5)
    thread.join(5)
    assert not channel.broken  # a refusal is a normal reply; the stream is still in step


def test_unexpected_reply_type(pair: tuple[EnclaveChannel, socket.socket]) -> None:
    channel, peer = pair
    thread = _serve_once(peer, lambda req: encode_frame(pack("ok", {})))
    with pytest.raises(InternalError):
        channel.call("health", {}, timeout=5, expect="status")
    thread.join(5)


def test_invalid_request_is_refused_before_sending(
    pair: tuple[EnclaveChannel, socket.socket],
) -> None:
    channel, peer = pair
    with pytest.raises(ProtocolError):
        channel.call("query", {"request": b"r", "signature": b"short"}, timeout=1)
    assert not channel.broken
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(1)


@pytest.mark.parametrize(
    "reply",
    [
        b"",  # EOF
        FRAME_HEADER.pack(3) + b"ab",  # truncated, then EOF
        FRAME_HEADER.pack(2**31),  # oversized frame announced
        encode_frame(b"\xc1garbage"),  # not msgpack
    ],
)
def test_stream_failures_break_the_channel(
    pair: tuple[EnclaveChannel, socket.socket], reply: bytes
) -> None:
    channel, peer = pair
    # The peer's answer is already buffered when the request goes out; then the peer hangs up.
    peer.sendall(reply)
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(EnclaveUnavailable):
        channel.call("health", {}, timeout=5)
    assert channel.broken
    with pytest.raises(EnclaveUnavailable):
        channel.call("health", {}, timeout=5)


def test_timeout_breaks_the_channel(pair: tuple[EnclaveChannel, socket.socket]) -> None:
    channel, _peer = pair
    with pytest.raises(EnclaveUnavailable):
        channel.call("health", {}, timeout=0.2)
    assert channel.broken


def test_close_wakes_a_blocked_call(pair: tuple[EnclaveChannel, socket.socket]) -> None:
    channel, peer = pair
    errors: list[BaseException] = []

    def call() -> None:
        try:
            channel.call("health", {}, timeout=30)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    unpack(peer.recv(1024)[FRAME_HEADER.size:])  # the request arrived; no reply comes
    channel.close()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(errors[0], EnclaveUnavailable)
