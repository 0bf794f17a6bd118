"""``cleanroom query --sql ... --explain``: what a query would release and cost, sending nothing.

Everything comes from the plan, the policy and the enclave's own arithmetic
(``protocol.query_plan.check_plan`` for the statistics and their sensitivities,
``protocol.privacy.accounting.calibrate`` for the exact noise parameters), as
``cleanroom policy lint`` does for the named analyses. Standard deviations are floats, for people.

It says what is easy to misread: a LEFT JOIN's extra cohort (the kept dataset's persons with no
row in the other, released last with nil group keys) and why it raises every vector's cells per
person by one; each vector's sensitivity; and, with private cohort keys, the threshold τ a row's
noisy persons must also reach, and the δ the query is charged for it.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

from cleanroom.policy_lint import _noise_std
from cleanroom.sql import CompiledQuery
from protocol.policy import Policy
from protocol.privacy.accounting import calibrate

__all__ = ["explain", "render_explain"]


def _rule_lines(policy: Policy, query: CompiledQuery, name: str) -> list[str]:
    """Each clause of the dataset's rule the query meets, said against the query."""
    rule = policy.dataset(name).rules  # type: ignore[union-attr]  # check_plan passed: it exists
    assert rule is not None
    plan, unit = query.plan, policy.privacy.unit
    lines = [f"requesters {list(rule.requesters)}: {query.check.requester} may query {name}",
             f"recipients {list(rule.recipients)}"]
    if rule.join_with:
        lines.append(f"join_with {list(rule.join_with)}: joined")
    for p in plan.where:
        if p.column.dataset == name:
            lines.append(f"filter_by {list(rule.filter_by)}: WHERE {p.column} {p.op} {list(p.values)}")
    own = [str(key.column) if key.trunc is None else f"DATE_TRUNC('{key.trunc}', {key.column})"
           for key in plan.group_by if key.column.dataset == name]
    if own:
        lines.append(f"group_by {list(rule.group_by)}: GROUP BY {', '.join(own)} "
                     f"({len(plan.group_by)} of max_group_by {rule.max_group_by})")
    for a in plan.select:
        if a.fn == "count" and a.arg == name:
            lines.append(f"count_rows {str(rule.count_rows).lower()}: {a.alias} = COUNT of {name} rows")
        elif a.fn in ("sum", "avg") and a.arg.split(".")[0] == name:
            metric = a.arg.split(".")[1]
            lines.append(f"metrics.{metric} {list(rule.metrics.get(metric, ()))}: "
                         f"{a.alias} = {a.fn.upper()}({a.arg})")
    if plan.left_join and name == plan.datasets[0]:
        lines.append(f"count_rows {str(rule.count_rows).lower()}: LEFT JOIN counts every person of {name}")
    if rule.cohort_keys == "private":
        lines.append(f"cohort_keys private: a row also needs tau = {query.check.tau} noisy persons")
    window = plan.window
    if window is not None and name in (window.start.dataset, window.end.dataset):
        lines.append(f"max_window_days {rule.max_window_days}: {window.max_days}-day window "
                     f"{window.start} -> {window.end} ({window.model.replace('_', ' ')})")
    lines += [f"max_aggregates {rule.max_aggregates}: {len(plan.select)} aggregates",
              f"min_persons {rule.min_persons}", f"{unit} {rule.cost} per query"]
    return lines


