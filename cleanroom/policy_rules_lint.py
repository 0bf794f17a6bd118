"""``cleanroom policy lint`` for the datasets' analysis rules (``[datasets.rules]``).

Per dataset: who may ask and who receives, what a query may group by and filter on, which
aggregates each metric allows, the fewest persons per released row, the charge and how many such
queries the budget allows; then warnings for settings that make free-form queries riskier or
impossible. The checks a query must pass are ``protocol.query_plan.check_plan``'s; this module
only reads the policy, so what it says about a rule is what the enclave will enforce.

With ``cohort_keys = "private"`` a released row also needs τ noisy persons. τ depends on the
query (its cohorts and how many vectors share the charge), so the lint gives the smallest one,
from ``check_plan`` on the cheapest shape: COUNT(DISTINCT person) alone, grouped by one column;
more aggregates or more cohorts raise it.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import CleanroomError
from protocol.policy import DatasetRules, Policy

__all__ = ["render_rules", "rule_warnings", "rules_section"]


def _lowest_threshold(policy: Policy, rule: DatasetRules) -> int | None:
    """The smallest τ of a query touching a dataset with ``rule`` (see the module docstring):
    grouped by any dimension a joined dataset's rule allows. None if no such query passes."""
    from protocol.query_plan import check_plan, parse_plan

    taus = []
    for name in policy.join:
        dataset = policy.dataset(name)
        rules = dataset.rules if dataset is not None else None
        for column in rules.group_by if rules is not None else ():
            if dataset is None or dataset.dimension(column) is None:
                continue  # a timestamp groups by a bucket: no smaller τ than a dimension's
            plan = parse_plan({"v": 1, "datasets": list(policy.join), "where": [],
                               "group_by": [f"{name}.{column}"],
                               "select": [{"fn": "count_distinct", "arg": "person", "as": "persons"}]})
            for requester in rule.requesters:
                try:
                    tau = check_plan(policy, plan, requester).tau
                except CleanroomError:
                    continue
                if tau is not None:
                    taus.append(tau)
                break
    return min(taus, default=None)


