"""HTTP API ``/v1`` (docs/http-api.md): relays opaque bytes between parties and the enclave.

Nothing here decrypts, verifies or interprets a party's data: upload bodies, query requests and
results are bytes the host forwards and stores. Views stay thin; errors are raised as
``CleanroomError`` and rendered by ``host/errors.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, request

from host.approvals import PendingApprovals
from host.attestation import AttestationService
from host.audit_store import AuditStore
from host.read_guard import FORCE_CLOSE_KEY, GuardedStream, ReadLimits, StallWatchdog
from host.relay import EnclaveUpload
from host.storage import ResultStore, UploadStore
from host.supervisor import EnclaveSupervisor
from host.upload_stream import UploadChunk, UploadHeader, iter_upload_records
from protocol.errors import (
    CleanroomError,
    EnclaveBusy,
    EnclaveUnavailable,
    InternalError,
    MessageTooLarge,
    NotFound,
    ProtocolError,
)
from protocol.wire import MAX_LIST_PAGE, unpack_document

__all__ = ["Services", "bp"]

log = logging.getLogger(__name__)

bp = Blueprint("v1", __name__, url_prefix="/v1")

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_QUERY_ID = re.compile(r"[0-9a-f]{64}")
_BODY_READ_SIZE = 256 * 1024


@dataclass
class Services:
    """What the views need, built once by ``create_app`` and kept in ``app.extensions``."""

    supervisor: EnclaveSupervisor
    uploads: UploadStore
    results: ResultStore
    audit: AuditStore
    attestation: AttestationService
    upload_slots: threading.BoundedSemaphore
    max_upload_bytes: int
    upload_connections: threading.BoundedSemaphore
    read_limits: ReadLimits
    watchdog: StallWatchdog
    pending: PendingApprovals = field(default_factory=PendingApprovals)


def _services() -> Services:
    return current_app.extensions["cleanroom"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# health and attestation


@bp.get("/health")
def health() -> dict[str, Any]:
    reply = _services().supervisor.handle().call("health", {}, expect="status")
    return {"status": "ok", "enclave": reply.body}


@bp.get("/attestation")
def attestation() -> dict[str, Any]:
    nonce_hex = request.args.get("nonce")
    nonce = None
    if nonce_hex is not None:
        if not _HEX64.fullmatch(nonce_hex):
            raise ProtocolError("nonce must be 64 hex digits")
        nonce = bytes.fromhex(nonce_hex)
    return _services().attestation.bundle(nonce)


@bp.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    from host import openapi  # imported on demand: only this route needs the document

    return openapi.document()


# uploads


@bp.post("/uploads")
def create_upload() -> tuple[dict[str, Any], int]:
    services = _services()
    if request.content_length is not None and request.content_length > services.max_upload_bytes:
        _close_after_response()
        raise MessageTooLarge("upload exceeds the size limit")
    # Refuse rather than queue. Two limits, so that nobody who merely reaches the port can
    # stall the uploads of the parties (issue 11, point 10):
    # - upload_connections bounds the requests inside this view, header phase included; it is
    #   at most half the worker's threads (host/cli.py), so the rest always answer health,
    #   attestation and queries however many uploads stall;
    # - upload_slots (each an open enclave stream, a temp file, a long-running thread) is taken
    #   only once record 0 arrived within the header deadline and the enclave accepted its
    #   party signature: a silent or unsigned connection never holds one.
    if not services.upload_connections.acquire(blocking=False):
        _close_after_response()  # not read at all: no 5 s drain of a body a silent client holds
        raise EnclaveBusy()
    try:
        stream = GuardedStream(request.environ["wsgi.input"],
                               request.environ.get("gunicorn.socket"), services.read_limits)
        with services.watchdog.watching(stream):
            return _relay_upload(services, stream), 201
    finally:
        services.upload_connections.release()


def _close_after_response() -> None:
    """Ask the server (host/worker.py) to close instead of draining this request's body."""
    force_close = request.environ.get(FORCE_CLOSE_KEY)
    if force_close is not None:
        force_close()


def _relay_upload(services: Services, stream: GuardedStream) -> dict[str, Any]:
    """Stream records to the enclave and to a temp file; store durably before the commit."""
    # Pieces of at most 256 KiB, so the rate floor sees progress well inside its grace period.
    records = iter_upload_records(stream, max_bytes=services.max_upload_bytes,
                                  read_size=_BODY_READ_SIZE)
    first = next(records)  # bounded: 64 KiB and CLEANROOM_UPLOAD_HEADER_TIMEOUT
    assert isinstance(first, UploadHeader)
    stream.header_done()
    handle = services.supervisor.handle()  # pinned: every chunk goes to this same enclave
    upload = EnclaveUpload.begin(handle.call, first.header, first.signature)  # checks the signature
    if not services.upload_slots.acquire(blocking=False):
        upload.abort_quietly()
        raise EnclaveBusy()
    try:
        return _stream_upload(services, records, first, upload)
    finally:
        services.upload_slots.release()


