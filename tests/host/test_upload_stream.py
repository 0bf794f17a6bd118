"""The HTTP upload record stream parser: every malformed stream is refused, memory is bounded."""

from __future__ import annotations

import io
from typing import Any

import msgpack
import pytest

from host.upload_stream import (
    HEADER_RECORD_MAX,
    UploadChunk,
    UploadHeader,
    iter_upload_records,
)
from protocol.errors import MessageTooLarge, ProtocolError
from protocol.upload import RECORD_HEADER
from protocol.wire import MAX_CHUNK_BYTES

LIMIT = 1 << 40


def _parse(body: bytes, max_bytes: int = LIMIT) -> list[Any]:
    return list(iter_upload_records(io.BytesIO(body), max_bytes=max_bytes))


def _header_record(h: Any) -> bytes:
    return h.record(msgpack.packb({"header": b"hdr", "signature": h.SIGNATURE}))


def test_valid_stream(h: Any) -> None:
    body = h.build_upload(bytes(16), [b"one", b"two", b"three"])
    items = _parse(body)
    assert isinstance(items[0], UploadHeader)
    assert items[0].signature == h.SIGNATURE
    assert h.record(items[0].raw) == body[: 4 + len(items[0].raw)]
    assert items[1:] == [UploadChunk(0, False, b"one"), UploadChunk(1, False, b"two"),
                         UploadChunk(2, True, b"three")]


def test_single_empty_last_chunk_is_allowed(h: Any) -> None:
    items = _parse(_header_record(h) + h.record(b"\x01"))
    assert items[1] == UploadChunk(0, True, b"")


@pytest.mark.parametrize("cut", [1, 3, 4, 10])
def test_truncated_header_record(h: Any, cut: int) -> None:
    with pytest.raises(ProtocolError, match=r"truncated|empty|msgpack"):
        _parse(_header_record(h)[:cut])


def test_empty_body(h: Any) -> None:
    with pytest.raises(ProtocolError, match="empty"):
        _parse(b"")


@pytest.mark.parametrize("cut", [1, 2, 4, 5, 7])
def test_truncated_chunk_record(h: Any, cut: int) -> None:
    body = _header_record(h) + h.record(b"\x01chunk")
    with pytest.raises(ProtocolError, match="truncated"):
        _parse(body[: len(body) - 10 + cut])


def test_stream_without_last_chunk(h: Any) -> None:
    with pytest.raises(ProtocolError, match="without a last chunk"):
        _parse(_header_record(h) + h.record(b"\x00a") + h.record(b"\x00b"))


def test_header_only(h: Any) -> None:
    with pytest.raises(ProtocolError, match="without a last chunk"):
        _parse(_header_record(h))


@pytest.mark.parametrize("trailer", [b"x", b"\x00\x00\x00\x00", RECORD_HEADER.pack(1) + b"\x00"])
def test_data_after_last_chunk(h: Any, trailer: bytes) -> None:
    body = _header_record(h) + h.record(b"\x01end") + trailer
    items = iter_upload_records(io.BytesIO(body), max_bytes=LIMIT)
    assert isinstance(next(items), UploadHeader)
    # Refused before the last chunk is handed out, so the enclave never sees a bad stream end.
    with pytest.raises(ProtocolError, match="follows the last chunk"):
        next(items)


@pytest.mark.parametrize("flag", [b"\x02", b"\xff", b"1"])
def test_bad_flag(h: Any, flag: bytes) -> None:
    with pytest.raises(ProtocolError, match="flag"):
        _parse(_header_record(h) + h.record(flag + b"data"))


def test_empty_chunk_record(h: Any) -> None:
    with pytest.raises(ProtocolError, match="empty"):
        _parse(_header_record(h) + h.record(b""))


def test_oversized_chunk_record_is_refused_before_reading(h: Any) -> None:
    body = _header_record(h) + RECORD_HEADER.pack(MAX_CHUNK_BYTES + 2)
    with pytest.raises(ProtocolError, match="too large"):
        _parse(body)  # the announced 8 MiB never had to be present


def test_oversized_header_record(h: Any) -> None:
    with pytest.raises(ProtocolError, match="too large"):
        _parse(RECORD_HEADER.pack(HEADER_RECORD_MAX + 1))


@pytest.mark.parametrize(
    "header",
    [
        msgpack.packb([b"hdr", bytes(64)]),
        msgpack.packb({"header": b"hdr"}),
        msgpack.packb({"header": b"hdr", "signature": bytes(64), "extra": 1}),
        msgpack.packb({"header": "text", "signature": bytes(64)}),
        msgpack.packb({"header": b"hdr", "signature": bytes(64)}) + b"\x00",
        b"\xc1",
    ],
)
def test_malformed_header_record(h: Any, header: bytes) -> None:
    with pytest.raises(ProtocolError):
        _parse(h.record(header) + h.record(b"\x01x"))


def test_size_limit_counts_every_byte(h: Any) -> None:
    body = h.build_upload(bytes(16), [b"a" * 100, b"b" * 100])
    assert len(_parse(body, max_bytes=len(body))) == 3
    with pytest.raises(MessageTooLarge):
        _parse(body, max_bytes=len(body) - 1)


class RecordingStream(io.RawIOBase):
    """A body that reports the largest read asked of it and may return short reads."""

    def __init__(self, data: bytes, short: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self._short = short
        self.max_request = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "the parser must never read to the end at once"
        self.max_request = max(self.max_request, size)
        return self._data.read(min(size, self._short) if self._short else size)


def test_reads_are_bounded_and_short_reads_are_fine(h: Any) -> None:
    chunks = [bytes([i]) * (3 * 1024 * 1024) for i in range(3)]
    body = h.build_upload(bytes(16), chunks)
    stream = RecordingStream(body, short=65536)
    items = list(iter_upload_records(stream, max_bytes=LIMIT, read_size=256 * 1024))
    assert [c.data for c in items[1:]] == chunks
    assert stream.max_request <= 256 * 1024