def _column_entries(policy: Policy, query: CompiledQuery, stds: dict[str, float]) -> list[dict[str, Any]]:
    """Each output column, the released vector behind it and its noise standard deviation."""
    out: list[dict[str, Any]] = [{"column": key.alias, "kind": "label", "statistic": None,
                                  "noise_std": None, "unit": None} for key in query.plan.group_by]

    def scale_of(arg: str) -> int:
        dataset, _, metric = arg.partition(".")
        return policy.dataset(dataset).metric(metric).scale  # type: ignore[union-attr]

    for a in query.plan.select:
        if a.fn == "count_distinct":  # matched persons, or (arg "d.person") all of d's persons
            stat = "persons" if a.arg == "person" else f"persons:{a.arg.split('.')[0]}"
            out.append({"column": a.alias, "kind": "persons", "statistic": stat,
                        "noise_std": stds[stat], "unit": "persons" if a.arg == "person"
                        else f"persons of {a.arg.split('.')[0]}"})
        elif a.fn == "count":
            stat = f"count:{a.arg}"
            out.append({"column": a.alias, "kind": "count", "statistic": stat,
                        "noise_std": stds[stat], "unit": f"rows of {a.arg}"})
        elif a.fn == "sum":
            stat = f"sum:{a.arg}"
            out.append({"column": a.alias, "kind": "sum", "statistic": stat,
                        "noise_std": stds[stat] / 10 ** scale_of(a.arg), "unit": a.arg})
        else:
            # AVG = noisy sum / noisy count: to first order its std is √(σ_s² + avg²·σ_c²) / count.
            # Every person of a cohort has at least one row of the metric's dataset in it, so
            # count ≥ persons ≥ min_persons in a released row; the figure takes that count and the
            # largest |avg| the clamp allows, a bound on the first-order std.
            dataset, _, name = a.arg.partition(".")
            metric = policy.dataset(dataset).metric(name)  # type: ignore[union-attr]
            assert metric is not None
            clamp = max(abs(metric.min), abs(metric.max))
            sigma_s, sigma_c = stds[f"sum:{a.arg}"], stds[f"count:{dataset}"]
            bound = math.sqrt(sigma_s**2 + (clamp * sigma_c) ** 2) / query.check.min_persons
            # A LEFT JOIN's persons without a row of the other dataset leave its count unbounded
            # below by persons (0 in the nil row): no figure rather than a wrong one.
            unbounded = query.plan.left_join and dataset == query.plan.datasets[1]
            out.append({"column": a.alias, "kind": "avg", "statistic": f"sum:{a.arg} / count:{dataset}",
                        "noise_std": None,
                        "noise_std_at_min_persons": None if unbounded else bound / 10**metric.scale,
                        "unit": a.arg})
    if "persons" in query.columns and not query.plan.selects_gate:
        out.append({"column": "persons", "kind": "persons", "statistic": "persons",
                    "noise_std": stds["persons"], "unit": "persons"})
    return out


