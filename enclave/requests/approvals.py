"""Queries that need a co-signature before they run: witnessed charges and approved activations.

The design and its guarantee are in docs/witness.md. In short:

* With ``privacy.witness = "owners"`` every charge to a dataset must be co-signed by the
  dataset's owner. The enclave cannot know whether the host rolled its sealed state back (the
  encrypted mount has no rollback protection and SGX offers no usable monotonic counter), but
  an owner's witness never forgets: it signs only proposals whose ``prev_head`` extends the last
  head it signed and keeps its own tally of what it approved against the budget. A rolled-back
  enclave proposes a head the witness has already moved past, and the witness refuses.
* An activation analysis with ``approval = "other_owners"`` needs every other joined dataset's
  owner to co-sign each activation before it runs.

A proposal binds the query (its signed request), the charge and the audit head it extends, which
through the hash chain fixes every upload and deletion before it. The enclave recomputes the
proposal when the approvals arrive; an approval of any other proposal (stale or forged) is not
an approval, and the caller is sent the current proposal to sign instead.

An approved query draws all its randomness (noise, bounding keys, activation order) from a
stream seeded by HMAC(release-seed key, proposal): replaying the same proposal after a rollback
gives the same answer and so reveals nothing new, and any other proposal (a new head, another
query) gets independent randomness.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from enclave.engine.noise_source import SeededNoise, SeededRandomness
from enclave.requests.authorization import FreeformQuery, QueryPlan
from enclave.requests.session_state import CollaborationState
from protocol.crypto import APPROVAL_LABEL
from protocol.policy import Policy
from protocol.wire import pack_document

__all__ = ["approved", "charge_proposal", "required_approvers", "seeded_randomness"]

_SEED_LABEL = b"cleanroom/v1/release-seed\x00"


def required_approvers(policy: Policy, plan: QueryPlan | FreeformQuery) -> dict[str, list[str]]:
    """party -> why its co-signature is needed ("witness", "activation"); empty: none is."""
    approvers: dict[str, list[str]] = {}
    if policy.privacy.witness == "owners":
        for name in plan.charged_datasets:
            dataset = policy.dataset(name)
            assert dataset is not None, "the policy parser checked the joined datasets"
            approvers.setdefault(dataset.owner, []).append("witness")
    if plan.approval == "other_owners":
        recipient = plan.recipients[0]
        for name in policy.join:
            dataset = policy.dataset(name)
            assert dataset is not None
            if dataset.owner != recipient and "activation" not in approvers.get(dataset.owner, []):
                approvers.setdefault(dataset.owner, []).append("activation")
    return {party: sorted(reasons) for party, reasons in sorted(approvers.items())}


def charge_proposal(state: CollaborationState, plan: QueryPlan | FreeformQuery, query_id: bytes,
                    request: bytes,
                    request_signature: bytes, approvers: dict[str, list[str]]) -> bytes:
    """The canonical proposal for this query on the current audit head (deterministic)."""
    return pack_document("charge_proposal", {
        "collaboration_id": state.policy.collaboration_id, "policy_hash": state.policy.hash,
        "query_id": query_id, "request": request, "request_signature": request_signature,
        "requested_by": plan.requested_by, "datasets": list(plan.charged_datasets),
        "unit": state.policy.privacy.unit, "amount": str(plan.cost), "delta": str(plan.delta),
        "prev_head": state.audit.head.to_wire(), "approvers": approvers,
    })


def approved(policy: Policy, proposal: bytes, approvals: dict[str, Any],
             approvers: dict[str, list[str]]) -> bool:
    """True if every approver has signed exactly ``proposal``."""
    for party_id in approvers:
        party = policy.party(party_id)
        signature = approvals.get(party_id)
        if party is None or not isinstance(signature, bytes) or len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(party.signing_key).verify(signature, APPROVAL_LABEL + proposal)
        except InvalidSignature:
            return False
    return True


def seeded_randomness(release_seed: bytes, proposal: bytes) -> tuple[SeededNoise, SeededRandomness]:
    """The noise source and byte stream of one approved proposal (see the module docstring)."""
    seed = hmac.new(release_seed, _SEED_LABEL + hashlib.sha256(proposal).digest(), "sha256").digest()
    randomness = SeededRandomness(seed)
    return SeededNoise(randomness), randomness