def rules_section(policy: Policy) -> dict[str, Any]:
    """Each dataset's rule as JSON (``None`` for a dataset that allows no free-form query)."""
    privacy = policy.privacy
    out: dict[str, Any] = {}
    for dataset in policy.datasets:
        rule = dataset.rules
        if rule is None:
            out[dataset.name] = None
            continue
        budget = privacy.budget.get(dataset.name)
        out[dataset.name] = {
            "owner": dataset.owner,
            "requesters": list(rule.requesters), "recipients": list(rule.recipients),
            "group_by": list(rule.group_by), "filter_by": list(rule.filter_by),
            "count_rows": rule.count_rows,
            "metrics": {name: list(functions) for name, functions in rule.metrics.items()},
            "join_with": list(rule.join_with),
            "min_persons": rule.min_persons,
            # what a released row needs in fact: the policy's min_cohort_size applies as well
            "effective_min_persons": max(rule.min_persons, privacy.min_cohort_size),
            "max_group_by": rule.max_group_by, "max_aggregates": rule.max_aggregates,
            "cohort_keys": rule.cohort_keys,
            "lowest_threshold": (_lowest_threshold(policy, rule)
                                 if rule.cohort_keys == "private" else None),
            "charge_per_query": {privacy.unit: str(rule.cost)},
            "queries_until_exhausted": None if budget is None else int(budget // rule.cost),
        }
    return out


def rule_warnings(policy: Policy) -> list[str]:
    """Rule settings that are risky, contradict each other, or make free-form queries impossible."""
    privacy, out = policy.privacy, []
    ruled = {d.name: d.rules for d in policy.datasets if d.rules is not None}
    for name, rule in ruled.items():
        where = f"datasets.{name}.rules"
        if rule.min_persons < privacy.min_cohort_size:
            out.append(f"{where}.min_persons: {rule.min_persons} is below privacy.min_cohort_size "
                       f"{privacy.min_cohort_size}; rows need {privacy.min_cohort_size} noisy persons anyway")
        if not rule.join_with:
            out.append(f"{where}.join_with: empty: the owner does not say which datasets its rows may be "
                       "joined with (today every query joins the policy's two datasets; a policy with "
                       "more datasets would let any of them join this one)")
        if name not in policy.join:
            out.append(f"{where}: {name} is not one of the joined datasets {list(policy.join)}, so no "
                       "free-form query can touch it")
        budget = privacy.budget.get(name)
        if budget is not None and budget // rule.cost < 1:
            out.append(f"{where}.{privacy.unit}: one query costs more than the whole budget {budget}")
        dataset = policy.dataset(name)
        if not rule.group_by and dataset is not None and dataset.dimensions:
            out.append(f"{where}.group_by: empty: a query cannot group by {name}'s columns")
        if set(rule.filter_by) - set(rule.group_by):
            extra = sorted(set(rule.filter_by) - set(rule.group_by))
            out.append(f"{where}.filter_by: {', '.join(extra)} may be filtered on but not grouped by: a "
                       "filter that keeps one value is a cohort of it, so the two protect the same")
    missing = [name for name in policy.join if name not in ruled]
    if ruled and missing:
        out.append(f"datasets.{missing[0]}: has no rules, and every free-form query must join it: no "
                   "free-form query is possible until its owner adds [datasets.rules]")
    if len(ruled) == len(policy.join) and all(n in ruled for n in policy.join):
        # A requester every rule lets ask, to whom the combined rules would not send the result.
        requesters = set.intersection(*(set(ruled[n].requesters) for n in policy.join))
        recipients = set.intersection(*(set(ruled[n].recipients) for n in policy.join))
        for party in sorted(requesters - recipients):
            out.append(f"rules: party {party!r} may query every joined dataset, but the combined "
                       "recipients exclude it, so each of its queries would be refused")
        if not requesters:
            out.append("rules: no party may query all the joined datasets, so no free-form query is possible")
    return out


def render_rules(rules: dict[str, Any], unit: str) -> list[str]:
    """Text lines for ``rules_section``'s output."""
    if not any(rules.values()):
        return ["", "free-form queries: none (no dataset has [datasets.rules])"]
    lines = ["", "free-form query rules (docs/query-language.md):"]
    for name, rule in rules.items():
        if rule is None:
            lines.append(f"  {name}: no rules, no free-form query may touch it")
            continue
        metrics = ", ".join(f"{m} ({'/'.join(f)})" for m, f in rule["metrics"].items()) or "none"
        lines += [
            f"  {name} (owner {rule['owner']}): {unit} {rule['charge_per_query'][unit]} per query, "
            f"{rule['queries_until_exhausted']} queries until exhausted",
            f"    asked by {', '.join(rule['requesters'])}; results to {', '.join(rule['recipients'])}",
            f"    group by {', '.join(rule['group_by']) or 'nothing'} (at most {rule['max_group_by']}); "
            f"filter on {', '.join(rule['filter_by']) or 'nothing'}",
            f"    metrics {metrics}; COUNT of rows {'allowed' if rule['count_rows'] else 'not allowed'}; "
            f"at most {rule['max_aggregates']} aggregates",
            f"    joined with {', '.join(rule['join_with']) or '(not said)'}; min persons "
            f"{rule['min_persons']} (effective {rule['effective_min_persons']})",
        ]
        if rule.get("cohort_keys") == "private":
            tau = rule.get("lowest_threshold")
            lines.append("    cohort_keys = private: a row also needs its noisy persons to reach tau"
                         + (f" (at least {tau}: COUNT(DISTINCT person) alone by one column; more "
                            "aggregates or cohorts raise it)" if tau is not None else ""))
    return lines
