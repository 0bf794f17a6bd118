"""Queries waiting for co-signatures (docs/witness.md), kept by the host between relays.

The enclave answers a query that needs approvals with a signed ``charge_proposal`` instead of a
result; the host keeps the request and the proposal here, hands the proposal to each approver
(``GET /v1/approvals``), collects their signatures (``POST /v1/approvals/{id}``) and, once all
are in, relays the query again with them. The host is trusted with none of it: a proposal is
signed by the enclave, an approval by the approver, and the enclave recomputes the proposal
before it accepts either. Pending queries live in memory only; after a host restart the
requester sends its query again (it is still unanswered and uncharged).
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import ConflictError, InternalError, NotFound, ProtocolError
from protocol.wire import unpack_document

__all__ = ["MAX_PENDING", "Pending", "PendingApprovals"]

MAX_PENDING = 256


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Pending:
    query_id: bytes
    request: bytes
    request_signature: bytes
    proposal: bytes
    proposal_signature: bytes
    approvers: dict[str, list[str]]
    approvals: dict[str, bytes] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None  # set once the query ran or was refused

    def view(self) -> dict[str, Any]:
        """The JSON a requester or an approver sees: nothing here is secret."""
        out: dict[str, Any] = {
            "query_id": self.query_id.hex(), "proposal": _b64(self.proposal),
            "signature": _b64(self.proposal_signature), "approvers": self.approvers,
            "approved_by": sorted(self.approvals),
        }
        out["status"] = "approval_required" if self.outcome is None else self.outcome["status"]
        if self.outcome is not None and "error" in self.outcome:
            out["error"] = self.outcome["error"]
        return out

    def query_body(self) -> dict[str, Any]:
        """The ``query`` message to relay: with the approvals collected so far, if any."""
        body: dict[str, Any] = {"request": self.request, "signature": self.request_signature}
        if self.approvals:
            body["approvals"] = dict(self.approvals)
        return body

    @property
    def complete(self) -> bool:
        return set(self.approvers) <= set(self.approvals)


class PendingApprovals:
    """Pending queries by id, at most ``MAX_PENDING`` of them; thread-safe."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._pending: dict[bytes, Pending] = {}
        self.relay_lock = threading.Lock()  # one re-relay at a time: proposals refresh in order

    def propose(self, query_id: bytes, request: bytes, request_signature: bytes,
                reply: dict[str, Any]) -> Pending:
        """Keep (or refresh) the query an enclave ``approval_required`` reply is about."""
        proposal, signature = reply["proposal"], reply["signature"]
        if reply["query_id"] != query_id:
            raise InternalError("the enclave proposed a charge for another query")
        try:
            approvers = unpack_document("charge_proposal", proposal)["approvers"]
        except Exception as exc:
            raise InternalError("the enclave sent a malformed proposal") from exc
        with self._lock:
            entry = self._pending.get(query_id)
            if entry is None:
                if sum(e.outcome is None for e in self._pending.values()) >= self._limit:
                    raise ConflictError("too many queries are waiting for approval; try again later")
                self._drop_finished()
                entry = Pending(query_id, request, request_signature, proposal, signature, approvers)
                self._pending[query_id] = entry
            elif entry.proposal != proposal:  # the head moved: earlier approvals are of the old one
                entry.proposal, entry.proposal_signature, entry.approvers = proposal, signature, approvers
                entry.approvals = {}
                entry.outcome = None
            return entry

    def get(self, query_id: bytes) -> Pending:
        with self._lock:
            entry = self._pending.get(query_id)
        if entry is None:
            raise NotFound("no query with this id is waiting for approval")
        return entry

    def waiting_for(self, party: str) -> list[Pending]:
        """Pending queries ``party`` has not approved yet, oldest first."""
        with self._lock:
            return [e for e in self._pending.values()
                    if e.outcome is None and party in e.approvers and party not in e.approvals]

    def open(self) -> list[Pending]:
        with self._lock:
            return [e for e in self._pending.values() if e.outcome is None]

    def approve(self, query_id: bytes, party: str, signature: bytes) -> Pending:
        entry = self.get(query_id)
        if party not in entry.approvers:
            raise ProtocolError(f"party {party!r} is not an approver of this query")
        if len(signature) != 64:
            raise ProtocolError("signature must be 64 bytes")
        with self._lock:
            entry.approvals[party] = signature
        return entry

    def finish(self, entry: Pending, outcome: dict[str, Any]) -> None:
        with self._lock:
            entry.outcome = outcome

    def _drop_finished(self) -> None:
        """Forget finished entries beyond the limit (their results are in the result store)."""
        finished = [qid for qid, e in self._pending.items() if e.outcome is not None]
        for query_id in finished[: max(0, len(finished) - self._limit)]:
            del self._pending[query_id]
