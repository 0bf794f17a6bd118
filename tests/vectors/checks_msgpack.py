"""Canonical msgpack (docs/wire.md#canonical-msgpack) for ``msgpack.json``: one value per
encoding rule (integer widths, string, bin, array and map headers, key order, nesting), the
documents a receiver must refuse (each one edit of a ``requests.json`` document) or accept (at a
limit), and the check that rebuilds them and runs each through ``protocol.wire``.

The generator (``generate_extra``) writes what these recipes build, so the check rebuilds them.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from protocol.errors import ProtocolError
from protocol.wire import canonical_packb, unpack_document
from tests.vectors.checks_common import Vectors
from tests.vectors.loader import from_json, h, to_json

__all__ = ["KEY_ORDER_IN", "accepted_documents", "check_msgpack", "msgpack_values", "rejected_documents"]


def _nested(levels: int) -> list[Any]:
    """``levels`` arrays, each the only element of the one around it; the innermost is empty."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


KEY_ORDER_IN = ["b", "a", "B", "_", "aa", "\u00e9", "\u20ac", "\ue000", "\U0001f600"]


def msgpack_values() -> list[tuple[str, Any]]:
    """(description, value): one value per encoding rule of canonical msgpack."""
    ints = [
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2**32 - 1,
        2**32,
        2**53 - 1,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -(2**31),
        -(2**31) - 1,
        -(2**53 - 1),
    ]
    values: list[tuple[str, Any]] = [("nil", None), ("false", False), ("true", True)]
    values += [(f"integer {i}: the shortest form that holds it", i) for i in ints]
    values += [(f"string of {n} UTF-8 bytes", "x" * n) for n in (0, 1, 31, 32, 255, 256)]
    values += [
        ("string: e-acute is 2 UTF-8 bytes", "\u00e9"),
        ("string: euro sign is 3 UTF-8 bytes", "\u20ac"),
        ("string: U+1F600 is 4 UTF-8 bytes (one code point)", "\U0001f600"),
    ]
    values += [(f"bin of {n} bytes", bytes(i % 256 for i in range(n))) for n in (0, 1, 255, 256)]
    values += [(f"array of {n}", list(range(n))) for n in (0, 15, 16)]
    values += [(f"map of {n} entries", {f"k{i:02d}": i for i in range(n)}) for n in (0, 15, 16)]
    values += [
        (
            "keys sorted by code point (= by UTF-8 bytes), not by UTF-16 units",
            {k: i for i, k in enumerate(KEY_ORDER_IN)},
        )
    ]
    values += [
        (
            "maps sorted at every level, inside arrays too",
            {"z": {"b": [{"d": 1, "c": 2}], "a": b"\x00"}, "y": [], "x": {"\u00e9": None, "e": True}},
        )
    ]
    values += [
        (
            "the HPKE info of a result: an array of str and bin",
            ["cleanroom/v1/result", "wire-test-vectors-v1", bytes(range(32)), "advertiser"],
        )
    ]
    return values


def _doc(data: bytes) -> dict[str, Any]:
    value = msgpack.unpackb(data, raw=False)
    assert isinstance(value, dict)
    return value


