"""``template.json``: a query naming a policy template, on its own policy (the fixed one plus a
``[[templates]]`` entry with a WHERE and a GROUP BY parameter over a LEFT JOIN): the uploads'
HPKE wraps, the signed request, the plan the enclave instantiates, the signed result (its last
row, the unexposed, has nil group keys) and its HPKE seal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cleanroom.keys import PartyKeys
from enclave.state.keys import EnclaveKeys
from protocol.crypto import HPKE_SUITE, QUERY_LABEL, RESULT_LABEL, result_hpke_info
from protocol.policy import parse_policy
from protocol.templates import instantiate
from protocol.wire import unpack_document
from tests.vectors.generate_documents import decrypt_vector, signed_document, signed_request
from tests.vectors.generate_enclave import VectorEnclave
from tests.vectors.generate_fixtures import CONVERSIONS, IMPRESSIONS
from tests.vectors.generate_upload import upload_vector
from tests.vectors.loader import to_json

__all__ = [
    "TEMPLATE_PLAN",
    "TEMPLATE_POLICY_EDITS",
    "TEMPLATE_QUERY",
    "TEMPLATE_TOML",
    "template_vectors",
]

# The template vectors' policy: the fixed one (POLICY_TEMPLATE) with a template that has a WHERE
# parameter and a GROUP BY parameter, over a LEFT JOIN (its last row, the unexposed, has nil
# group keys).
TEMPLATE_POLICY_EDITS = (
    ('collaboration_id = "wire-test-vectors-v1"', 'collaboration_id = "wire-test-vectors-template-v1"'),
)
TEMPLATE_PLAN = (
    '{"v": 1, "datasets": ["conversions", "impressions"], "join": "left", '
    '"where": [{"column": "impressions.campaign", "op": "in", "values": {"param": "campaigns"}}], '
    '"group_by": [{"param": "by"}], '
    '"select": [{"fn": "count_distinct", "arg": "person", "as": "converters"}, '
    '{"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}'
)
TEMPLATE_TOML = "\n".join((
    "",
    "[[templates]]",
    'id = "converters_by_segment"',
    'description = "Converters and revenue per chosen grouping of the chosen campaigns, and the unexposed"',
    'requesters = ["advertiser"]',
    'recipients = ["advertiser"]',
    'epsilon = "0.5"',
    'sql = "SELECT :by, COUNT(DISTINCT person) AS converters, SUM(c.value) AS revenue FROM conversions c '
    'LEFT JOIN impressions i WHERE i.campaign IN (:campaigns) GROUP BY :by"',
    f"plan = '{TEMPLATE_PLAN}'",
    "",
    "[templates.params]",
    'campaigns = "impressions.campaign"',
    'by = { group_by = ["impressions.campaign"], max = 1 }',
    "",
))
TEMPLATE_QUERY = {"party": "advertiser", "analysis": "converters_by_segment",
                  "params": {"campaigns": ["spring", "summer"], "by": ["impressions.campaign"]},
                  "nonce": bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")}


def template_vectors(policy_bytes: bytes, enclave: EnclaveKeys, parties: Mapping[str, PartyKeys],
                     existing: Mapping[str, Any]) -> dict[str, Any]:
    """A query naming a policy template: its request, the plan the enclave makes of it, the result."""
    text = policy_bytes.decode()
    for old, new in TEMPLATE_POLICY_EDITS:
        assert old in text
        text = text.replace(old, new, 1)
    text += TEMPLATE_TOML
    template_bytes = text.encode()
    policy = parse_policy(template_bytes)
    node = VectorEnclave(template_bytes, enclave)
    stored = existing.get("template", {})
    stored_uploads = {u.get("dataset"): u for u in stored.get("uploads", []) if isinstance(u, dict)}
    uploads = []
    for dataset in policy.datasets:
        rows = IMPRESSIONS if dataset.name == "impressions" else CONVERSIONS
        uploads.append(upload_vector(stored_uploads.get(dataset.name), parties[dataset.owner], policy,
                                     dataset, enclave, rows))
        node.upload(uploads[-1])
    keys = parties[TEMPLATE_QUERY["party"]]
    request, signature = signed_request("query_request", TEMPLATE_QUERY, keys, QUERY_LABEL, policy)
    answer = node.call("query", {"request": request, "signature": signature})[2]
    template = policy.template(TEMPLATE_QUERY["analysis"])
    assert template is not None
    recipient = template.recipients[0]
    sealed = answer["results"][recipient]
    info = result_hpke_info(policy.collaboration_id, answer["query_id"], recipient)
    opened = HPKE_SUITE.decrypt(sealed, parties[recipient].result_key, info=info)
    result = unpack_document("signed", opened)
    return {
        "description": "A query naming a policy template (analysis = the template id, params = its "
                       "parameters' values): the plan the enclave instantiates from it, and the signed "
                       "result, whose last row (nil group keys) is the converters with no impression.",
        "policy": {"text": text, "policy_hash": policy.hash.hex()},
        "uploads": [{k: u[k] for k in ("party", "dataset", "data_key", "data_key_wrap")} for u in uploads],
        "query_request": {"signer": keys.party_id,
                          **signed_document("query_request", request, QUERY_LABEL, signature)},
        "instantiated_plan": to_json(instantiate(template, TEMPLATE_QUERY["params"])),
        "result": signed_document("result", result["body"], RESULT_LABEL, result["signature"]),
        "sealed": {"recipient": recipient, **decrypt_vector(
            stored.get("sealed"), sealed, parties[recipient].result_key, parties[recipient].result_public,
            info, opened)},
    }
