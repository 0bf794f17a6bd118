"""``witness.json``: a free-form plan query under witness mode, on its own policy (the fixed one
with ``witness = "owners"`` and both owners' rules): the uploads' HPKE wraps, the advertiser's
signed plan query, the enclave-signed charge proposal, each owner's approval, the result (its
noise seeded by the proposal, so reproducible) and the budget status after the charge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cleanroom.keys import PartyKeys
from enclave.state.keys import EnclaveKeys
from protocol.crypto import (
    APPROVAL_LABEL,
    BUDGET_LABEL,
    HPKE_SUITE,
    PROPOSAL_LABEL,
    QUERY_LABEL,
    RESULT_LABEL,
    result_hpke_info,
)
from protocol.policy import parse_policy
from protocol.wire import unpack_document
from tests.vectors.generate_documents import signed_document, signed_request
from tests.vectors.generate_enclave import VectorEnclave
from tests.vectors.generate_fixtures import CONVERSIONS, IMPRESSIONS, PARTIES
from tests.vectors.generate_upload import upload_vector

__all__ = ["PLAN", "PLAN_NONCE", "PLAN_SQL", "WITNESS_POLICY_EDITS", "witness_vectors"]

# The witness vectors' policy: the fixed one (POLICY_TEMPLATE), in witness mode, with both owners' rules.
WITNESS_POLICY_EDITS = (
    ('collaboration_id = "wire-test-vectors-v1"', 'collaboration_id = "wire-test-vectors-witness-v1"'),
    ('refresh = "none"', 'refresh = "none"\nwitness = "owners"'),
    ('max = "100"\n', 'max = "100"\n\n[datasets.rules]\nrequesters = ["advertiser"]\n'
                     'recipients = ["advertiser"]\ngroup_by = ["campaign"]\nfilter_by = ["campaign"]\n'
                     'join_with = ["conversions"]\nmin_persons = 1\nepsilon = "0.5"\n'),
    ('max = "500"\n', 'max = "500"\n\n[datasets.rules]\nrequesters = ["advertiser"]\n'
                     'recipients = ["advertiser"]\nmetrics = { value = ["sum"] }\nmin_persons = 1\n'
                     'epsilon = "0.5"\n'),
)
PLAN = {"v": 1, "datasets": ["impressions", "conversions"],
        "where": [{"column": "impressions.campaign", "op": "not_in", "values": ["autumn"]}],
        "group_by": ["impressions.campaign"],
        "select": [{"fn": "count_distinct", "arg": "person", "as": "buyers"},
                   {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
PLAN_SQL = ("SELECT i.campaign, COUNT(DISTINCT person) AS buyers, SUM(c.value) AS revenue "
            "FROM impressions i JOIN conversions c WHERE i.campaign <> 'autumn' GROUP BY i.campaign")
PLAN_NONCE = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")


def witness_vectors(policy_bytes: bytes, enclave: EnclaveKeys, parties: Mapping[str, PartyKeys],
                    uploads: Sequence[Mapping[str, Any]], existing: Mapping[str, Any]) -> dict[str, Any]:
    """A free-form plan query under witness mode: request, proposal, approvals, rows, budget."""
    text = policy_bytes.decode()
    for old, new in WITNESS_POLICY_EDITS:
        assert old in text
        text = text.replace(old, new, 1)
    witness_bytes = text.encode()
    policy = parse_policy(witness_bytes)
    node = VectorEnclave(witness_bytes, enclave)
    stored = {u.get("dataset"): u for u in existing.get("witness", {}).get("uploads", [])
              if isinstance(u, dict)}
    witness_uploads = []
    for upload in uploads:  # the same rows, uploaded again under this policy's hash
        dataset = policy.dataset(upload["dataset"])
        assert dataset is not None
        rows = IMPRESSIONS if dataset.name == "impressions" else CONVERSIONS
        witness_uploads.append(upload_vector(stored.get(dataset.name), parties[dataset.owner], policy,
                                             dataset, enclave, rows))
        node.upload(witness_uploads[-1])
    fields = {"party": "advertiser", "analysis": "", "params": {}, "nonce": PLAN_NONCE,
              "plan": PLAN, "sql": PLAN_SQL}
    request, signature = signed_request("query_request", fields, parties["advertiser"], QUERY_LABEL, policy)
    proposed = node.call("query", {"request": request, "signature": signature})[2]
    proposal = proposed["proposal"]
    approvals = {p: parties[p].sign(APPROVAL_LABEL, proposal) for p in PARTIES}
    answer = node.call("query", {"request": request, "signature": signature, "approvals": approvals})[2]
    sealed = answer["results"]["advertiser"]
    info = result_hpke_info(policy.collaboration_id, answer["query_id"], "advertiser")
    opened = HPKE_SUITE.decrypt(sealed, parties["advertiser"].result_key, info=info)
    result = unpack_document("signed", opened)
    budget = node.call("budget", {})[2]
    return {
        "description": "Witness mode and a free-form plan: the advertiser's signed plan query, the "
                       "enclave-signed charge_proposal (label charge-proposal), each owner's approval "
                       "(Ed25519 over APPROVAL_LABEL || proposal), the released rows (randomness "
                       "seeded by the proposal, so they are reproducible) and the budget_status.",
        "policy": {"text": text, "policy_hash": policy.hash.hex()},
        # Only what reproduces the uploads (their HPKE wraps); their layout is that of upload.json.
        "uploads": [{k: u[k] for k in ("party", "dataset", "data_key", "data_key_wrap")}
                    for u in witness_uploads],
        "query_request": signed_document("query_request", request, QUERY_LABEL, signature),
        "proposal": signed_document("charge_proposal", proposal, PROPOSAL_LABEL, proposed["signature"]),
        "approvals": {p: sig.hex() for p, sig in approvals.items()},
        "result": signed_document("result", result["body"], RESULT_LABEL, result["signature"]),
        "budget_status": signed_document("budget_status", budget["status"], BUDGET_LABEL,
                                         budget["signature"]),
    }
