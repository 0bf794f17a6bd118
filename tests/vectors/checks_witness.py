"""Checks of ``witness.json``: a free-form plan query under witness mode, on its own policy (the
request, the enclave's charge proposal, each owner's approval, the result and the budget).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.crypto import (
    APPROVAL_LABEL,
    BUDGET_LABEL,
    PROPOSAL_LABEL,
    QUERY_LABEL,
    RESULT_LABEL,
    upload_key_hpke_info,
)
from protocol.query_plan import check_plan, parse_plan
from tests.vectors.checks_common import (
    Vectors,
    check_decrypt_vector,
    check_signed_document,
    enclave_of,
    parsed_policy,
    party_of,
)
from tests.vectors.loader import h

__all__ = ["check_witness"]


def check_witness(v: Vectors) -> None:
    """A plan query under witness mode: what an integrator's client must produce and verify."""
    doc = v["witness"]
    policy = parsed_policy(doc["policy"]["text"])
    assert policy.hash.hex() == doc["policy"]["policy_hash"] and policy.privacy.witness == "owners"
    assert [(u["party"], u["dataset"]) for u in doc["uploads"]] == [
        (d.owner, d.name) for d in policy.datasets]
    for upload in doc["uploads"]:
        info = upload_key_hpke_info(policy.collaboration_id, policy.hash, upload["party"], upload["dataset"])
        check_decrypt_vector(upload["data_key_wrap"], enclave_of(v), info, h(upload["data_key"]))
    request = check_signed_document("query_request", doc["query_request"], QUERY_LABEL,
                                    party_of(v, "advertiser"))
    plan = parse_plan(request["plan"])
    check = check_plan(policy, plan, request["party"])
    assert (request["analysis"], request["params"]) == ("", {}) and isinstance(request["sql"], str)
    request_bytes = h(doc["query_request"]["bytes"])
    proposal = check_signed_document("charge_proposal", doc["proposal"], PROPOSAL_LABEL, enclave_of(v))
    assert proposal["query_id"] == hashlib.sha256(request_bytes).digest()
    assert proposal["request"] == request_bytes
    assert proposal["request_signature"] == h(doc["query_request"]["signature"])
    assert proposal["approvers"] == {"advertiser": ["witness"], "publisher": ["witness"]}
    assert (proposal["amount"], proposal["unit"], proposal["delta"]) == (str(check.cost), "epsilon", "0")
    assert proposal["datasets"] == sorted(policy.join)
    proposal_bytes = h(doc["proposal"]["bytes"])
    for party, signature in doc["approvals"].items():
        keys = party_of(v, party)
        seed = Ed25519PrivateKey.from_private_bytes(h(keys["ed25519_seed"]))
        assert seed.sign(APPROVAL_LABEL + proposal_bytes) == h(signature)
    result = check_signed_document("result", doc["result"], RESULT_LABEL, enclave_of(v))
    assert result["query_id"] == proposal["query_id"] and result["kind"] == "plan"
    assert result["params"] == {"plan": plan.to_wire(), "sql": request["sql"]}
    assert result["columns"] == ["campaign", "buyers", "revenue"]
    budget = check_signed_document("budget_status", doc["budget_status"], BUDGET_LABEL, enclave_of(v))
    assert {name: d["spent"] for name, d in budget["datasets"].items()} == {
        name: str(check.cost) for name in policy.join}
