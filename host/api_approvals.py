"""HTTP API for the budget and co-signed queries (docs/witness.md, docs/http-api.md).

* ``GET  /v1/budget``: every dataset's budget and each requester's share, signed by the enclave;
  free (nothing is charged) and public (the host sees every charge in the audit log anyway).
* ``GET  /v1/approvals?party=P``: the proposals waiting for P's co-signature, refreshed first, so
  a proposal whose audit head has moved on is replaced by the enclave's current one.
* ``POST /v1/approvals/{query_id}`` ``{"party", "signature"}``: one approval; with the last one the
  host relays the query with all of them and stores its result like any other.
* ``GET  /v1/queries/{query_id}``: where a query stands: ``approval_required``, ``executed``
  (its result is at ``/v1/results/{query_id}``) or ``refused`` (with the error).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, request

from host.api import Services, _b64, _b64_field, _json_object, _publishing, _services, store_result
from host.approvals import Pending
from protocol.errors import CleanroomError, NotFound, ProtocolError

__all__ = ["bp"]

bp = Blueprint("v1_approvals", __name__, url_prefix="/v1")

_QUERY_ID = re.compile(r"[0-9a-f]{64}")
_PARTY = re.compile(r"[a-z][a-z0-9_]{0,62}")


def _query_id(text: str) -> bytes:
    if not _QUERY_ID.fullmatch(text):
        raise ProtocolError("query id must be 64 lowercase hex digits")
    return bytes.fromhex(text)


def _relay(services: Services, entry: Pending, with_approvals: bool) -> None:
    """Send the pending query to the enclave; record what became of it on ``entry``."""
    body = entry.query_body() if with_approvals else {"request": entry.request,
                                                      "signature": entry.request_signature}
    try:
        handle = services.supervisor.handle()
        reply = _publishing(services, lambda: handle.call(
            "query", body, expect=("query_result", "approval_required")))
    except CleanroomError as exc:
        if exc.code in ("enclave_unavailable", "enclave_busy"):
            raise  # nothing was decided: the entry stays pending
        services.pending.finish(entry, {"status": "refused",
                                        "error": {"code": exc.code, "message": exc.message}})
        return
    if reply.type == "approval_required":
        services.pending.propose(entry.query_id, entry.request, entry.request_signature, reply.body)
        return
    store_result(services, reply.body)
    services.pending.finish(entry, {"status": "executed"})


@bp.get("/budget")
def budget() -> dict[str, Any]:
    reply = _services().supervisor.handle().call("budget", {}, expect="budget_status")
    return {"status": _b64(reply.body["status"]), "signature": _b64(reply.body["signature"])}


@bp.get("/approvals")
def list_approvals() -> dict[str, Any]:
    party = request.args.get("party", "")
    if not _PARTY.fullmatch(party):
        raise ProtocolError("party must be a party id of the policy")
    services = _services()
    with services.pending.relay_lock:
        for entry in services.pending.open():
            _relay(services, entry, with_approvals=False)
    return {"pending": [entry.view() for entry in services.pending.waiting_for(party)]}


@bp.post("/approvals/<query_id>")
def approve(query_id: str) -> dict[str, Any]:
    payload = _json_object({"party", "signature"})
    party = payload["party"]
    if not isinstance(party, str) or not _PARTY.fullmatch(party):
        raise ProtocolError("party must be a party id of the policy")
    services = _services()
    entry = services.pending.approve(_query_id(query_id), party, _b64_field(payload, "signature"))
    if entry.complete and entry.outcome is None:
        with services.pending.relay_lock:
            _relay(services, entry, with_approvals=True)
    return entry.view()


@bp.get("/queries/<query_id>")
def query_status(query_id: str) -> dict[str, Any]:
    qid = _query_id(query_id)
    services = _services()
    try:
        return services.pending.get(qid).view()
    except NotFound:
        if services.results.get(query_id) is not None:
            return {"query_id": query_id, "status": "executed"}
        raise
