"""Versioned msgpack messages ``{v, type, body}`` and the length-prefixed frames that carry them.

Every message type is declared once, in ``MESSAGES``, as a table of fields. ``unpack`` is strict:
a size limit is enforced before parsing, map keys must be strings, nesting is bounded, and an
unknown version, type or field, a missing required field or a wrong field type is a
``ProtocolError``. The same table describes the signed documents that travel inside messages
(upload headers, query requests, receipts, results), so the enclave, the host and the client all
read one contract.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from protocol.errors import MessageTooLarge, ProtocolError, UnsupportedVersion

__all__ = [
    "DOCUMENTS", "FRAME_HEADER", "MAX_CHUNK_BYTES", "MAX_CONTROL_BYTES", "MAX_FRAME_BYTES", "MAX_LIST_PAGE",
    "MAX_UPLOADS_LIMIT", "MESSAGES",
    "PROTOCOL_VERSION", "Field", "Message", "canonical_packb", "encode_frame", "pack", "pack_document",
    "read_frame", "unpack", "unpack_document",
]

PROTOCOL_VERSION = 1
MAX_CHUNK_BYTES = 8 * 1024 * 1024 + 16  # one AES-GCM chunk: 8 MiB plaintext + tag
MAX_FRAME_BYTES = MAX_CHUNK_BYTES + 64 * 1024  # a chunk plus its message envelope
MAX_CONTROL_BYTES = 1024 * 1024  # any message that is not an upload chunk or a policy
MAX_LIST_PAGE = 1000  # entries per ``uploads`` reply: far below a frame at any size
MAX_UPLOADS_LIMIT = 10_000  # the highest ``max_uploads`` a policy may set per dataset
_MAX_NESTING = 8
FRAME_HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class Field:
    """One field of a message body: allowed Python types, whether required, a size cap."""

    types: tuple[type, ...]
    required: bool = True
    max_len: int | None = None
    exact_len: int | None = None


def _f(*types: type, required: bool = True, max_len: int | None = None,
       exact_len: int | None = None) -> Field:
    return Field(types, required, max_len, exact_len)


_STR = _f(str, max_len=256)
_BYTES32 = _f(bytes, exact_len=32)
_INT = _f(int)
_BOOL = _f(bool)
_AUDIT = _f(list, max_len=10_000)  # newly signed audit entries, for the host to publish
_HEAD = _f(dict, max_len=2)  # {seq: int, hash: 32 bytes}

# Host <-> enclave messages. Requests flow host -> enclave, responses enclave -> host.
MESSAGES: dict[str, dict[str, Field]] = {
    "init": {"policy": _f(bytes, max_len=MAX_CONTROL_BYTES)},
    "ready": {"mode": _STR, "policy_hash": _BYTES32, "enc_pub": _BYTES32, "sig_pub": _BYTES32},
    "attest": {"nonce": _f(bytes, required=False, exact_len=32)},
    "attestation": {
        "mode": _STR,
        "enc_pub": _BYTES32,
        "sig_pub": _BYTES32,
        "policy": _f(bytes, max_len=MAX_CONTROL_BYTES),
        "policy_hash": _BYTES32,
        "nonce": _BYTES32,
        "report_data": _f(bytes, exact_len=64),
        "quote": _f(bytes, type(None), max_len=64 * 1024),
    },
    # replay: the host re-sends a stored upload after a restart; only uploads the enclave's
    # sealed manifest lists may come back this way.
    "upload_begin": {"header": _f(bytes, max_len=64 * 1024), "signature": _f(bytes, exact_len=64),
                     "replay": _f(bool, required=False)},
    "upload_started": {"stream": _INT, "upload_id": _f(bytes, exact_len=16)},
    "upload_chunk": {
        "stream": _INT,
        "index": _INT,
        "last": _BOOL,
        "data": _f(bytes, max_len=MAX_CHUNK_BYTES),
    },
    "upload_chunk_ok": {"stream": _INT, "index": _INT},
    "upload_ready": {"stream": _INT, "upload_id": _f(bytes, exact_len=16), "rows": _INT,
                     "digest": _BYTES32},
    "upload_commit": {"stream": _INT},
    "upload_abort": {"stream": _INT},
    "upload_receipt": {"receipt": _f(bytes, max_len=64 * 1024), "signature": _f(bytes, exact_len=64),
                       "audit": _AUDIT},
    # Paged in acceptance order: entries after the upload id ``after``, at most ``limit``.
    "list_uploads": {"after": _f(bytes, required=False, exact_len=16), "limit": _f(int, required=False)},
    "uploads": {"uploads": _f(list, max_len=MAX_LIST_PAGE), "more": _BOOL},
    "query": {"request": _f(bytes, max_len=64 * 1024), "signature": _f(bytes, exact_len=64),
              # party -> Ed25519 signature over APPROVAL_LABEL || the charge_proposal (docs/witness.md)
              "approvals": _f(dict, required=False, max_len=64)},
    "approval_required": {"query_id": _BYTES32, "proposal": _f(bytes, max_len=128 * 1024),
                          "signature": _f(bytes, exact_len=64)},
    "budget": {},
    "budget_status": {"status": _f(bytes, max_len=MAX_CONTROL_BYTES), "signature": _f(bytes, exact_len=64)},
    "query_result": {"query_id": _BYTES32, "results": _f(dict, max_len=64), "audit": _AUDIT},
    "delete": {"request": _f(bytes, max_len=64 * 1024), "signature": _f(bytes, exact_len=64)},
    "deleted": {"receipt": _f(bytes, max_len=64 * 1024), "signature": _f(bytes, exact_len=64),
                "upload_ids": _f(list, max_len=100_000), "audit": _AUDIT},
    "audit_flush": {},
    "audit_entries": {"audit": _AUDIT},
    "health": {},
    "status": {"mode": _STR, "uptime_s": _INT, "datasets": _INT, "uploads_in_progress": _INT},
    "ok": {},
    "error": {"code": _f(str, max_len=64), "message": _f(str, max_len=1024)},
}

# Signed documents carried as opaque bytes inside messages (and by the client, offline).
DOCUMENTS: dict[str, dict[str, Field]] = {
    "upload_header": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "party": _STR,
        "dataset": _STR,
        "upload_id": _f(bytes, exact_len=16),
        "created_at": _INT,
        "hpke_enc": _f(bytes, max_len=1024),
        "chunk_size": _INT,
        "schema": _f(list, max_len=256),
        # The party's row count estimate: lets the enclave size its columns once (no regrowth,
        # no double peak memory). Not trusted for anything else; the host sees sizes anyway.
        "rows_hint": _f(int, required=False),
        # create (absent means create): refused if the dataset has uploads; append; replace: the
        # dataset's earlier uploads are deleted when this one commits (the receipt names them).
        "mode": _f(str, required=False, max_len=16),
        # The same key on a retry gets the receipt of the upload already committed with it.
        "idempotency_key": _f(bytes, required=False, exact_len=16),
        # Rows the party left out as invalid (--skip-invalid), per schema column
        # (protocol.upload.check_skipped); the receipt repeats it.
        "skipped": _f(dict, required=False, max_len=256),
    },
    "query_request": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "party": _STR,
        "analysis": _STR,
        "params": _f(dict, max_len=32),
        "nonce": _f(bytes, exact_len=16),
        "issued_at": _INT,
        # A free-form query (docs/query-language.md): the plan, with analysis "" and no params,
        # and the SQL it was compiled from (signed, carried into the result, never executed).
        "plan": _f(dict, required=False, max_len=8),
        "sql": _f(str, required=False, max_len=16 * 1024),
    },
    "upload_receipt": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "upload_id": _f(bytes, exact_len=16),
        "party": _STR,
        "dataset": _STR,
        "rows": _INT,
        "digest": _BYTES32,
        "accepted_at": _INT,
        "simulated": _BOOL,
        "audit_head": _HEAD,
        "idempotency_key": _f(bytes, required=False, exact_len=16),
        "replaced": _f(list, required=False, max_len=MAX_UPLOADS_LIMIT),  # upload ids deleted
        "skipped": _f(dict, required=False, max_len=256),  # as the signed upload header said
    },
    "result": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "query_id": _BYTES32,
        "analysis": _STR,
        "kind": _STR,
        "requested_by": _STR,
        "recipients": _f(list, max_len=64),
        "params": _f(dict, max_len=32),
        "simulated": _BOOL,
        "created_at": _INT,
        "columns": _f(list, max_len=64),
        "rows": _f(list, max_len=1_000_000),
        "privacy": _f(dict, max_len=64),
        "audit_head": _HEAD,
    },
    "audit_entry": {
        "collaboration_id": _STR,
        "seq": _INT,
        "prev": _BYTES32,
        "kind": _STR,
        "at": _INT,
        "details": _f(dict, max_len=32),
    },
    "delete_request": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "party": _STR,
        "dataset": _STR,
        "nonce": _f(bytes, exact_len=16),
        "issued_at": _INT,
    },
    "deletion_receipt": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "request_id": _BYTES32,
        "party": _STR,
        "dataset": _STR,
        "upload_ids": _f(list, max_len=100_000),
        "rows_deleted": _INT,
        "deleted_at": _INT,
        "simulated": _BOOL,
        "audit_head": _HEAD,
    },
    # What a query would charge, on which audit head: signed by the enclave, co-signed by each
    # approver before the enclave runs the query (docs/witness.md).
    "charge_proposal": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "query_id": _BYTES32,
        "request": _f(bytes, max_len=64 * 1024),
        "request_signature": _f(bytes, exact_len=64),
        "requested_by": _STR,
        "datasets": _f(list, max_len=64),
        "unit": _STR,
        "amount": _STR,
        "delta": _STR,
        "prev_head": _HEAD,
        "approvers": _f(dict, max_len=64),  # party -> reasons ("witness", "activation")
    },
    "budget_status": {
        "collaboration_id": _STR,
        "policy_hash": _BYTES32,
        "unit": _STR,
        "created_at": _INT,
        "simulated": _BOOL,
        "datasets": _f(dict, max_len=64),
        "audit_head": _HEAD,
    },
    "signed": {"body": _f(bytes, max_len=MAX_CONTROL_BYTES * 64), "signature": _f(bytes, exact_len=64)},
}


@dataclass(frozen=True)
class Message:
    type: str
    body: dict[str, Any]


def _sorted(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [_sorted(v) for v in obj]
    return obj


def canonical_packb(obj: Any) -> bytes:
    """msgpack with map keys sorted at every level, so equal values give equal bytes."""
    return msgpack.packb(_sorted(obj), use_bin_type=True)


def _check_body(kind: str, body: object, schema: Mapping[str, Field]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProtocolError(f"{kind}: body is not a map")
    unknown = set(body) - set(schema)
    if unknown:
        raise ProtocolError(f"{kind}: unknown field {sorted(unknown)[0]!r}")
    for name, field in schema.items():
        if name not in body:
            if field.required:
                raise ProtocolError(f"{kind}: missing field {name!r}")
            continue
        value = body[name]
        # bool is an int subclass; never let True pass as an int field or vice versa.
        if isinstance(value, bool) and bool not in field.types:
            raise ProtocolError(f"{kind}: field {name!r} has the wrong type")
        if not isinstance(value, field.types):
            raise ProtocolError(f"{kind}: field {name!r} has the wrong type")
        if isinstance(value, int) and not isinstance(value, bool) and not (
            -(2**63) <= value < 2**64
        ):
            raise ProtocolError(f"{kind}: field {name!r} is out of range")
        size = len(value) if isinstance(value, bytes | str | list | dict) else None
        if size is not None:
            if field.exact_len is not None and size != field.exact_len:
                raise ProtocolError(f"{kind}: field {name!r} has the wrong length")
            if field.max_len is not None and size > field.max_len:
                raise ProtocolError(f"{kind}: field {name!r} is too long")
    return body


def _loads(data: bytes | memoryview, max_size: int) -> Any:
    if len(data) > max_size:
        raise MessageTooLarge()
    try:
        # max_*_len bound what a hostile length prefix inside the msgpack can make us allocate.
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_bin_len=max_size,
            max_str_len=max_size,
            max_array_len=1_000_000,
            max_map_len=100_000,
            max_ext_len=0,
        )
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            ValueError, TypeError, OverflowError) as exc:
        raise ProtocolError("message is not valid msgpack") from exc


def _depth(obj: Any, limit: int, *, floats: bool = True) -> None:
    stack = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise ProtocolError("message is nested too deeply")
        if isinstance(item, float) and not floats:
            # Every number a document carries is an integer or an exact decimal string.
            raise ProtocolError("a document holds no floating-point number")
        if isinstance(item, dict):
            # strict_map_key still lets bytes keys through; only text names a field.
            if not all(isinstance(k, str) for k in item):
                raise ProtocolError("message has a map key that is not a string")
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def pack(type_: str, body: Mapping[str, Any]) -> bytes:
    """Serialise one message after checking it against its declared fields."""
    schema = MESSAGES.get(type_)
    if schema is None:
        raise ProtocolError(f"unknown message type {type_!r}")
    _check_body(type_, dict(body), schema)
    return msgpack.packb({"v": PROTOCOL_VERSION, "type": type_, "body": dict(body)},
                         use_bin_type=True)


def unpack(data: bytes | memoryview, *, max_size: int = MAX_FRAME_BYTES) -> Message:
    """Parse and validate one message; any defect is a ``ProtocolError``."""
    obj = _loads(data, max_size)
    _depth(obj, _MAX_NESTING)
    if not isinstance(obj, dict) or set(obj) != {"v", "type", "body"}:
        raise ProtocolError("message is not an envelope {v, type, body}")
    if obj["v"] != PROTOCOL_VERSION or isinstance(obj["v"], bool):
        raise UnsupportedVersion()
    type_ = obj["type"]
    if not isinstance(type_, str) or type_ not in MESSAGES:
        raise ProtocolError("unknown message type")
    return Message(type_, _check_body(type_, obj["body"], MESSAGES[type_]))


def pack_document(kind: str, body: Mapping[str, Any]) -> bytes:
    """Canonical bytes of a signed document (the exact bytes a signature covers)."""
    _check_body(kind, dict(body), DOCUMENTS[kind])
    return canonical_packb(dict(body))


def unpack_document(kind: str, data: bytes, *, max_size: int = MAX_CONTROL_BYTES * 64) -> dict[str, Any]:
    """Parse and validate a signed document, which must be in canonical form (docs/wire.md).

    Re-encoding must give back exactly ``data``: one byte string per document, so that two
    parsers can never read one signed document two ways (duplicate keys, non-minimal forms,
    floats of another width) and an implementation that does not encode canonically fails at
    once rather than in a later byte comparison. No value may be a float.
    """
    obj = _loads(data, max_size)
    _depth(obj, _MAX_NESTING, floats=False)
    body = _check_body(kind, obj, DOCUMENTS[kind])
    if canonical_packb(body) != data:
        raise ProtocolError(f"{kind}: not in canonical msgpack form")
    return body


def encode_frame(payload: bytes) -> bytes:
    """A 4-byte big-endian length, then the payload."""
    if len(payload) > MAX_FRAME_BYTES:
        raise MessageTooLarge()
    return FRAME_HEADER.pack(len(payload)) + payload


def read_frame(read_exact: Callable[[int], bytes], *, max_size: int = MAX_FRAME_BYTES) -> bytes:
    """Read one frame through ``read_exact(n)``; the length is checked before the body is read."""
    (length,) = FRAME_HEADER.unpack(read_exact(FRAME_HEADER.size))
    if length > max_size:
        raise MessageTooLarge()
    return read_exact(length)