def _swap(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


def rejected_documents(delete: bytes, query: bytes) -> list[tuple[str, str, bytes]]:
    """(description, kind, bytes) of documents a receiver must refuse with ``bad_message``;
    each is one edit of the signed ``delete_request`` or ``query_request`` of requests.json."""
    doc, q = _doc(delete), _doc(query)
    issued = struct.pack(">I", doc["issued_at"])
    out = [
        (
            "keys not in sorted order",
            "delete_request",
            msgpack.packb(dict(reversed(list(doc.items()))), use_bin_type=True),
        ),
        (
            "a key twice (same value)",
            "delete_request",
            bytes([delete[0] + 1]) + delete[1:] + b"\xabpolicy_hash" + canonical_packb(doc["policy_hash"]),
        ),
        (
            "an integer not in its shortest form (uint64 for a uint32 value)",
            "delete_request",
            _swap(delete, b"\xce" + issued, b"\xcf\x00\x00\x00\x00" + issued),
        ),
        (
            "a string not in its shortest form (str8 for 9 bytes)",
            "delete_request",
            _swap(delete, b"\xa9publisher", b"\xd9\x09publisher"),
        ),
        (
            "bin not in its shortest form (bin16 for 16 bytes)",
            "delete_request",
            _swap(delete, b"\xc4\x10" + doc["nonce"], b"\xc5\x00\x10" + doc["nonce"]),
        ),
        (
            "a map header not in its shortest form (map16 for 6 entries)",
            "delete_request",
            b"\xde\x00\x06" + delete[1:],
        ),
        (
            "a float where an integer belongs",
            "delete_request",
            _swap(delete, b"\xce" + issued, b"\xcb" + struct.pack(">d", float(doc["issued_at"]))),
        ),
        (
            "a float anywhere (inside params)",
            "query_request",
            canonical_packb({**q, "params": {**q["params"], "x": 0.5}}),
        ),
        ("true where an integer belongs", "delete_request", canonical_packb({**doc, "issued_at": True})),
        (
            "bytes of the wrong length (15-byte nonce)",
            "delete_request",
            canonical_packb({**doc, "nonce": doc["nonce"][:15]}),
        ),
        (
            "str where bin belongs (nonce)",
            "delete_request",
            canonical_packb({**doc, "nonce": doc["nonce"].hex()[:16]}),
        ),
        (
            "a string over its limit (257 code points)",
            "delete_request",
            canonical_packb({**doc, "party": "p" * 257}),
        ),
        ("an unknown field", "delete_request", canonical_packb({**doc, "extra": 1})),
        (
            "a missing field",
            "delete_request",
            canonical_packb({k: v for k, v in doc.items() if k != "dataset"}),
        ),
        ("invalid UTF-8 in a string", "delete_request", _swap(delete, b"\xa9publisher", b"\xa9pub\xffisher")),
        ("a bin map key (inside params)", "query_request", canonical_packb({**q, "params": {b"k": 1}})),
        (
            "an integer map key (inside params)",
            "query_request",
            _swap(query, b"\xa6params\x81", b"\xa6params\x82\x01\x02"),
        ),
        (
            "an ext value (fixext 1 inside params)",
            "query_request",
            _swap(canonical_packb({**q, "params": {"x": 0}}), b"\xa1x\x00", b"\xa1x\xd4\x01x"),
        ),
        (
            "a value nested 9 deep (params is depth 1)",
            "query_request",
            canonical_packb({**q, "params": {"x": _nested(8)}}),
        ),
        ("bytes after the document", "delete_request", delete + b"\xc0"),
        ("not a map", "delete_request", canonical_packb(list(doc.values()))),
    ]
    return out


def accepted_documents(delete: bytes, query: bytes) -> list[tuple[str, str, bytes]]:
    """(description, kind, bytes) of documents at a limit, which a receiver must still accept."""
    doc, q = _doc(delete), _doc(query)
    return [
        (
            "a value nested 8 deep (params is depth 1)",
            "query_request",
            canonical_packb({**q, "params": {"x": _nested(7)}}),
        ),
        (
            "a 256-code-point string of 512 UTF-8 bytes: limits count code points",
            "delete_request",
            canonical_packb({**doc, "party": "\u00e9" * 256}),
        ),
    ]


def check_msgpack(v: Vectors) -> None:
    doc = v["msgpack"]
    described = msgpack_values()
    assert [d for d, _ in described] == [c["description"] for c in doc["values"]]
    for (_, value), case in zip(described, doc["values"], strict=True):
        data = h(case["bytes"])
        assert to_json(msgpack.unpackb(data, raw=False)) == case["value"] == to_json(value)
        assert canonical_packb(from_json(case["value"])) == data, case["description"]
    order = doc["key_order"]
    assert order["keys_in"] == KEY_ORDER_IN
    data = canonical_packb({k: i for i, k in enumerate(order["keys_in"])})
    assert data == h(order["bytes"])
    assert list(msgpack.unpackb(data, raw=False)) == order["keys_sorted"] == sorted(KEY_ORDER_IN)
    delete, query = (h(v["requests"][k]["bytes"]) for k in ("delete_request", "query_request"))
    for recipe, cases in ((rejected_documents, doc["rejected"]), (accepted_documents, doc["accepted"])):
        built = recipe(delete, query)
        assert [c["description"] for c in cases] == [d for d, _, _ in built]
        for (_, kind, data), case in zip(built, cases, strict=True):
            assert (case["kind"], h(case["bytes"])) == (kind, data), case["description"]
            if recipe is rejected_documents:
                try:
                    unpack_document(kind, data)
                except ProtocolError as exc:
                    assert exc.code == case["code"], case["description"]
                else:
                    raise AssertionError(f"accepted: {case['description']}")
            else:
                assert to_json(unpack_document(kind, data)) == case["document"]