def _stream_upload(services: Services, records: Iterator[UploadHeader | UploadChunk],
                   first: UploadHeader, upload: EnclaveUpload) -> dict[str, Any]:
    try:
        with services.uploads.new_upload() as writer:
            writer.write_record(first.raw)
            for chunk in records:
                assert isinstance(chunk, UploadChunk)
                writer.write_record(b"\x01" if chunk.last else b"\x00", chunk.data)
                upload.chunk(chunk.last, chunk.data)
            if upload.ready is None:
                raise InternalError("upload ended without a last chunk")
            # Rename, index and enclave commit as one step, so the index lists uploads in the
            # order the enclave committed them (the replay order after a restart).
            with services.uploads.commit_lock:
                services.uploads.commit(writer, upload.upload_id)
                try:
                    receipt = upload.commit()
                except EnclaveUnavailable:
                    # Whether the enclave sealed it is unknown: keep the file, and let the
                    # replay after the restart settle it (re-ingested or quarantined).
                    raise
                except CleanroomError:
                    services.uploads.remove(upload.upload_id)  # the enclave refused it: never ours
                    _flush_audit(services)
                    raise
                # Committed: from here on the stored file must stay, whatever else fails.
                services.audit.append(receipt.body["audit"])
                for replaced in _replaced_uploads(receipt.body["receipt"]):
                    services.uploads.remove(replaced)  # the enclave forgot them, as in a deletion
    except BaseException:
        upload.abort_quietly()
        raise
    ready = upload.ready.body
    log.info("upload %s accepted (%d bytes stored)", upload.upload_id.hex(), writer.size)
    return {
        "upload_id": upload.upload_id.hex(),
        "rows": ready["rows"],
        "digest": ready["digest"].hex(),
        "receipt": _b64(receipt.body["receipt"]),
        "signature": _b64(receipt.body["signature"]),
    }


def _replaced_uploads(receipt: bytes) -> list[bytes]:
    """The upload ids a ``replace`` upload's signed receipt names (the enclave deleted them)."""
    try:
        replaced = unpack_document("upload_receipt", receipt).get("replaced", [])
    except CleanroomError:
        log.warning("could not read the replaced uploads of a receipt")
        return []
    return [u for u in replaced if isinstance(u, bytes) and len(u) == 16]


@bp.get("/uploads")
def list_uploads() -> dict[str, Any]:
    """One page of the enclave's manifest: ``?after=<upload_id hex>&limit=<1..1000>``."""
    page: dict[str, Any] = {}
    after, limit = request.args.get("after"), request.args.get("limit")
    if after is not None:
        if not re.fullmatch(r"[0-9a-fA-F]{32}", after):
            raise ProtocolError("after must be an upload id: 32 hex digits")
        page["after"] = bytes.fromhex(after)
    if limit is not None:
        if not (limit.isdigit() and len(limit) <= 4 and 1 <= int(limit) <= MAX_LIST_PAGE):
            raise ProtocolError(f"limit must be an integer from 1 to {MAX_LIST_PAGE}")
        page["limit"] = int(limit)
    reply = _services().supervisor.handle().call("list_uploads", page, expect="uploads")
    return {"uploads": [_upload_entry(entry) for entry in reply.body["uploads"]],
            "more": reply.body["more"]}


def _upload_entry(entry: object) -> dict[str, Any]:
    if not isinstance(entry, dict) or not all(isinstance(k, str) for k in entry):
        raise InternalError("enclave sent a malformed upload list")
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, bytes):
            out[key] = value.hex()
        elif value is None or isinstance(value, str | int | float):
            out[key] = value
        else:
            raise InternalError("enclave sent a malformed upload list")
    return out


# queries and results


@bp.post("/queries")
def run_query() -> tuple[dict[str, Any], int]:
    payload = _json_object({"request", "signature"})
    body = {"request": _b64_field(payload, "request"),
            "signature": _b64_field(payload, "signature")}
    services = _services()
    handle = services.supervisor.handle()
    reply = _publishing(services, lambda: handle.call("query", body,
                                                      expect=("query_result", "approval_required")))
    if reply.type == "approval_required":  # nothing was charged: the approvers co-sign first
        entry = services.pending.propose(reply.body["query_id"], body["request"], body["signature"],
                                         reply.body)
        return entry.view(), 202
    return store_result(services, reply.body), 200


