"""Policy templates: a plan every party approved, with parameters, run on its own terms."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from cleanroom.result_open import open_result
from protocol.crypto import QUERY_LABEL
from protocol.errors import PolicyInvalid, PolicyViolation, ProtocolError
from protocol.policy import parse_policy
from protocol.wire import pack_document
from tests.conftest import EXAMPLE_POLICY, bind_policy
from tests.enclave.test_analyses import _loaded
from tests.support.enclave_harness import EnclaveHarness

TEMPLATE = '''
[[templates]]
id = "users_by_campaign_in_regions"
description = "Matched people per campaign, for the regions asked"
requesters = ["advertiser"]
recipients = ["advertiser", "publisher"]
epsilon = "0.3"
sql = """SELECT i.campaign, COUNT(DISTINCT person) AS users
FROM impressions i JOIN conversions c WHERE i.region IN (:regions) GROUP BY i.campaign"""
plan = \'\'\'{"v": 1, "datasets": ["impressions", "conversions"],
  "where": [{"column": "impressions.region", "op": "in", "values": {"param": "regions"}}],
  "group_by": ["impressions.campaign"],
  "select": [{"fn": "count_distinct", "arg": "person", "as": "users"}]}\'\'\'
[templates.params]
regions = "impressions.region"
'''


def _policy_text(template: str = TEMPLATE) -> str:
    return EXAMPLE_POLICY.read_text() + template


@pytest.fixture(scope="module")
def enclave(parties: Any) -> EnclaveHarness:
    return _loaded(parties, bind_policy(parties, _policy_text()))


def _ask(enclave: EnclaveHarness, keys: Any, analysis: str, params: dict[str, Any],
         plan: dict[str, Any] | None = None) -> Any:
    request = pack_document("query_request", {
        "collaboration_id": enclave.policy.collaboration_id, "policy_hash": enclave.policy.hash,
        "party": keys.party_id, "analysis": analysis, "params": params, "nonce": os.urandom(16),
        "issued_at": int(time.time()), **({"plan": plan} if plan else {})})
    reply = enclave.call("query", {"request": request, "signature": keys.sign(QUERY_LABEL, request)})
    return open_result(reply["results"][keys.party_id], keys=keys, policy=enclave.policy,
                       sig_pub=enclave.ready["sig_pub"], query_id=reply["query_id"])


def test_a_template_runs_its_plan_with_the_values_asked(enclave: EnclaveHarness, parties: Any) -> None:
    result = _ask(enclave, parties["advertiser"], "users_by_campaign_in_regions",
                  {"regions": ["north", "south"]})
    same = _ask(enclave, parties["advertiser"], "", {}, plan={
        "v": 1, "datasets": ["impressions", "conversions"],
        "where": [{"column": "impressions.region", "op": "in", "values": ["north", "south"]}],
        "group_by": ["impressions.campaign"],
        "select": [{"fn": "count_distinct", "arg": "person", "as": "users"}]})
    assert result.body["rows"] == same.body["rows"] and result.body["rows"]  # no noise in this module
    assert result.body["analysis"] == "users_by_campaign_in_regions"
    assert sorted(result.body["recipients"]) == ["advertiser", "publisher"]
    assert result.body["params"]["template_params"] == {"regions": ["north", "south"]}
    assert result.body["privacy"]["epsilon_charged"] == "3/10"  # the template's charge, not the rules'


@pytest.mark.parametrize(("party", "params", "error", "message"), [
    ("publisher", {"regions": ["north"]}, PolicyViolation, "may not query"),
    ("advertiser", {"regions": ["mars"]}, PolicyViolation, "'mars' is not a declared value"),
    ("advertiser", {"regions": "north"}, ProtocolError, "takes a list"),
    ("advertiser", {}, ProtocolError, "params must be exactly"),
])
def test_template_requests_outside_its_terms_are_refused(enclave: EnclaveHarness, parties: Any, party: str,
                                                         params: dict[str, Any], error: type,
                                                         message: str) -> None:
    with pytest.raises(error, match=message):
        _ask(enclave, parties[party], "users_by_campaign_in_regions", params)


@pytest.mark.parametrize(("old", "new", "message"), [
    ('"impressions.region", "op": "in", "values": {"param": "regions"}',
     '"impressions.nope", "op": "in", "values": {"param": "regions"}',
     "templates.users_by_campaign_in_regions.plan"),
    ('regions = "impressions.region"', 'regions = "impressions.campaign"', "not of that column"),
    ('epsilon = "0.3"', 'epsilon = "3"', "exceeds privacy.epsilon_per_query_max"),
    ("plan = '''{", "plan = '''[", "not valid JSON"),
])
def test_a_broken_template_is_a_broken_policy(old: str, new: str, message: str) -> None:
    assert old in TEMPLATE
    with pytest.raises(PolicyInvalid, match=message):
        parse_policy(_policy_text(TEMPLATE.replace(old, new)).encode())
