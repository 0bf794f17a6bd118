"""The query plan: what an analyst's SQL compiles to, how it is checked, and what it costs.

The party's client parses SQL (``cleanroom/sql/``) into this plan and signs it; integrators may
send plans directly. The enclave parses it again here, checks it against every touched dataset's
rule before reading any data, and derives each released vector's sensitivity from the plan and
the policy's contribution bounds alone, so the party's ``--explain`` runs the same arithmetic.
Format and semantics: docs/query-language.md.

Plan v1 (a msgpack map; field order does not matter, the request's canonical encoding fixes it)::

    {"v": 1,
     "datasets": ["impressions", "conversions"],               # joined on the person
     "where": [{"column": "impressions.region", "op": "in", "values": ["north"]}],
     "group_by": ["impressions.campaign",                      # dimensions, or time buckets
                  {"column": "conversions.ts", "trunc": "week", "as": "week"}],
     "window": {"from": "impressions.ts", "to": "conversions.ts",   # optional: attribution
                "max_days": 7, "model": "last_touch"},
     "select": [{"fn": "count_distinct", "arg": "person", "as": "users"},
                {"fn": "count", "arg": "conversions", "as": "conversions"},
                {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocol.errors import ProtocolError
from protocol.errors import clause_denied as _deny
from protocol.plan_window import (
    LAG,
    attribution_key_layout,
    check_window,
    declared_values,
    key_size,
    timestamp_of,
)
from protocol.policy import ColumnRef, DatasetRules, Policy
from protocol.policy_model import Template
from protocol.privacy.accounting import Statistic, calibrate
from protocol.privacy.plan_statistics import plan_statistics
from protocol.privacy.threshold import release_threshold
from protocol.templates import template_rules
from protocol.time_buckets import TRUNCS

__all__ = [
    "LAG",
    "MAX_PLAN_CELLS",
    "MODELS",
    "PLAN_VERSION",
    "Aggregate",
    "GroupKey",
    "Plan",
    "PlanCheck",
    "Predicate",
    "Window",
    "attribution_key_layout",
    "check_plan",
    "parse_plan",
]

PLAN_VERSION = 1
MAX_PLAN_CELLS = 100_000
FUNCTIONS = ("count_distinct", "count", "sum", "avg", "histogram")
OPERATORS = ("in", "not_in")  # on dimensions, with declared values
COMPARISONS = ("ge", "gt", "le", "lt")  # on timestamps, with one Unix time
# Any-touch (credit every exposure in the window) is not offered: its work grows with exposures x
# conversions per person, which no public bound the enclave's memory can take keeps small.
MODELS = ("last_touch", "first_touch")
_ALIAS = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FIELDS = {"v", "datasets", "where", "group_by", "select", "window", "join"}


@dataclass(frozen=True)
class Predicate:
    column: ColumnRef
    op: str  # "in" / "not_in" (dimension values) or "ge" / "gt" / "le" / "lt" (a timestamp)
    values: tuple[str, ...] | tuple[int]


@dataclass(frozen=True)
class GroupKey:
    column: ColumnRef
    trunc: str | None  # None: a dimension; a timestamp's DATE_TRUNC unit; or LAG (the window's "to")
    alias: str  # the output column's name

    def to_wire(self) -> str | dict[str, str]:
        if self.trunc is None and self.alias == self.column.column:
            return str(self.column)
        return {"column": str(self.column), "trunc": self.trunc or "", "as": self.alias}


@dataclass(frozen=True)
class Window:
    """Attribution: each row of ``end``'s dataset is credited to a row of ``start``'s dataset of
    the same person with 0 <= end - start <= ``max_days`` (the latest one for ``last_touch``, the
    earliest for ``first_touch``; ties go to the later, resp. earlier, declared cohort value)."""

    start: ColumnRef
    end: ColumnRef
    max_days: int
    model: str

    def to_wire(self) -> dict[str, Any]:
        return {"from": str(self.start), "to": str(self.end), "max_days": self.max_days, "model": self.model}


@dataclass(frozen=True)
class Aggregate:
    fn: str  # count_distinct ("person"), count / histogram (a dataset), sum / avg ("dataset.metric")
    arg: str
    alias: str
    max: int | None = None  # histogram: the last bucket is "max or more" rows per person

    def to_wire(self) -> dict[str, Any]:
        return {"fn": self.fn, "arg": self.arg, "as": self.alias,
                **({"max": self.max} if self.max is not None else {})}

    @property
    def columns(self) -> list[str]:
        """Its output columns: one, or a histogram's bucket columns alias_1 ... alias_<max>_plus."""
        if self.fn != "histogram" or self.max is None:
            return [self.alias]
        return [f"{self.alias}_{i}" for i in range(1, self.max)] + [f"{self.alias}_{self.max}_plus"]