def explain(query: CompiledQuery, policy: Policy) -> dict[str, Any]:
    """The plan, the rules it passes, the charge per dataset and each output column's noise."""
    privacy, check = policy.privacy, query.check
    calibrated = calibrate(list(check.statistics), privacy.mode, check.cost)
    stds = {c.statistic.name: _noise_std(c.mechanism, c.scale) for c in calibrated}
    charge = {}
    for name in query.plan.datasets:
        total = privacy.budget.get(name)
        charge[name] = {privacy.unit: str(check.cost),
                        "budget": None if total is None else str(total),
                        "queries_until_exhausted": None if total is None else int(total // check.cost)}
    return {
        "sql": query.sql, "plan": query.wire, "columns": query.columns,
        "requester": check.requester, "recipients": list(check.recipients),
        "cohort_dataset": check.group_dataset, "rows": check.n_cohorts,
        "join": query.plan.join, "nil_row": _nil_row(query),
        "min_persons": check.min_persons, "mode": privacy.mode, "budget_unit": privacy.unit,
        "cohort_keys": "private" if check.tau is not None else "public", "threshold": check.tau,
        "delta": str(check.delta),
        "contribution_bounds": {"max_cohorts_per_user": privacy.max_cohorts_per_user,
                                "max_rows_per_user": privacy.max_rows_per_user},
        "rules": {name: _rule_lines(policy, query, name) for name in query.plan.datasets},
        "charge": charge,
        "statistics": [{"statistic": c.statistic.name, "cells": c.statistic.length,
                        "cells_per_person": c.statistic.cells_per_unit, "per_cell": c.statistic.per_cell,
                        privacy.unit: str(c.share), "noise": c.mechanism,
                        "noise_scale" if privacy.mode == "pure" else "noise_sigma2": str(c.scale),
                        "noise_std": stds[c.statistic.name]} for c in calibrated],
        "output": _column_entries(policy, query, stds),
    }


def _nil_row(query: CompiledQuery) -> str | None:
    """What a LEFT JOIN's extra cohort is, for people (None for an inner join)."""
    plan = query.plan
    if not plan.left_join:
        return None
    kept, other = plan.datasets
    if not plan.group_by:
        return f"the one row counts every person of {kept}, with or without a row of {other}"
    return (f"the last row, every group key nil (null in JSON, (none) in tables), is the persons of "
            f"{kept} with no {other} row passing the WHERE; removing a person's {other} rows moves "
            "it from its cohorts into that row, so each vector has one more cell per person")


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _statistic_lines(report: dict[str, Any]) -> list[str]:
    unit = report["budget_unit"]
    lines = ["", "released vectors (what one person can change; the noise is calibrated to it):"]
    for s in report["statistics"]:
        scale = s.get("noise_scale", s.get("noise_sigma2"))
        lines.append(f"  {s['statistic']:<24} {s['cells']} cells, a person in at most "
                     f"{s['cells_per_person']}, by at most {s['per_cell']} each; {unit} "
                     f"{float(Fraction(s[unit])):.4g}, {s['noise']} "
                     f"{'scale' if 'noise_scale' in s else 'sigma^2'} {float(Fraction(scale)):.4g}")
    return lines


def render_explain(report: dict[str, Any], as_json: bool = False) -> str:
    """``report`` as JSON, or as text for people (the plan itself is always JSON)."""
    if as_json:
        return json.dumps(report, indent=2)
    unit = report["budget_unit"]
    lines = ["plan:", json.dumps(report["plan"], indent=2), "",
             f"columns: {', '.join(report['columns'])}",
             f"rows: {report['rows']} (every combination of declared values"
             + (", and the LEFT JOIN's nil row" if report["nil_row"] and report["plan"]["group_by"] else "")
             + f"; a row is released when "
             f"its noisy persons reach {report['min_persons']}"
             + (f" and tau = {report['threshold']} (private cohort keys; the query is also charged "
                f"delta {float(Fraction(report['delta'])):.3g})" if report["threshold"] is not None
                else "") + ")"]
    if report["nil_row"] is not None:
        lines.append(f"LEFT JOIN: {report['nil_row']}")
    lines += [f"recipients: {', '.join(report['recipients'])}", "", "rules passed:"]
    for name, rule_lines in report["rules"].items():
        lines.append(f"  {name}:")
        lines += [f"    {line}" for line in rule_lines]
    lines += ["", "charge (nothing is spent by --explain):"]
    for name, c in report["charge"].items():
        left = (f", {c['queries_until_exhausted']} such queries use up its total budget {c['budget']}"
                if c["budget"] is not None else "")
        lines.append(f"  {name}: {unit} {c[unit]} ({float(Fraction(c[unit])):.4g}){left}")
    lines += _statistic_lines(report)
    lines += ["", "noise per output column (standard deviation):"]
    for col in report["output"]:
        if col["kind"] == "label":
            lines.append(f"  {col['column']:<16} label, no noise")
        elif col["kind"] == "avg" and col["noise_std_at_min_persons"] is None:
            lines.append(f"  {col['column']:<16} {col['statistic']}: no bound (the nil row has none "
                         "of its rows)")
        elif col["kind"] == "avg":
            lines.append(f"  {col['column']:<16} {col['statistic']}: std at most about "
                         f"{_g(col['noise_std_at_min_persons'])} ({col['unit']}) at min_persons, "
                         "smaller for larger cohorts")
        else:
            lines.append(f"  {col['column']:<16} {col['statistic']}: "
                         f"std {_g(col['noise_std'])} ({col['unit']})")
    return "\n".join(lines)
