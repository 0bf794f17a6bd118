"""A plan's time window and its group keys' sizes, checked from the policy alone (docs/query-language.md).

Split from ``protocol/query_plan.py``: the attribution window's checks, the layout of the int64
keys attribution sorts (fixed before any data is read), and how many values a group key has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.errors import clause_denied as _deny
from protocol.policy import ColumnRef, DatasetRules, Policy, Timestamp
from protocol.time_buckets import DAY, bucket_range

if TYPE_CHECKING:
    from protocol.query_plan import GroupKey, Plan

__all__ = ["LAG", "attribution_key_layout", "check_window", "declared_values", "key_size", "timestamp_of"]

LAG = "lag_days"  # a group key of an attributed query: whole days from the credited exposure



def check_window(policy: Policy, plan: Plan, rules: dict[str, DatasetRules]) -> None:
    """A window relates an exposure dataset's timestamp to a conversion dataset's; only the
    conversion side's rows are counted and summed (each is credited to one exposure row)."""
    window = plan.window
    if window is None:
        return
    clause = f"JOIN ON {window.end} BETWEEN {window.start} AND +{window.max_days} days"
    timestamp_of(policy, window.start, "JOIN ON")
    timestamp_of(policy, window.end, "JOIN ON")
    if window.start.dataset == window.end.dataset:
        raise _deny(clause, "a window relates the timestamps of two different datasets")
    longest = min(r.max_window_days for r in rules.values())
    if window.max_days > longest:
        raise _deny(clause, f"the rules allow windows of at most {longest} days")
    _, time_bits, tie_bits, person_bits = attribution_key_layout(policy, plan)
    if time_bits + tie_bits + person_bits > 62:
        raise _deny(clause, "the timestamps' declared ranges and the exposure side's group keys are "
                            "too wide for one attribution query; narrow the declared time range")
    for aggregate in plan.select:
        counted = aggregate.arg.split(".")[0]
        if aggregate.fn != "count_distinct" and counted != window.end.dataset:
            raise _deny(f"SELECT {aggregate.fn.upper()}({aggregate.arg})",
                        f"an attributed query counts and sums the rows of {window.end.dataset} only")


def attribution_key_layout(policy: Policy, plan: Plan) -> tuple[int, int, int, int]:
    """(base, time bits, tie bits, person bits) of the int64 keys attribution sorts, from the
    policy alone: clamped times lie in the declared ranges, persons are at most the smaller
    dataset's max_rows, and tie codes range over the exposure side's group keys. Fixed before
    any data is read, so no data can make a charged query fail on the key width."""
    window = plan.window
    assert window is not None
    start, end = timestamp_of(policy, window.start, "JOIN ON"), timestamp_of(policy, window.end, "JOIN ON")
    span = window.max_days * DAY
    base = min(start.min, end.min) - span
    time_bits = (max(start.max, end.max) - base + 1).bit_length()
    n_tie = 1
    for key in plan.group_by:
        if key.column.dataset == window.start.dataset:
            n_tie *= key_size(policy, plan, key)
    persons = min(d.max_rows for d in policy.datasets if d.name in plan.datasets)
    return base, time_bits, max(n_tie - 1, 1).bit_length(), max(persons, 1).bit_length()


def key_size(policy: Policy, plan: Plan, key: GroupKey) -> int:
    """How many values a group key has: declared values, time buckets, or lag days (public)."""
    if key.trunc is None:
        return len(declared_values(policy, key.column, "GROUP BY"))
    if key.trunc == LAG:  # conversion lag: 0, 1, ..., max_days whole days after the exposure
        if plan.window is None or key.column != plan.window.end:
            raise _deny(f"GROUP BY lag of {key.column}", "a lag is of the window's later timestamp")
        return plan.window.max_days + 1
    return bucket_range(timestamp_of(policy, key.column, "GROUP BY"), key.trunc)[1]


def timestamp_of(policy: Policy, ref: ColumnRef, clause: str) -> Timestamp:
    dataset = policy.dataset(ref.dataset)
    column = dataset.timestamp(ref.column) if dataset else None
    if column is None:
        raise _deny(f"{clause} {ref}", "not a timestamp of a joined dataset")
    return column


def declared_values(policy: Policy, ref: ColumnRef, clause: str) -> tuple[str, ...]:
    dataset = policy.dataset(ref.dataset)
    dimension = dataset.dimension(ref.column) if dataset else None
    if dimension is None:
        raise _deny(f"{clause} {ref}", "not a dimension of a joined dataset")
    return dimension.values