@dataclass(frozen=True)
class Plan:
    datasets: tuple[str, ...]
    where: tuple[Predicate, ...]
    group_by: tuple[GroupKey, ...]
    select: tuple[Aggregate, ...]
    window: Window | None = None
    # "left": every person of datasets[0] counts; those with no (filtered) row in the other
    # dataset form one more cohort, whose group keys are nil (FROM a LEFT JOIN b)
    join: str = "inner"

    @property
    def left_join(self) -> bool:
        return self.join == "left"

    def to_wire(self) -> dict[str, Any]:
        return {"v": PLAN_VERSION, "datasets": list(self.datasets),
                **({"join": "left"} if self.left_join else {}),
                "where": [{"column": str(p.column), "op": p.op, "values": list(p.values)}
                          for p in self.where],
                "group_by": [key.to_wire() for key in self.group_by],
                "select": [a.to_wire() for a in self.select],
                **({"window": self.window.to_wire()} if self.window is not None else {})}

    @property
    def selects_gate(self) -> bool:
        """Whether COUNT(DISTINCT person), the release gate, is one of the selected columns."""
        return any(a.fn == "count_distinct" and a.arg == "person" for a in self.select)

    @property
    def output_columns(self) -> list[str]:
        """The result's columns: group keys, each aggregate's columns, then ``persons`` (the gate)
        unless it is selected."""
        names = [key.alias for key in self.group_by] + [c for a in self.select for c in a.columns]
        return names if self.selects_gate else [*names, "persons"]


def _ref(text: object, where: str) -> ColumnRef:
    if not isinstance(text, str) or text.count(".") != 1:
        raise ProtocolError(f"plan {where}: expected 'dataset.column'")
    dataset, column = text.split(".")
    return ColumnRef(dataset, column)


def _list(doc: dict[str, Any], key: str, limit: int) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list) or len(value) > limit:
        raise ProtocolError(f"plan {key}: expected a list of at most {limit} items")
    return value


def parse_plan(doc: object) -> Plan:
    """The plan's structure (``ProtocolError``); whether the policy allows it is ``check_plan``."""
    if not isinstance(doc, dict) or set(doc) - _FIELDS or doc.get("v") != PLAN_VERSION:
        raise ProtocolError(f"plan: expected a map with v = {PLAN_VERSION} and only {sorted(_FIELDS)}")
    datasets = _list(doc, "datasets", 8)
    if not datasets or not all(isinstance(d, str) for d in datasets) or len(set(datasets)) != len(datasets):
        raise ProtocolError("plan datasets: expected distinct dataset names")
    where = []
    for item in _list(doc, "where", 32):
        if not isinstance(item, dict) or set(item) != {"column", "op", "values"}:
            raise ProtocolError("plan where: each predicate is {column, op, values}")
        values = item["values"]
        if item["op"] in COMPARISONS:
            if (not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], int)
                    or isinstance(values[0], bool)):
                raise ProtocolError(f"plan where: {item['op']} takes one Unix time")
            where.append(Predicate(_ref(item["column"], "where"), item["op"], (values[0],)))
            continue
        if (item["op"] not in OPERATORS or not isinstance(values, list) or not values
                or not all(isinstance(v, str) for v in values) or len(values) > 1024):
            raise ProtocolError(f"plan where: op must be one of {OPERATORS + COMPARISONS}; in and not_in "
                                "take 1..1024 string values")
        where.append(Predicate(_ref(item["column"], "where"), item["op"], tuple(sorted(set(values)))))
    group_by = tuple(_group_key(item) for item in _list(doc, "group_by", 8))
    select = []
    for item in _list(doc, "select", 32):
        histogram = isinstance(item, dict) and item.get("fn") == "histogram"
        if not isinstance(item, dict) or set(item) != ({"fn", "arg", "as", "max"} if histogram
                                                       else {"fn", "arg", "as"}):
            raise ProtocolError("plan select: each aggregate is {fn, arg, as} (a histogram also max)")
        if item["fn"] not in FUNCTIONS or not isinstance(item["arg"], str):
            raise ProtocolError(f"plan select: fn must be one of {FUNCTIONS}")
        if not isinstance(item["as"], str) or not _ALIAS.match(item["as"]):
            raise ProtocolError("plan select: 'as' must be a lower-case name")
        top = item.get("max")
        if histogram and (not isinstance(top, int) or isinstance(top, bool) or not 2 <= top <= 32):
            raise ProtocolError("plan select: a histogram's max is 2..32")
        select.append(Aggregate(item["fn"], item["arg"], item["as"], top if histogram else None))
    if not select:
        raise ProtocolError("plan select: at least one aggregate")
    join = doc.get("join", "inner")
    if "join" in doc and (join != "left" or len(datasets) != 2):
        raise ProtocolError("plan join: \"left\" with two datasets, or absent for the inner join")
    plan = Plan(tuple(datasets), tuple(where), group_by, tuple(select), _window(doc.get("window")), join)
    names = plan.output_columns  # the release gate is released as persons unless selected
    if len(set(names)) != len(names):
        raise ProtocolError("plan: output column names must be distinct (persons is the gate's "
                            "name unless COUNT(DISTINCT person) is selected)")
    return plan


