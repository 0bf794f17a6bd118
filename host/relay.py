"""The host's only enclave I/O: one TCP connection carrying length-prefixed msgpack frames.

``EnclaveChannel`` is strictly request/response under a lock, so concurrent HTTP requests (and
the chunks of concurrent uploads) interleave one whole call at a time. Any failure that can
leave the byte stream out of step (socket error, timeout, EOF, an unreadable reply) marks the
channel broken for good; the supervisor then replaces the enclave. ``EnclaveUpload`` is the
message sequence of one upload, shared by HTTP uploads and the replay after a restart.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from protocol.errors import (
    CleanroomError,
    EnclaveUnavailable,
    InternalError,
    error_from_wire,
)
from protocol.upload import UploadDigest
from protocol.wire import MAX_FRAME_BYTES, Message, encode_frame, pack, read_frame, unpack

__all__ = ["Caller", "EnclaveChannel", "EnclaveUpload"]

log = logging.getLogger(__name__)

# call(type, body) -> reply; the timeout is bound by whoever hands the callable out.
Caller = Callable[[str, Mapping[str, Any]], Message]


class EnclaveChannel:
    """One connection to one enclave process; thread-safe; unusable once broken."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._broken = False

    @property
    def broken(self) -> bool:
        return self._broken

    def call(
        self,
        type_: str,
        body: Mapping[str, Any],
        *,
        timeout: float,
        expect: str | tuple[str, ...] | None = None,
    ) -> Message:
        """Send one request and return the enclave's reply.

        Raises:
            CleanroomError: the enclave answered with an error frame (rebuilt with its code).
            ProtocolError: the request itself does not fit the message schema (nothing sent).
            EnclaveUnavailable: the channel is or just became broken.
            InternalError: a well-formed reply of a type the caller did not expect.
        """
        frame = encode_frame(pack(type_, body))  # schema errors surface before any I/O
        with self._lock:
            if self._broken:
                raise EnclaveUnavailable()
            try:
                deadline = time.monotonic() + timeout
                self._sock.settimeout(timeout)
                self._sock.sendall(frame)
                payload = read_frame(lambda n: self._read_exact(n, deadline),
                                     max_size=MAX_FRAME_BYTES)
                reply = unpack(payload)
            except (OSError, EOFError, CleanroomError) as exc:
                # A timeout or a bad reply leaves an unknown number of bytes in flight: the stream
                # can never be trusted to be in step again.
                self._break()
                log.warning("enclave channel broken during %s: %s", type_, type(exc).__name__)
                raise EnclaveUnavailable() from exc
        if reply.type == "error":
            raise error_from_wire(reply.body)
        if expect is not None and reply.type not in ((expect,) if isinstance(expect, str) else expect):
            log.error("enclave answered %s with %s", type_, reply.type)
            raise InternalError("unexpected reply from the enclave")
        return reply

    def _read_exact(self, n: int, deadline: float) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("enclave call timed out")
            self._sock.settimeout(remaining)
            count = self._sock.recv_into(view[got:])
            if count == 0:
                raise EOFError("enclave closed the connection")
            got += count
        return bytes(buf)

    def _break(self) -> None:
        self._broken = True
        self._sock.close()

    def close(self) -> None:
        """Mark broken and close; the enclave sees EOF and should exit.

        Does not wait for a call in progress: shutting the socket down wakes that caller, which
        then finds the channel broken and closes the socket itself.
        """
        self._broken = True
        with contextlib.suppress(OSError):  # not connected any more: nothing to wake
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._lock.acquire(blocking=False):
            try:
                self._sock.close()
            finally:
                self._lock.release()


class EnclaveUpload:
    """One upload stream inside the enclave: begin, chunks, then commit or abort."""

    def __init__(self, call: Caller, stream: int, upload_id: bytes, digest: Any) -> None:
        self._call = call
        self.stream = stream
        self.upload_id = upload_id
        self.ready: Message | None = None
        self._digest = digest
        self._next_index = 0
        self._open = True

    @classmethod
    def begin(cls, call: Caller, header: bytes, signature: bytes, *,
              replay: bool = False) -> EnclaveUpload:
        body: dict[str, Any] = {"header": header, "signature": signature}
        if replay:
            body["replay"] = True
        reply = call("upload_begin", body)
        _expect(reply, "upload_started")
        # The host digests the same bytes it stores; the enclave's digest in upload_ready must
        # match, or the stored copy would not be the upload the receipt acknowledges.
        digest = UploadDigest(header, signature)
        return cls(call, reply.body["stream"], reply.body["upload_id"], digest)

    def chunk(self, last: bool, data: bytes) -> Message:
        """Send the next chunk; the reply to the last one (``upload_ready``) is kept in ``ready``."""
        index = self._next_index
        self._digest.update(last, data)
        reply = self._call("upload_chunk",
                           {"stream": self.stream, "index": index, "last": last, "data": data})
        _expect(reply, "upload_ready" if last else "upload_chunk_ok")
        if reply.body["stream"] != self.stream:
            raise InternalError("enclave answered for another upload stream")
        if last:
            if reply.body["upload_id"] != self.upload_id:
                raise InternalError("enclave changed the upload id")
            if reply.body["digest"] != self._digest.digest():
                raise InternalError("enclave and host disagree on the upload digest")
            self.ready = reply
        elif reply.body["index"] != index:
            raise InternalError("enclave acknowledged another chunk")
        self._next_index += 1
        return reply

    def commit(self) -> Message:
        """Make the upload part of the enclave's sealed state; returns ``upload_receipt``."""
        if self.ready is None:
            raise InternalError("commit before the last chunk")
        self._open = False  # after commit was attempted, aborting is meaningless
        reply = self._call("upload_commit", {"stream": self.stream})
        _expect(reply, "upload_receipt")
        return reply

    def abort_quietly(self) -> None:
        """Best effort: the enclave may already have dropped the stream or be gone."""
        if not self._open:
            return
        self._open = False
        try:
            self._call("upload_abort", {"stream": self.stream})
        except CleanroomError as exc:
            log.debug("upload_abort not acknowledged: %s", exc.code)


def _expect(reply: Message, type_: str) -> None:
    if reply.type != type_:
        log.error("enclave answered with %s instead of %s", reply.type, type_)
        raise InternalError("unexpected reply from the enclave")
