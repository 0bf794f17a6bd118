"""The two example policies stay in step: the events one is the base one plus event times, with
the base one's named analyses written as SQL templates (all but activation, which releases
identifiers, not aggregates)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from protocol.policy import parse_policy
from protocol.query_plan import check_plan, parse_plan
from protocol.templates import instantiate

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_the_events_policy_is_the_base_policy_plus_times_and_an_arm() -> None:
    base = parse_policy((POLICIES / "advertiser-publisher.toml").read_bytes())
    events = parse_policy((POLICIES / "advertiser-publisher-events.toml").read_bytes())
    assert events.collaboration_id == base.collaboration_id + "-events"
    assert (events.parties, events.join, events.privacy) == (base.parties, base.join, base.privacy)
    assert events.analyses == tuple(a for a in base.analyses if a.kind == "cohort_activation")
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


def test_every_named_analysis_is_a_template_on_the_same_terms() -> None:
    """Nothing the named analyses offer is lost: same id, askers, recipients and charge, the same
    choice of cohorts (a GROUP BY parameter), private cohort keys where the analysis had them,
    and each choice passes the enclave's own check."""
    base = parse_policy((POLICIES / "advertiser-publisher.toml").read_bytes())
    events = parse_policy((POLICIES / "advertiser-publisher-events.toml").read_bytes())
    for analysis in base.analyses:
        if analysis.kind == "cohort_activation":
            continue
        template = events.template(analysis.id)
        assert template is not None, analysis.id
        assert (template.requesters, template.recipients, template.cost, template.cohort_keys) == (
            analysis.requesters, analysis.recipients, analysis.cost, analysis.cohort_keys)
        (choice,) = template.group_params.values()
        assert [str(c) for c in choice.columns] == [str(c) for c in analysis.group_by]
        assert choice.max == analysis.max_group_by
        for column in choice.columns:
            for requester in template.requesters:
                plan = parse_plan(instantiate(template, {"by": [str(column)]}))
                check_plan(events, plan, requester, template=template)