def _group_key(item: object) -> GroupKey:
    if isinstance(item, str):
        ref = _ref(item, "group_by")
        return GroupKey(ref, None, ref.column)
    if (not isinstance(item, dict) or set(item) != {"column", "trunc", "as"}
            or item["trunc"] not in (*TRUNCS, LAG)):
        raise ProtocolError(f"plan group_by: 'dataset.column' or {{column, trunc in {(*TRUNCS, LAG)}, as}}")
    if not isinstance(item["as"], str) or not _ALIAS.match(item["as"]):
        raise ProtocolError("plan group_by: 'as' must be a lower-case name")
    return GroupKey(_ref(item["column"], "group_by"), item["trunc"], item["as"])


def _window(item: object) -> Window | None:
    if item is None:
        return None
    if not isinstance(item, dict) or set(item) != {"from", "to", "max_days", "model"}:
        raise ProtocolError("plan window: {from, to, max_days, model}")
    days = item["max_days"]
    if (not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 366
            or item["model"] not in MODELS):
        raise ProtocolError(f"plan window: max_days 0..366 and model one of {MODELS}")
    return Window(_ref(item["from"], "window"), _ref(item["to"], "window"), days, item["model"])


@dataclass(frozen=True)
class PlanCheck:
    """What the checked plan releases and costs: fixed before any data is read."""

    requester: str
    recipients: tuple[str, ...]
    cost: Fraction  # charged to every dataset of the plan
    min_persons: int
    group_dataset: str | None  # the cohort dataset (None: no GROUP BY, or an attributed query)
    n_cohorts: int
    statistics: tuple[Statistic, ...]  # "persons" first; then one per distinct count / sum
    tau: int | None = None  # private cohort keys: a row also needs this many noisy persons
    delta: Fraction = Fraction(0)  # the δ of that selection, charged with the cost



def _check_left_join(plan: Plan, rules: dict[str, DatasetRules], group_dataset: str | None) -> int:
    """The extra cohort a LEFT JOIN adds (the kept dataset's persons without a row in the other),
    after checking it is one: grouped by the other dataset's columns, no window, and counting
    the kept dataset's persons is allowed (as for COUNT(DISTINCT kept.person))."""
    if not plan.left_join:
        return 0
    kept = plan.datasets[0]
    clause = f"FROM {kept} LEFT JOIN {plan.datasets[1]}"
    if plan.window is not None:
        raise _deny(clause, "a time window relates rows of both datasets: use JOIN")
    if not rules[kept].count_rows:
        raise _deny(clause, f"the owner's rule does not allow counting {kept}")
    if not plan.group_by:
        return 0  # one cohort: every person of the kept dataset
    if group_dataset == kept:
        raise _deny(clause, f"GROUP BY the columns of {plan.datasets[1]} (grouped by {kept}'s own "
                            f"columns, COUNT(DISTINCT {kept}.person) with JOIN counts them)")
    return 1


