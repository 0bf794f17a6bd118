"""A template's GROUP BY parameter (the named analyses' choice of cohorts) and private cohort keys."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.errors import PolicyInvalid, PolicyViolation, ProtocolError
from protocol.policy import parse_policy
from protocol.privacy.accounting import calibrate
from protocol.privacy.threshold import release_threshold
from protocol.query_plan import check_plan, parse_plan
from protocol.templates import instantiate
from tests.conftest import EXAMPLE_POLICY, bind_policy
from tests.enclave.test_analyses import _loaded
from tests.enclave.test_templates import _ask
from tests.support.enclave_harness import EnclaveHarness

SEGMENTS = '''
[[templates]]
id = "users_by_segment"
requesters = ["advertiser", "publisher"]
recipients = ["advertiser", "publisher"]
epsilon = "0.3"
cohort_keys = "private"
sql = """SELECT :by, COUNT(DISTINCT person) AS users FROM impressions i JOIN conversions c
GROUP BY :by"""
plan = \'\'\'{"v": 1, "datasets": ["impressions", "conversions"], "group_by": [{"param": "by"}],
  "select": [{"fn": "count_distinct", "arg": "person", "as": "users"}]}\'\'\'
[templates.params]
by = { group_by = ["impressions.campaign", "impressions.region", "impressions.age_band"], max = 2 }
'''


def _policy_text(template: str = SEGMENTS) -> str:
    return EXAMPLE_POLICY.read_text() + template


@pytest.fixture(scope="module")
def enclave(parties: Any) -> EnclaveHarness:
    return _loaded(parties, bind_policy(parties, _policy_text()))


def test_the_request_chooses_the_group_by_columns(enclave: EnclaveHarness, parties: Any) -> None:
    by_two = _ask(enclave, parties["advertiser"], "users_by_segment",
                  {"by": ["impressions.region", "impressions.campaign"]})
    assert by_two.body["columns"] == ["region", "campaign", "users"]  # in the order asked
    assert by_two.body["params"]["plan"]["group_by"] == ["impressions.region", "impressions.campaign"]
    everyone = _ask(enclave, parties["publisher"], "users_by_segment", {"by": []})
    assert everyone.body["columns"] == ["users"] and len(everyone.body["rows"]) == 1


def test_private_cohort_keys_release_only_past_tau_and_charge_delta(enclave: EnclaveHarness,
                                                                     parties: Any) -> None:
    result = _ask(enclave, parties["advertiser"], "users_by_segment", {"by": ["impressions.campaign"]})
    privacy = result.body["privacy"]
    policy = enclave.policy
    template = policy.template("users_by_segment")
    assert template is not None
    check = check_plan(policy, parse_plan(instantiate(template, {"by": ["impressions.campaign"]})),
                       "advertiser", template=template)
    persons = calibrate(list(check.statistics), policy.privacy.mode, check.cost)[0]
    tau = release_threshold(persons.mechanism, persons.scale, 4, policy.privacy.delta)  # L0 = 4 keys
    assert privacy["cohort_keys"] == "private" and privacy["threshold"] == tau > 50
    assert privacy["delta_charged"] == str(policy.privacy.delta)
    assert all(row[1] >= tau for row in result.body["rows"])  # no noise in this module: exact counts


@pytest.mark.parametrize(("params", "error", "message"), [
    ({"by": ["impressions.campaign", "impressions.region", "impressions.age_band"]}, PolicyViolation,
     "at most 2 distinct"),
    ({"by": ["conversions.value"]}, PolicyViolation, "at most 2 distinct"),
    ({"by": ["impressions.region", "impressions.region"]}, PolicyViolation, "distinct"),
    ({"by": "impressions.region"}, PolicyViolation, "at most 2"),
    ({}, ProtocolError, "params must be exactly"),
])
def test_choices_outside_the_list_are_refused(enclave: EnclaveHarness, parties: Any, params: dict,
                                              error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _ask(enclave, parties["advertiser"], "users_by_segment", params)


@pytest.mark.parametrize(("old", "new", "message"), [
    ('"impressions.age_band"], max = 2', '"impressions.nope"], max = 2', "not a dimension"),
    ("max = 2", "max = 4", "between 1 and 3"),
    ('"impressions.campaign", "impressions.region"', '"impressions.campaign", "impressions.campaign"',
     "duplicate entries"),
    ('cohort_keys = "private"', 'cohort_keys = "secret"', "cohort_keys: must be one of"),
    ('{"param": "by"}', '{"param": "other"}', "not a GROUP BY parameter"),
])
def test_a_broken_group_parameter_is_a_broken_policy(old: str, new: str, message: str) -> None:
    assert old in SEGMENTS
    with pytest.raises(PolicyInvalid, match=message):
        parse_policy(_policy_text(SEGMENTS.replace(old, new)).encode())
