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
