from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from protocol.errors import PolicyInvalid
from protocol.policy import parse_policy

EXAMPLE = (Path(__file__).resolve().parents[2] / "policies" / "advertiser-publisher.toml").read_bytes()


def test_example_policy_parses() -> None:
    policy = parse_policy(EXAMPLE)
    assert policy.join == ("impressions", "conversions")
    assert policy.dataset("conversions").metric("value").max == 50_000  # 500.00 in cents
    assert policy.analysis("conversions_by_segment").epsilon == Fraction(3, 5)
    assert policy.dataset("impressions").schema()[0] == ("id", "id")
    assert len(policy.hash) == 32


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('retention_days = 30', 'retention_days = 30\nsurprise = 1', "surprise"),
        ('min_cohort_size = 50', 'min_cohort_size = 50\nmin_cohort_sise = 5', "privacy.min_cohort_sise"),
        ('signing_key = "1288', 'signing_key = "zz88', "parties[0].signing_key"),
        ('owner = "advertiser"', 'owner = "nobody"', "datasets[1].owner"),
        ('max = "500"', 'max = "500.001"', "datasets[1].metrics[0].max"),
        ('epsilon = "0.6"', 'epsilon = "1.5"', "conversions_by_segment.epsilon"),
        ('epsilon = "0.6"', 'epsilon = "-1"', "analyses[1].epsilon"),
        ('metrics = ["conversions.value"]', 'metrics = ["conversions.nope"]', "analyses[1].metrics"),
        ('mode = "pure"', 'mode = "yolo"', "privacy.mode"),
        ('format = 1', 'format = 2', "format"),
        ('conversions = "6.0"', '', "privacy.budget.conversions"),
    ],
)
def test_invalid_policies_name_the_field(old: str, new: str, field: str) -> None:
    text = EXAMPLE.decode()
    assert old in text
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text.replace(old, new, 1).encode())
    assert field in info.value.message


def test_not_toml() -> None:
    with pytest.raises(PolicyInvalid):
        parse_policy(b"\xff\xfe")
    with pytest.raises(PolicyInvalid):
        parse_policy(b"[[[")


def test_example_policy_declares_all_five_analysis_kinds() -> None:
    policy = parse_policy(EXAMPLE)
    assert {a.kind for a in policy.analyses} == {"overlap", "aggregate", "reach_frequency", "attribution",
                                                 "cohort_activation"}
    privacy = policy.privacy
    assert privacy.mode == "pure" and privacy.unit == "epsilon" and privacy.delta == Fraction(1, 10**9)
    reach = policy.analysis("reach")
    assert (reach.events, reach.max_frequency, reach.cohort_keys) == ("impressions", 5, "private")
    assert policy.analysis("activate_converters").max_identifiers == 100_000
    assert policy.analysis("overlap").cost == Fraction(1, 5) and policy.analysis("overlap").rho is None


ZCDP = [('mode = "pure" ', 'mode = "zcdp" '), ('epsilon_per_query_max = "1.0"', 'rho_per_query_max = "0.05"'),
        ('epsilon = "0.2"', 'rho = "0.01"'), ('epsilon = "0.6"', 'rho = "0.03"'),
        ('epsilon = "0.4"', 'rho = "0.02"'), ('epsilon = "0.1"', 'rho = "0.005"'),
        ('impressions = "6.0"', 'impressions = "0.5"'), ('conversions = "6.0"', 'conversions = "0.5"')]


def _zcdp_text() -> str:
    text = EXAMPLE.decode()
    for old, new in ZCDP:
        assert old in text
        text = text.replace(old, new)
    return text


def test_zcdp_policy_parses() -> None:
    policy = parse_policy(_zcdp_text().encode())
    assert policy.privacy.mode == "zcdp" and policy.privacy.unit == "rho"
    assert policy.privacy.per_query_max == Fraction(1, 20) and policy.privacy.epsilon_per_query_max is None
    assert policy.analysis("conversions_by_segment").rho == Fraction(3, 100)
    assert policy.analysis("conversions_by_segment").epsilon is None
    assert policy.privacy.budget == {"impressions": Fraction(1, 2), "conversions": Fraction(1, 2)}


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('rho = "0.03"', 'epsilon = "0.03"', "analyses[1].epsilon"),
        ('rho = "0.03"', 'rho = "0.3"', "conversions_by_segment.rho"),
        ('rho_per_query_max = "0.05"', 'epsilon_per_query_max = "0.05"', "privacy.epsilon_per_query_max"),
        ('impressions = "0.5"', 'impressions = "2.5"', "privacy.budget.impressions"),
    ],
)
def test_invalid_zcdp_policies_name_the_field(old: str, new: str, field: str) -> None:
    text = _zcdp_text()
    assert old in text
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text.replace(old, new, 1).encode())
    assert field in info.value.message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('epsilon = "0.2"', 'rho = "0.2"', "analyses[0].rho"),
        ('delta = "1e-9"', 'delta = "0.01"', "privacy.delta"),
        ('delta = "1e-9"', 'delta = "0"', "privacy.delta"),
        ('refresh = "none"', 'refresh = "monthly"', "privacy.refresh"),
        ('impressions = "6.0"', 'impressions = "25"', "privacy.budget.impressions"),
        ('max_frequency = 5', 'max_frequency = 9', "analyses[2].max_frequency"),
        ('events = "impressions"', 'events = "nope"', "analyses[2].events"),
        ('cohort_keys = "private"', 'cohort_keys = "secret"', "analyses[2].cohort_keys"),
        ('metrics = ["conversions.value"]       #', 'metrics = []       #', "analyses[3]"),
        ('recipients = ["advertiser"]    #', 'recipients = ["advertiser", "publisher"]    #',
         "analyses[4].recipients"),
        ('release_own_identifiers = true', 'release_own_identifiers = false',
         "analyses[4].release_own_identifiers"),
        ('max_identifiers = 100000', 'max_identifiers = 100001', "analyses[4].max_identifiers"),
        ('max_identifiers = 100000', 'max_identifiers = 10\ncohort_keys = "private"',
         "analyses[4].cohort_keys"),
        ('max_frequency = 5', 'max_frequency = 5\nrelease_own_identifiers = true',
         "analyses[2].release_own_identifiers"),
    ],
)
def test_invalid_privacy_fields_name_the_field(old: str, new: str, field: str) -> None:
    text = EXAMPLE.decode()
    assert old in text
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text.replace(old, new, 1).encode())
    assert field in info.value.message


def test_attribution_needs_exposures_and_converters_from_different_datasets() -> None:
    exposures = 'group_by = ["impressions.campaign"]   # exposure cohorts'
    text = EXAMPLE.decode().replace(exposures, 'group_by = []')
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text.encode())
    assert "analyses[3]" in info.value.message
