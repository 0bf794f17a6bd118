"""The enclave's session: one object that answers every message of the interface (docs/design.md).

``Session`` is assembled from one class per job: ``session_state.SessionCore`` (injected edges,
the collaboration state, sealing and the audit trail), ``uploads.UploadHandlers``,
``queries.QueryHandlers`` and ``deletion.DeletionHandlers``; this module adds the lifecycle
(``init``, ``health``, ``attest``, ``budget``, ``audit_flush``). ``dispatch.py`` maps message types to them.
"""

from __future__ import annotations

from typing import Any

from enclave.requests.deletion import DeletionHandlers
from enclave.requests.queries import QueryHandlers
from enclave.requests.session_state import CollaborationState, Reply
from enclave.requests.uploads import UploadHandlers
from enclave.state import sealing
from enclave.state.audit import AuditLog
from enclave.state.keys import EnclaveKeys
from enclave.state.ledger import ledger_for
from enclave.state.replay import ReplayGuard
from protocol.crypto import BUDGET_LABEL
from protocol.errors import ConflictError
from protocol.policy import parse_policy
from protocol.report_data import report_data as build_report_data
from protocol.wire import pack_document

__all__ = ["Reply", "Session"]


class Session(UploadHandlers, QueryHandlers, DeletionHandlers):
    def init(self, body: dict[str, Any]) -> Reply:
        policy = parse_policy(body["policy"])
        if self._state is not None:
            if self._state.policy.hash != policy.hash:
                raise ConflictError("the enclave already serves another policy")
            return self._ready()
        sealed = self._load_sealed(policy.hash)
        if sealed is not None:
            self._state = self._restore(policy, sealing.unseal(sealed, self._sealing_key))
        else:
            keys = EnclaveKeys.generate()
            self._state = CollaborationState(
                policy=policy, keys=keys,
                ledger=ledger_for(policy),
                replay=ReplayGuard(), manifest=[], audit=AuditLog(policy.collaboration_id, keys.sign),
            )
            self._seal()
        return self._ready()

    def _ready(self) -> Reply:
        state = self._require()
        return "ready", {"mode": self.mode, "policy_hash": state.policy.hash,
                         "enc_pub": state.keys.enc_pub, "sig_pub": state.keys.sig_pub}

    def health(self, body: dict[str, Any]) -> Reply:
        datasets = len(self._state.tables) if self._state else 0
        return "status", {"mode": self.mode, "uptime_s": int(self._clock() - self._started),
                          "datasets": datasets, "uploads_in_progress": len(self._uploads)}

    def attest(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        nonce = body.get("nonce", bytes(32))
        report_data = build_report_data(state.keys.enc_pub, state.keys.sig_pub, state.policy.hash, nonce)
        return "attestation", {
            "mode": self.mode, "enc_pub": state.keys.enc_pub, "sig_pub": state.keys.sig_pub,
            "policy": state.policy.raw, "policy_hash": state.policy.hash, "nonce": nonce,
            "report_data": report_data, "quote": self._quote(report_data),
        }

    def budget(self, body: dict[str, Any]) -> Reply:
        """Every dataset's budget (and each requester's share), signed; free and read-only."""
        state = self._require()
        status = pack_document("budget_status", {
            "collaboration_id": state.policy.collaboration_id, "policy_hash": state.policy.hash,
            "unit": state.policy.privacy.unit, "created_at": self._now(), "simulated": self.simulated,
            "datasets": state.ledger.status(), "audit_head": state.audit.head.to_wire(),
        })
        return "budget_status", {"status": status, "signature": state.keys.sign(BUDGET_LABEL, status)}

    def audit_flush(self, body: dict[str, Any]) -> Reply:
        """Entries made by a request that then failed (its error reply carries none)."""
        return "audit_entries", {"audit": self._publish()}