def check_plan(policy: Policy, plan: Plan, requester: str, *, template: Template | None = None) -> PlanCheck:
    """Check ``plan`` against every touched dataset's rule; the most restrictive rule wins.

    For a ``template``'s plan the template's own terms stand in for the rules
    (``protocol/templates.py``); every other check is the same.
    """
    rules = {}
    for name in plan.datasets:
        dataset = policy.dataset(name)
        if dataset is None:
            raise _deny(f"FROM {name}", "the policy has no such dataset")
        if template is not None:
            rules[name] = template_rules(policy, template, dataset)
            continue
        if dataset.rules is None:
            raise _deny(f"FROM {name}", f"the owner of {name} allows no free-form queries (no rules)")
        rules[name] = dataset.rules
    if set(plan.datasets) != set(policy.join):
        raise _deny("FROM", f"a query must join exactly the datasets {' and '.join(policy.join)}")
    for name, rule in rules.items():
        if requester not in rule.requesters:
            raise _deny(f"FROM {name}", f"party {requester!r} may not query {name}")
        missing = sorted(set(rule.join_with) - set(plan.datasets))
        if missing:
            raise _deny(f"FROM {name}", f"{name} must be joined with {', '.join(missing)}")
    recipients = tuple(p.id for p in policy.parties if all(p.id in r.recipients for r in rules.values()))
    if requester not in recipients:
        raise _deny("query", f"the rules would send the result to {list(recipients)}, not to {requester!r}")
    for predicate in plan.where:
        allowed = rules.get(predicate.column.dataset)
        if allowed is None or predicate.column.column not in allowed.filter_by:
            raise _deny(f"WHERE {predicate.column}", "the owner's rule does not allow filtering on it")
        if predicate.op in COMPARISONS:
            timestamp_of(policy, predicate.column, "WHERE")
            continue
        declared = declared_values(policy, predicate.column, "WHERE")
        undeclared = sorted(set(map(str, predicate.values)) - set(declared))
        if undeclared:
            raise _deny(f"WHERE {predicate.column}", f"{undeclared[0]!r} is not a declared value")
    check_window(policy, plan, rules)
    n_cohorts, group_dataset = 1, None
    for key in plan.group_by:
        n_cohorts *= key_size(policy, plan, key)
        if key.column.dataset not in rules or key.column.column not in rules[key.column.dataset].group_by:
            raise _deny(f"GROUP BY {key.column}", "the owner's rule does not allow grouping by it")
    if plan.group_by:
        datasets = {key.column.dataset for key in plan.group_by}
        if plan.window is None:  # without attribution a cohort is one dataset's rows
            if len(datasets) != 1:
                raise _deny("GROUP BY", "columns must come from one dataset (or relate the datasets "
                                        "by a time window)")
            group_dataset = next(iter(datasets))
        if len(plan.group_by) > min(r.max_group_by for r in rules.values()):
            raise _deny("GROUP BY", "more columns than the rules allow")
    n_cohorts += _check_left_join(plan, rules, group_dataset)
    if n_cohorts > MAX_PLAN_CELLS:
        raise _deny("GROUP BY", f"the query would release {n_cohorts:,} rows, more than {MAX_PLAN_CELLS:,}")
    if len(plan.select) > min(r.max_aggregates for r in rules.values()):
        raise _deny("SELECT", "more aggregates than the rules allow")
    stats = plan_statistics(policy, plan, rules, n_cohorts, group_dataset)
    cost = max(r.cost for r in rules.values())
    tau, delta = None, Fraction(0)
    if plan.group_by and any(r.cohort_keys == "private" for r in rules.values()):
        # τ thresholds the persons count, which a person moves in at most cells_per_unit cells:
        # the derivation is protocol/privacy/threshold.py's; δ is the policy's per query.
        persons = calibrate(list(stats), policy.privacy.mode, cost)[0]
        delta = policy.privacy.delta
        tau = release_threshold(persons.mechanism, persons.scale, persons.statistic.cells_per_unit, delta)
    return PlanCheck(requester, recipients, cost,
                     max([policy.privacy.min_cohort_size, *(r.min_persons for r in rules.values())]),
                     group_dataset, n_cohorts, stats, tau, delta)
