"""The two example policies stay in step: the events one is the base one plus event times."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from protocol.policy import parse_policy

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_the_events_policy_is_the_base_policy_plus_times_and_an_arm() -> None:
    base = parse_policy((POLICIES / "advertiser-publisher.toml").read_bytes())
    events = parse_policy((POLICIES / "advertiser-publisher-events.toml").read_bytes())
    assert events.collaboration_id == base.collaboration_id + "-events"
    assert (events.parties, events.join, events.privacy, events.analyses) == (
        base.parties, base.join, base.privacy, base.analyses)
    for dataset in base.datasets:
        other = events.dataset(dataset.name)
        assert other is not None and [t.name for t in other.timestamps] == ["ts"]
        extra = [d for d in other.dimensions if base.dataset(dataset.name).dimension(d.name) is None]
        assert [d.name for d in extra] == (["arm"] if dataset.name == "impressions" else [])
        assert other.rules is not None and dataset.rules is not None
        same_rules = replace(other.rules, group_by=dataset.rules.group_by, filter_by=dataset.rules.filter_by,
                             max_window_days=dataset.rules.max_window_days)
        assert same_rules == dataset.rules
        assert replace(other, dimensions=dataset.dimensions, timestamps=(), rules=dataset.rules) == dataset
