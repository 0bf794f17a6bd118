"""The query handler: authorize, charge the budget, run, sign, and encrypt the result to each recipient."""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from enclave.engine.analyses import run_query
from enclave.engine.plan_run import run_plan
from enclave.requests.approvals import approved, charge_proposal, required_approvers, seeded_randomness
from enclave.requests.authorization import FreeformQuery, QueryPlan, authorize
from enclave.requests.envelope import verify_party_signature
from enclave.requests.session_state import CollaborationState, Reply, SessionCore
from protocol.crypto import HPKE_SUITE, PROPOSAL_LABEL, QUERY_LABEL, RESULT_LABEL, result_hpke_info
from protocol.errors import ConflictError, StateError
from protocol.wire import pack_document, unpack_document

__all__ = ["QueryHandlers"]


class QueryHandlers(SessionCore):
    def query(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        request_bytes = body["request"]
        request = unpack_document("query_request", request_bytes)
        verify_party_signature(state.policy, request["party"], QUERY_LABEL, request_bytes,
                               body["signature"])
        query_id = hashlib.sha256(request_bytes).digest()
        plan = authorize(state.policy, request)
        missing = [e for e in state.manifest if e["upload_id"] not in state.ingested]
        if missing:
            raise StateError(f"{len(missing)} accepted upload(s) have not been replayed by the host yet")
        for name in plan.charged_datasets:
            if name not in state.tables:
                raise ConflictError(f"dataset {name!r} has no accepted upload yet")
        state.replay.check(query_id, request["issued_at"], self._now())
        state.ledger.check(plan.charged_datasets, plan.cost, plan.delta, requester=plan.requested_by)
        noise, random_bytes = self._noise, self._random_bytes
        approvers = required_approvers(state.policy, plan)
        if approvers:  # nothing is remembered or charged until every approver has co-signed
            proposal = charge_proposal(state, plan, query_id, request_bytes, body["signature"], approvers)
            if not approved(state.policy, proposal, body.get("approvals") or {}, approvers):
                return "approval_required", {"query_id": query_id, "proposal": proposal,
                                             "signature": state.keys.sign(PROPOSAL_LABEL, proposal)}
            seeded_noise, seeded = seeded_randomness(state.keys.release_seed, proposal)
            noise, random_bytes = seeded_noise, seeded.random_bytes
        state.replay.remember(query_id, request["issued_at"])
        state.ledger.charge(plan.charged_datasets, plan.cost, plan.delta, requester=plan.requested_by)
        self._record("query_run", {"query_id": query_id, "party": plan.requested_by,
                                   "analysis": plan.analysis_id, "params": plan.public_params(),
                                   **({"approved_by": sorted(approvers)} if approvers else {})})
        self._record("budget_charged", {"query_id": query_id, "datasets": list(plan.charged_datasets),
                                        "unit": state.policy.privacy.unit, "amount": str(plan.cost),
                                        "delta": str(plan.delta)})
        self._seal()  # the budget is spent before any data is read, and stays spent
        head = state.audit.head  # the result carries the head that records its charge

        # The release deadline is measured on the session's clock and padded with its sleep.
        if isinstance(plan, FreeformQuery):
            release = run_plan(plan.plan, plan.check, state.policy, state.tables, noise, random_bytes,
                               join_key=state.keys.join, clock=self._clock, sleep=self._sleep)
        else:
            release = run_query(plan, state.policy, state.tables, noise, random_bytes,
                                join_key=state.keys.join, clock=self._clock, sleep=self._sleep)
        conversion = state.policy.privacy.conversion_delta
        shares = {name: state.ledger.share_remaining(name, plan.requested_by)
                  for name in plan.charged_datasets}
        privacy = {**release.privacy, "budget_remaining": {
            name: str(state.ledger.remaining(name)) for name in plan.charged_datasets},
            # the requester's own part, where the policy splits a dataset's budget
            **({"share_remaining": {name: str(v) for name, v in shares.items() if v is not None}}
               if any(v is not None for v in shares.values()) else {}),
            # each dataset's whole guarantee so far: conversion δ once + every selection δ
            "delta_total_spent": {name: str(conversion + state.ledger.delta_spent(name))
                                  for name in plan.charged_datasets}}
        result = pack_document("result", {
            "collaboration_id": state.policy.collaboration_id, "policy_hash": state.policy.hash,
            "query_id": query_id, "analysis": plan.analysis_id, "kind": plan.kind,
            "requested_by": plan.requested_by, "recipients": list(plan.recipients),
            "params": plan.public_params(), "simulated": self.simulated,
            "created_at": self._now(), "columns": release.columns, "rows": release.rows,
            "privacy": privacy, "audit_head": head.to_wire(),
        })
        signed = pack_document("signed", {"body": result,
                                          "signature": state.keys.sign(RESULT_LABEL, result)})
        encrypted = _encrypt_to_recipients(state, plan, query_id, signed)
        released: dict[str, Any] = {"query_id": query_id, "recipients": list(encrypted),
                                    "result_hash": hashlib.sha256(result).digest()}
        if plan.kind == "cohort_activation":
            assert isinstance(plan, QueryPlan)
            # Identifiers, not noisy statistics: the log says a non-DP release was made, and
            # from whose data the cohort was defined.
            released["differentially_private"] = False
            released["cohort_from"] = sorted({ref.dataset for ref, _ in plan.cohort})
            state.ledger.record_non_dp_release(released["cohort_from"])
        self._record("result_released", released)
        self._seal()
        return "query_result", {"query_id": query_id, "results": encrypted, "audit": self._publish()}


def _encrypt_to_recipients(state: CollaborationState, plan: QueryPlan | FreeformQuery, query_id: bytes,
                           signed: bytes) -> dict[str, bytes]:
    """The signed result encrypted (HPKE) to each recipient's result key, by recipient."""
    encrypted = {}
    for recipient in plan.recipients:
        party = state.policy.party(recipient)
        assert party is not None, "the policy parser checked every recipient"
        encrypted[recipient] = HPKE_SUITE.encrypt(
            signed, X25519PublicKey.from_public_bytes(party.result_key),
            info=result_hpke_info(state.policy.collaboration_id, query_id, recipient),
        )
    return encrypted
