"""The upload record stream's framing, read back by tests: each record is a 4-byte length, then
that many bytes (``protocol/upload.py``, ``RECORD_HEADER``)."""

from __future__ import annotations

from protocol.upload import RECORD_HEADER

__all__ = ["split_records"]


def split_records(stream: bytes) -> list[bytes]:
    """The payloads of a whole record stream, in order; the stream must end on a record."""
    payloads, offset = [], 0
    while offset < len(stream):
        (length,) = RECORD_HEADER.unpack_from(stream, offset)
        offset += RECORD_HEADER.size
        payloads.append(stream[offset:offset + length])
        offset += length
    assert offset == len(stream)
    return payloads
