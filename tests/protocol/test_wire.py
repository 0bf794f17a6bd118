from __future__ import annotations

import io
import struct

import msgpack
import pytest

from protocol.errors import MessageTooLarge, ProtocolError, UnsupportedVersion
from protocol.wire import (
    MESSAGES,
    canonical_packb,
    encode_frame,
    pack,
    pack_document,
    read_frame,
    unpack,
    unpack_document,
)


def _raw(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def test_roundtrip_every_message_with_an_empty_body() -> None:
    for type_, fields in MESSAGES.items():
        if not any(f.required for f in fields.values()):
            assert unpack(pack(type_, {})).type == type_


def test_roundtrip_with_fields() -> None:
    message = unpack(pack("upload_chunk", {"stream": 3, "index": 0, "last": True, "data": b"x"}))
    assert message.body == {"stream": 3, "index": 0, "last": True, "data": b"x"}


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        ({"v": 2, "type": "health", "body": {}}, UnsupportedVersion),
        ({"v": True, "type": "health", "body": {}}, UnsupportedVersion),
        ({"v": 1, "type": "launch_missiles", "body": {}}, ProtocolError),
        ({"v": 1, "type": "health", "body": {"extra": 1}}, ProtocolError),
        ({"v": 1, "type": "health"}, ProtocolError),
        ({"v": 1, "type": "health", "body": {}, "x": 0}, ProtocolError),
        ({"v": 1, "type": "upload_commit", "body": {}}, ProtocolError),
        ({"v": 1, "type": "upload_commit", "body": {"stream": "1"}}, ProtocolError),
        ({"v": 1, "type": "upload_commit", "body": {"stream": True}}, ProtocolError),
        ({"v": 1, "type": "upload_chunk", "body": {"stream": 1, "index": 0, "last": 1, "data": b""}},
         ProtocolError),
        ({"v": 1, "type": "attest", "body": {"nonce": b"short"}}, ProtocolError),
        ([1, 2, 3], ProtocolError),
    ],
)
def test_strict_unpack_rejects(envelope: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        unpack(_raw(envelope))


def test_not_msgpack_and_trailing_bytes_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        unpack(b"\xc1")
    with pytest.raises(ProtocolError):
        unpack(pack("health", {}) + b"\x00")


def test_non_string_map_keys_rejected() -> None:
    with pytest.raises(ProtocolError):
        unpack(_raw({1: 1}))


def test_deep_nesting_bomb_rejected() -> None:
    nested: object = []
    for _ in range(500):
        nested = [nested]
    with pytest.raises(ProtocolError):
        body = {"query_id": bytes(32), "results": {"a": nested}}
        unpack(_raw({"v": 1, "type": "query_result", "body": body}))


def test_huge_declared_length_rejected_without_allocating() -> None:
    # bin32 header claiming 4 GiB with no payload behind it.
    bomb = b"\x83\xa1v\x01\xa4type\xa6health\xa4body\xc6" + struct.pack(">I", 0xFFFFFFFF)
    with pytest.raises(ProtocolError):
        unpack(bomb)


def test_oversized_message_rejected_before_parsing() -> None:
    with pytest.raises(MessageTooLarge):
        unpack(b"\x00" * 100, max_size=10)


def test_frames() -> None:
    payload = pack("health", {})
    stream = io.BytesIO(encode_frame(payload) + encode_frame(payload))
    assert read_frame(stream.read) == payload
    assert read_frame(stream.read) == payload


def test_frame_length_checked_before_reading_body() -> None:
    reads: list[int] = []

    def read_exact(n: int) -> bytes:
        reads.append(n)
        return struct.pack(">I", 1 << 30)

    with pytest.raises(MessageTooLarge):
        read_frame(read_exact, max_size=1024)
    assert reads == [4]


def test_canonical_packing_is_order_independent() -> None:
    one, other = {"b": 1, "a": {"d": 2, "c": 3}}, {"a": {"c": 3, "d": 2}, "b": 1}
    assert canonical_packb(one) == canonical_packb(other)


def test_documents_roundtrip_and_reject_unknown_fields() -> None:
    doc = {"collaboration_id": "c", "policy_hash": bytes(32), "party": "p", "analysis": "a",
           "params": {}, "nonce": bytes(16), "issued_at": 1}
    assert unpack_document("query_request", pack_document("query_request", doc)) == doc
    with pytest.raises(ProtocolError):
        unpack_document("query_request", canonical_packb({**doc, "sneaky": 1}))


def test_bytes_map_keys_are_a_protocol_error_not_a_crash() -> None:
    # strict_map_key allows bytes keys; mixed with text keys they used to break sorting.
    mixed = {"v": 1, "type": "health", "body": {b"raw": 1, "text": 2}}
    with pytest.raises(ProtocolError, match="not a string"):
        unpack(_raw(mixed))
    with pytest.raises(ProtocolError):
        unpack_document("query_request", _raw({b"party": "x", "analysis": "y"}))
