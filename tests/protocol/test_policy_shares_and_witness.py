"""Policy options of issue 11: budget shares, witness mode, and the activation limits."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from protocol.errors import PolicyInvalid
from protocol.policy import parse_policy

EXAMPLE = (Path(__file__).resolve().parents[2] / "policies" / "advertiser-publisher.toml").read_text()
LIMIT = "max_identifiers = 100000"
SHARES = '[privacy.budget_shares.impressions]\nadvertiser = "2.5"\npublisher = "3.5"\n\n[privacy.budget]'


def _with(old: str, new: str) -> bytes:
    assert old in EXAMPLE
    return EXAMPLE.replace(old, new, 1).encode()


def test_defaults_are_one_pool_and_no_witness() -> None:
    policy = parse_policy(EXAMPLE.encode())
    assert policy.privacy.budget_shares == {} and policy.privacy.witness == "none"
    activation = policy.analysis("activate_converters")
    assert activation is not None and (activation.cohorts_from, activation.approval) == ("any", "none")


def test_budget_shares_and_witness_parse() -> None:
    raw = _with("[privacy.budget]", SHARES)
    raw = raw.replace(b'refresh = "none"', b'refresh = "none"\nwitness = "owners"', 1)
    privacy = parse_policy(raw).privacy
    assert privacy.budget_shares == {
        "impressions": {"advertiser": Fraction(5, 2), "publisher": Fraction(7, 2)}}
    assert privacy.witness == "owners"


@pytest.mark.parametrize(("shares", "field"), [
    ('advertiser = "3.5"\npublisher = "3.5"', "privacy.budget_shares.impressions: the shares add up"),
    ('stranger = "1"', "privacy.budget_shares.impressions.stranger: not a party"),
    ('advertiser = "0"', "privacy.budget_shares.impressions.advertiser"),
])
def test_bad_shares_name_the_field(shares: str, field: str) -> None:
    raw = _with("[privacy.budget]", f"[privacy.budget_shares.impressions]\n{shares}\n\n[privacy.budget]")
    with pytest.raises(PolicyInvalid) as refused:
        parse_policy(raw)
    assert refused.value.message.startswith(field)


def test_shares_of_an_unknown_dataset_are_refused() -> None:
    raw = _with("[privacy.budget]", '[privacy.budget_shares.nope]\nadvertiser = "1"\n\n[privacy.budget]')
    with pytest.raises(PolicyInvalid, match="budget_shares"):
        parse_policy(raw)


def test_unknown_witness_mode_is_refused() -> None:
    with pytest.raises(PolicyInvalid, match=r"privacy\.witness"):
        parse_policy(_with('refresh = "none"', 'refresh = "none"\nwitness = "sometimes"'))


def test_activation_limited_to_the_recipients_own_dimensions() -> None:
    # The example's activation cohorts use the publisher's dimensions: "recipient" refuses them.
    with pytest.raises(PolicyInvalid, match="cohorts_from = 'recipient' allows only dimensions"):
        parse_policy(_with(LIMIT, LIMIT + '\ncohorts_from = "recipient"'))
    policy = parse_policy(_with(LIMIT, LIMIT + '\napproval = "other_owners"'))
    activation = policy.analysis("activate_converters")
    assert activation is not None and activation.approval == "other_owners"
    with pytest.raises(PolicyInvalid, match="approval"):
        parse_policy(_with(LIMIT, LIMIT + '\napproval = "maybe"'))
