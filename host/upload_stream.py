"""Incremental parser of the HTTP upload record stream (format: ``protocol/upload.py``).

Record 0 is ``msgpack {header, signature}``; each later record is a flag byte (1 = last chunk,
0 = more follow) and one chunk's ciphertext. The parser reads at most ``read_size`` bytes per
call, holds at most one record, checks every length before reading what it announces, and
refuses anything the format does not allow, so a hostile body costs bounded memory. It never
looks inside the ciphertext: authenticity is the enclave's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import msgpack

from protocol.errors import MessageTooLarge, ProtocolError
from protocol.upload import RECORD_HEADER
from protocol.wire import MAX_CHUNK_BYTES

__all__ = [
    "HEADER_RECORD_MAX",
    "READ_SIZE",
    "UploadChunk",
    "UploadHeader",
    "iter_upload_records",
]

HEADER_RECORD_MAX = 64 * 1024
READ_SIZE = 1024 * 1024
_FLAGS = {b"\x00": False, b"\x01": True}


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class UploadHeader:
    """Record 0: the party's signed header, plus the record's exact bytes for storage."""

    header: bytes
    signature: bytes
    raw: bytes


@dataclass(frozen=True)
class UploadChunk:
    index: int
    last: bool
    data: bytes


class _Reader:
    def __init__(self, stream: _Readable, max_bytes: int, read_size: int) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._read_size = read_size
        self.consumed = 0

    def reserve(self, n: int) -> None:
        # Checked before reading, so an oversized body is refused without being received.
        if self.consumed + n > self._max_bytes:
            raise MessageTooLarge("upload exceeds the size limit")

    def read_exact(self, n: int) -> bytes | None:
        """Exactly ``n`` bytes; None on a clean end of stream before the first byte."""
        self.reserve(n)
        buf = bytearray()
        while len(buf) < n:
            piece = self._stream.read(min(self._read_size, n - len(buf)))
            if not piece:
                if not buf:
                    return None
                raise ProtocolError("upload stream is truncated")
            buf += piece
        self.consumed += n
        return bytes(buf)

    def at_end(self) -> bool:
        return not self._stream.read(1)


def _header_record(reader: _Reader) -> bytes:
    prefix = reader.read_exact(RECORD_HEADER.size)
    if prefix is None:
        raise ProtocolError("upload stream is empty")
    (length,) = RECORD_HEADER.unpack(prefix)
    if length > HEADER_RECORD_MAX:
        raise ProtocolError("header record is too large")
    payload = reader.read_exact(length)
    if payload is None:
        raise ProtocolError("upload stream is truncated")
    return payload


def _parse_header(raw: bytes) -> UploadHeader:
    try:
        obj = msgpack.unpackb(raw, raw=False, strict_map_key=True, max_bin_len=len(raw),
                              max_str_len=len(raw), max_array_len=0, max_map_len=2,
                              max_ext_len=0)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            ValueError, TypeError, OverflowError) as exc:
        raise ProtocolError("upload header record is not valid msgpack") from exc
    if not isinstance(obj, dict) or set(obj) != {"header", "signature"}:
        raise ProtocolError("upload header record must be {header, signature}")
    if not isinstance(obj["header"], bytes) or not isinstance(obj["signature"], bytes):
        raise ProtocolError("upload header record fields must be bytes")
    return UploadHeader(obj["header"], obj["signature"], raw)


def iter_upload_records(
    stream: _Readable, *, max_bytes: int, read_size: int = READ_SIZE
) -> Iterator[UploadHeader | UploadChunk]:
    """Yield the header record, then each chunk in order; the last chunk is yielded only after
    the stream was seen to end right behind it.

    Raises:
        ProtocolError: missing or malformed header, empty or oversized record, a flag byte other
            than 0/1, a truncated record, data after the last chunk, no last chunk.
        MessageTooLarge: the stream is longer than ``max_bytes``.
    """
    reader = _Reader(stream, max_bytes, read_size)
    yield _parse_header(_header_record(reader))
    index = 0
    while True:
        prefix = reader.read_exact(RECORD_HEADER.size)
        if prefix is None:
            raise ProtocolError("upload stream ended without a last chunk")
        (length,) = RECORD_HEADER.unpack(prefix)
        if length == 0:
            raise ProtocolError("chunk record is empty")
        if length > 1 + MAX_CHUNK_BYTES:
            raise ProtocolError("chunk record is too large")
        # Flag and ciphertext are read separately so the chunk is never copied to drop the flag.
        flag = reader.read_exact(1)
        if flag is None:
            raise ProtocolError("upload stream is truncated")
        last = _FLAGS.get(flag)
        if last is None:
            raise ProtocolError("chunk flag must be 0 or 1")
        data = reader.read_exact(length - 1) if length > 1 else b""
        if data is None:
            raise ProtocolError("upload stream is truncated")
        if last and not reader.at_end():
            raise ProtocolError("data follows the last chunk")
        yield UploadChunk(index, last, data)
        if last:
            return
        index += 1
