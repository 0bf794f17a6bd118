"""A plan's columns on the NumPy core: WHERE masks, group-key codes and labels, clamped times.

Dimensions are codes into the policy's declared values; a timestamp is Unix seconds, clamped to
its declared [min, max] before it is compared or bucketed (as a metric is clamped before it is
summed), so no uploaded value can move a row outside the public set of buckets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from enclave.engine.cohorts import cohort_codes
from enclave.engine.columns import ColumnarTable
from protocol.policy import ColumnRef, Dimension, Metric, Policy, Timestamp
from protocol.query_plan import LAG, GroupKey, Plan
from protocol.time_buckets import DAY, WEEK_SHIFT, bucket_range, bucket_start

__all__ = ["clamped_times", "group_codes", "group_labels", "key_codes", "metric_of", "row_masks"]


def _dimension(policy: Policy, ref: ColumnRef) -> Dimension:
    dataset = policy.dataset(ref.dataset)
    dimension = dataset.dimension(ref.column) if dataset else None
    assert dimension is not None, "check_plan checked every column"
    return dimension


def metric_of(policy: Policy, ref: ColumnRef) -> Metric:
    dataset = policy.dataset(ref.dataset)
    metric = dataset.metric(ref.column) if dataset else None
    assert metric is not None, "check_plan checked every metric"
    return metric


def _timestamp(policy: Policy, ref: ColumnRef) -> Timestamp:
    dataset = policy.dataset(ref.dataset)
    column = dataset.timestamp(ref.column) if dataset else None
    assert column is not None, "check_plan checked every column"
    return column


def clamped_times(policy: Policy, table: ColumnarTable, ref: ColumnRef,
                  rows: np.ndarray | None = None) -> np.ndarray:
    """The timestamp column (its ``rows`` only, if given) as int64 Unix seconds, clamped to its
    declared range."""
    column = _timestamp(policy, ref)
    values = table.column(ref.column) if rows is None else table.column(ref.column)[rows]
    out: np.ndarray = np.clip(values, column.min, column.max, out=None if rows is None else values)
    return out.astype(np.int64, copy=False)


def _buckets(seconds: np.ndarray, trunc: str) -> np.ndarray:
    days = seconds // DAY
    if trunc == "day":
        return days
    if trunc == "week":
        return (days + WEEK_SHIFT) // 7
    return seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)


def row_masks(plan: Plan, policy: Policy,
              tables: dict[str, ColumnarTable]) -> dict[str, np.ndarray | None]:
    """Per dataset, the rows ``WHERE`` keeps (None: all of them)."""
    masks: dict[str, np.ndarray | None] = dict.fromkeys(plan.datasets)
    for predicate in plan.where:
        ref, table = predicate.column, tables[predicate.column.dataset]
        if predicate.op in ("in", "not_in"):
            values = _dimension(policy, ref).values
            wanted = np.zeros(len(values), dtype=bool)
            wanted[[values.index(str(v)) for v in predicate.values]] = True
            rows = (wanted if predicate.op == "in" else ~wanted)[table.column(ref.column)]
        else:
            seconds, bound = clamped_times(policy, table, ref), int(predicate.values[0])
            rows = {"ge": seconds >= bound, "gt": seconds > bound, "le": seconds <= bound,
                    "lt": seconds < bound}[predicate.op]
        current = masks[ref.dataset]
        masks[ref.dataset] = rows if current is None else current & rows
    return masks


def key_codes(policy: Policy, table: ColumnarTable, key: GroupKey,
              rows: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """One group key's code for the selected ``rows`` of ``table`` (all if None), and how many
    codes it has. A dimension's codes may be the table's own column: read them, never write."""
    if key.trunc is None:
        size = len(_dimension(policy, key.column).values)
        column = table.column(key.column.column)
        return column if rows is None else column[rows], size  # '<u2': group_codes widens it once
    first, count = bucket_range(_timestamp(policy, key.column), key.trunc)
    return _buckets(clamped_times(policy, table, key.column, rows), key.trunc) - first, count


def group_codes(columns: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """Mixed-radix cell codes (first key most significant) of per-key codes and their sizes."""
    return cohort_codes([codes for codes, _ in columns], [size for _, size in columns])


def group_labels(policy: Policy, plan: Plan) -> list[list[str | None]]:
    """Every cell's labels in the order of ``group_codes``: declared values, bucket start dates,
    or whole days of lag; a grouped LEFT JOIN ends with its unmatched persons' cohort, all nil."""
    labels: list[list[str | None]] = [[]]
    for key in plan.group_by:
        if key.trunc is None:
            values = list(_dimension(policy, key.column).values)
        elif key.trunc == LAG:
            assert plan.window is not None, "check_plan: a lag needs a window"
            values = [str(day) for day in range(plan.window.max_days + 1)]
        else:
            first, count = bucket_range(_timestamp(policy, key.column), key.trunc)
            values = [bucket_start(first + i, key.trunc) for i in range(count)]
        labels = [[*prefix, value] for prefix in labels for value in values]
    if plan.left_join and plan.group_by:
        labels.append([None] * len(plan.group_by))
    return labels
