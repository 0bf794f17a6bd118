"""Checks of ``template.json``: a query that names a policy template (WHERE and GROUP BY
parameters over a LEFT JOIN) on its own policy, the plan the enclave instantiates from it, the
enclave's signed result and its HPKE seal.
"""

from __future__ import annotations

import hashlib

from protocol.crypto import QUERY_LABEL, RESULT_LABEL, result_hpke_info, upload_key_hpke_info
from protocol.wire import canonical_packb
from tests.vectors.checks_common import Vectors, check_decrypt_vector, check_signed_document
from tests.vectors.loader import from_json, h

__all__ = ["check_template"]


def check_template(v: Vectors) -> None:
    from protocol.policy import parse_policy
    from protocol.query_plan import parse_plan
    from protocol.templates import instantiate

    doc = v["template"]
    policy = parse_policy(doc["policy"]["text"].encode())
    assert policy.hash.hex() == doc["policy"]["policy_hash"]
    assert doc["policy"]["text"].startswith(
        v["policy"]["text"].replace("wire-test-vectors-v1", "wire-test-vectors-template-v1")
    )
    assert [(u["party"], u["dataset"]) for u in doc["uploads"]] == [
        (d.owner, d.name) for d in policy.datasets
    ]
    for upload in doc["uploads"]:  # only what reproduces the uploads: their layout is upload.json's
        info = upload_key_hpke_info(policy.collaboration_id, policy.hash, upload["party"], upload["dataset"])
        check_decrypt_vector(upload["data_key_wrap"], v["keys"]["enclave"], info, h(upload["data_key"]))
    party = doc["query_request"]["signer"]
    signer = v["keys"]["parties"][party]
    request = check_signed_document("query_request", doc["query_request"], QUERY_LABEL, signer)
    template = policy.template(request["analysis"])
    assert template is not None and "plan" not in request and "sql" not in request
    plan = instantiate(template, request["params"])
    assert plan == from_json(doc["instantiated_plan"])
    result = check_signed_document("result", doc["result"], RESULT_LABEL, v["keys"]["enclave"])
    query_id = hashlib.sha256(h(doc["query_request"]["bytes"])).digest()
    assert result["query_id"] == query_id and result["analysis"] == template.id and result["kind"] == "plan"
    assert result["params"] == {
        "plan": parse_plan(plan).to_wire(),
        "sql": template.sql,
        "template_params": request["params"],
    }
    assert result["requested_by"] == party and result["recipients"] == list(template.recipients)
    sealed = doc["sealed"]
    signed = canonical_packb({"body": h(doc["result"]["bytes"]), "signature": h(doc["result"]["signature"])})
    info = result_hpke_info(policy.collaboration_id, query_id, sealed["recipient"])
    check_decrypt_vector(
        {k: x for k, x in sealed.items() if k != "recipient"},
        v["keys"]["parties"][sealed["recipient"]],
        info,
        signed,
    )
    assert sealed["recipient"] in result["recipients"]
