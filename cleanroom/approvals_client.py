"""The client's side of co-signed queries and of the budget (docs/witness.md, docs/http-api.md).

* ``wait_for_approvals``: a requester whose query needs co-signatures polls the host until the
  query ran, was refused, or the wait ran out (nothing is charged before every approver signed).
* ``pending_proposals`` / ``send_approval``: an approver's view of the host's queue.
* ``budget_status``: the enclave's signed, free statement of every dataset's budget.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cleanroom.enclave_signatures import check_enclave_signature
from cleanroom.http_transport import HostConnection, b64_field
from protocol.crypto import BUDGET_LABEL, PROPOSAL_LABEL
from protocol.errors import (
    ApprovalTimeout,
    PolicyMismatch,
    ProtocolError,
    error_from_wire,
)
from protocol.policy import Policy
from protocol.wire import unpack_document

__all__ = ["APPROVAL_TIMEOUT_S", "Proposal", "budget_status", "pending_proposals", "send_approval",
           "wait_for_approvals"]

# The enclave refuses a request issued more than 300 s ago, so waiting longer cannot succeed.
APPROVAL_TIMEOUT_S = 290.0


def wait_for_approvals(http: HostConnection, query_id: bytes,
                       on_wait: Callable[[dict[str, Any]], None] | None = None,
                       timeout: float = APPROVAL_TIMEOUT_S, *,
                       sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.monotonic) -> None:
    """Poll ``GET /v1/queries/{id}`` until the query ran; raise its error if it was refused."""
    deadline, pause = clock() + timeout, 0.2
    path = "/v1/queries/" + query_id.hex()
    while True:
        status = http.request("GET", path)
        if not isinstance(status, dict):
            raise ProtocolError("the query status is malformed")
        if status.get("status") == "executed":
            return
        if status.get("status") == "refused":
            raise error_from_wire(status.get("error"))
        if on_wait is not None:
            on_wait(status)
        if clock() >= deadline:
            waiting = sorted(set(status.get("approvers", {})) - set(status.get("approved_by", [])))
            raise ApprovalTimeout(f"no co-signature from {', '.join(waiting) or 'the approvers'} "
                                  f"within {timeout:.0f} s; nothing was charged")
        sleep(pause)
        pause = min(pause * 2, 2.0)


@dataclass(frozen=True)
class Proposal:
    """A charge proposal the enclave signed (checked against its attested key)."""

    query_id: bytes
    raw: bytes
    body: dict[str, Any]


def pending_proposals(http: HostConnection, party: str, sig_pub: bytes, policy: Policy) -> list[Proposal]:
    """The proposals waiting for ``party``; each must carry the attested enclave's signature."""
    doc = http.request("GET", "/v1/approvals?" + urllib.parse.urlencode({"party": party}))
    if not isinstance(doc, dict) or not isinstance(doc.get("pending"), list):
        raise ProtocolError("the approvals listing is malformed")
    out = []
    for item in doc["pending"]:
        if not isinstance(item, dict):
            raise ProtocolError("the approvals listing is malformed")
        raw = b64_field(item.get("proposal"), "the proposal")
        check_enclave_signature(sig_pub, PROPOSAL_LABEL, raw,
                                b64_field(item.get("signature"), "the proposal signature"), "a proposal")
        body = unpack_document("charge_proposal", raw)
        if body["collaboration_id"] != policy.collaboration_id or body["policy_hash"] != policy.hash:
            raise PolicyMismatch("a proposal was made for another collaboration or policy")
        out.append(Proposal(body["query_id"], raw, body))
    return out


def send_approval(http: HostConnection, query_id: bytes, party: str, signature: bytes) -> dict[str, Any]:
    status = http.request("POST", "/v1/approvals/" + query_id.hex(), {
        "party": party, "signature": base64.b64encode(signature).decode()})
    if not isinstance(status, dict):
        raise ProtocolError("the approval response is malformed")
    return status


def budget_status(http: HostConnection, sig_pub: bytes, policy: Policy) -> dict[str, Any]:
    """The enclave's signed budget statement, verified against its attested key."""
    doc = http.request("GET", "/v1/budget")
    if not isinstance(doc, dict):
        raise ProtocolError("the budget response is malformed")
    raw = b64_field(doc.get("status"), "the budget status")
    signature = b64_field(doc.get("signature"), "the budget signature")
    check_enclave_signature(sig_pub, BUDGET_LABEL, raw, signature, "the budget status")
    body = unpack_document("budget_status", raw)
    if body["collaboration_id"] != policy.collaboration_id or body["policy_hash"] != policy.hash:
        raise PolicyMismatch("the budget status belongs to another collaboration or policy")
    return body