def store_result(services: Services, reply: dict[str, Any]) -> dict[str, Any]:
    """Keep a ``query_result``'s encrypted results for their recipients; the JSON for the caller."""
    query_id: bytes = reply["query_id"]
    results = reply["results"]
    if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in results.items()):
        raise InternalError("enclave sent malformed results")
    document = {"query_id": query_id.hex(), "results": {k: _b64(v) for k, v in results.items()}}
    try:
        services.results.put(query_id, document)
    except OSError:
        # The budget is already spent: losing the answer would be worse than not storing it.
        log.exception("could not store the results of query %s", query_id.hex())
    return document


def _publishing(services: Services, call: Callable[[], Any]) -> Any:
    """Make an enclave call and store the audit entries it produced, even when it failed.

    A request can fail after the enclave recorded something (a query that was charged and then
    failed); its error reply carries no entries, so they are fetched with ``audit_flush``.
    """
    try:
        reply = call()
    except EnclaveUnavailable:
        raise  # the enclave republishes unconfirmed entries with its next reply after restart
    except CleanroomError:
        _flush_audit(services)
        raise
    services.audit.append(reply.body.get("audit", []))  # an approval_required reply records nothing
    return reply


def _flush_audit(services: Services) -> None:
    try:
        flushed = services.supervisor.handle().call("audit_flush", {}, expect="audit_entries")
        services.audit.append(flushed.body["audit"])
    except CleanroomError:
        log.warning("could not fetch audit entries after a failed request")


# audit log and deletion


@bp.get("/audit")
def audit_log() -> dict[str, Any]:
    after = request.args.get("after", "0")
    if not after.isdigit() or len(after) > 18:
        raise ProtocolError("after must be a non-negative integer")
    entries = _services().audit.after(int(after))
    return {"entries": [_b64(entry) for entry in entries]}


@bp.post("/deletions")
def delete_dataset() -> dict[str, Any]:
    payload = _json_object({"request", "signature"})
    body = {"request": _b64_field(payload, "request"),
            "signature": _b64_field(payload, "signature")}
    services = _services()
    handle = services.supervisor.handle()
    with services.uploads.commit_lock:  # no upload of this dataset commits half-way through
        reply = _publishing(services, lambda: handle.call("delete", body, expect="deleted"))
        upload_ids = reply.body["upload_ids"]
        if not all(isinstance(u, bytes) and len(u) == 16 for u in upload_ids):
            raise InternalError("enclave sent malformed upload ids")
        for upload_id in upload_ids:
            services.uploads.remove(upload_id)  # the enclave forgot them: the ciphertext goes too
    return {"receipt": _b64(reply.body["receipt"]), "signature": _b64(reply.body["signature"]),
            "upload_ids": [u.hex() for u in upload_ids]}


@bp.get("/results")
def list_results() -> dict[str, Any]:
    """One page of stored results: ``?recipient=<party>&after=<query_id>&limit=<1..1000>``.

    Only what the host knows itself (query ids, its storage time, recipients): nothing secret.
    """
    recipient, after, limit = (request.args.get(k) for k in ("recipient", "after", "limit"))
    if recipient is not None and not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", recipient):
        raise ProtocolError("recipient must be a party id")
    if after is not None and not _QUERY_ID.fullmatch(after):
        raise ProtocolError("after must be a query id: 64 lowercase hex digits")
    if limit is not None and not (limit.isdigit() and len(limit) <= 4
                                  and 1 <= int(limit) <= MAX_LIST_PAGE):
        raise ProtocolError(f"limit must be an integer from 1 to {MAX_LIST_PAGE}")
    entries, more = _services().results.page(recipient=recipient, after=after,
                                             limit=MAX_LIST_PAGE if limit is None else int(limit))
    return {"results": entries, "more": more}


@bp.get("/results/<query_id>")
def get_result(query_id: str) -> dict[str, Any]:
    if not _QUERY_ID.fullmatch(query_id):
        raise ProtocolError("query id must be 64 lowercase hex digits")
    document = _services().results.get(query_id)
    if document is None:
        raise NotFound("no stored result for this query id")
    return document


def _json_object(fields: set[str]) -> dict[str, Any]:
    """The request body as a JSON object with exactly ``fields``; anything else is bad_message."""
    raw = request.get_data(cache=False)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ProtocolError("duplicate key in JSON body")
        return dict(pairs)

    def no_constants(name: str) -> None:
        raise ProtocolError("JSON body must not contain NaN or Infinity")

    try:
        payload = json.loads(raw, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise ProtocolError("body must be a JSON object")
    if set(payload) != fields:
        raise ProtocolError(f"body must have exactly the fields {sorted(fields)}")
    return payload


def _b64_field(payload: dict[str, Any], name: str) -> bytes:
    value = payload[name]
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"{name} is not valid base64") from exc
