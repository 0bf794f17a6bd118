"""Attributed plans (a ``window``): credit each conversion row to one exposure row, then count.

For every matched row of the window's ``to`` dataset (say a conversion at time c), the exposure
rows of the same person with c - max_days <= e <= c are its candidates; ``last_touch`` credits the
latest, ``first_touch`` the earliest (equal times: the later, resp. earlier, code of the
exposure's group keys). Both are one sort and one binary search: O(n log n), with no per-person
loops, so the work depends on the row counts alone (the release deadline assumes max_rows).

The credited rows are then cells like any cohort rows: a cell is the product of the group keys,
each read from the exposure (e.g. its campaign) or the conversion (e.g. the week it happened in).
Bounding keeps at most L0 cells per person and Linf credited rows per person and cell, so one
person changes ``persons`` by 1, ``count`` by Linf and ``sum`` by Linf·C in at most k cells: the
bounds of ``protocol/query_plan.py``, whose derivation covers this case unchanged.
"""

from __future__ import annotations

import numpy as np

from enclave.engine.aggregation import aggregate
from enclave.engine.bounding import RandomBytes, bound_contributions
from enclave.engine.columns import ColumnarTable
from enclave.engine.plan_columns import clamped_times, group_codes, key_codes, metric_of
from protocol.errors import InvalidInput
from protocol.policy import ColumnRef, Policy
from protocol.query_plan import LAG, Plan, PlanCheck, attribution_key_layout
from protocol.time_buckets import DAY

__all__ = ["attributed_values"]


def _credited(plan: Plan, policy: Policy, tables: dict[str, ColumnarTable],
              row_person: dict[str, np.ndarray], n_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the tables) of each credited conversion row and of the exposure row it goes to."""
    window = plan.window
    assert window is not None
    start, end = window.start, window.end
    exposed, converted = row_person[start.dataset] >= 0, row_person[end.dataset] >= 0
    if not exposed.any() or not converted.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    exposure_rows = np.flatnonzero(exposed)
    span = window.max_days * DAY
    tie, n_tie = group_codes([key_codes(policy, tables[start.dataset], key, exposure_rows)
                              for key in plan.group_by if key.column.dataset == start.dataset] or
                             [(np.zeros(len(exposure_rows), dtype=np.int64), 1)])
    # One int64 key per exposure: person, then time offset, then the tie-break code, so one
    # argsort orders them and one binary search finds each conversion's candidate, whose
    # person and time are read back from its key: no per-exposure array but the keys and
    # their order is held through the sort and the search.
    base, time_bits, tie_bits, _ = attribution_key_layout(policy, plan)  # checked to fit in 62 bits
    if n_tie > 1 << tie_bits or n_persons > 1 << 62 - time_bits - tie_bits:
        raise InvalidInput("attribution keys exceed their checked layout")  # cannot happen
    low = time_bits + tie_bits
    keys = row_person[start.dataset][exposure_rows].astype(np.int64)  # built in place
    keys <<= low
    offset = clamped_times(policy, tables[start.dataset], start, exposure_rows)
    offset -= base
    offset <<= tie_bits
    keys |= offset
    del offset, exposure_rows  # (the rows again at the end: not held through the sort)
    keys |= tie
    del tie
    order = np.argsort(keys)
    keys = keys[order]

    def person_time(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # of the exposures at ``at``
        key = keys[at]
        return key >> low, ((key >> tie_bits) & ((1 << time_bits) - 1)) + base

    conversion_rows = np.flatnonzero(converted)
    c_person = row_person[end.dataset][conversion_rows].astype(np.int64)
    c_time = clamped_times(policy, tables[end.dataset], end, conversion_rows)
    del conversion_rows
    if window.model == "last_touch":  # the last exposure at or before c: largest key <= (c, max tie)
        probe = (c_person << low) | ((c_time - base) << tie_bits) | ((1 << tie_bits) - 1)
        at = _search(keys, probe, "right") - 1
        del probe
        found = at >= 0
        at = np.maximum(at, 0)
        e_person, e_time = person_time(at)
        found &= e_person == c_person
        found &= c_time - e_time <= span
    else:  # the first exposure at or after c - span: smallest key >= (c - span, tie 0)
        probe = (c_person << low) | ((c_time - span - base) << tie_bits)
        at = _search(keys, probe, "left")
        del probe
        found = at < len(keys)
        at = np.minimum(at, len(keys) - 1)
        e_person, e_time = person_time(at)
        found &= e_person == c_person
        found &= e_time <= c_time
    return np.flatnonzero(converted)[found], np.flatnonzero(exposed)[order[at[found]]]


def _search(keys: np.ndarray, probes: np.ndarray, side: str) -> np.ndarray:
    """``np.searchsorted(keys, probes)`` with the probes sorted first: the binary searches then
    walk ``keys`` in order, which is several times faster on large tables than random probes."""
    order = np.argsort(probes)
    ordered = probes[order]
    found = np.searchsorted(keys, ordered, side=side)  # type: ignore[call-overload]
    del ordered
    out = np.empty(len(probes), dtype=np.int64)
    out[order] = found
    return out


def _lag_days(policy: Policy, tables: dict[str, ColumnarTable], plan: Plan, exposures: np.ndarray,
              conversions: np.ndarray) -> tuple[np.ndarray, int]:
    """Whole days from each credited exposure to its conversion: 0..max_days (the window)."""
    window = plan.window
    assert window is not None
    start = clamped_times(policy, tables[window.start.dataset], window.start, exposures)
    end = clamped_times(policy, tables[window.end.dataset], window.end, conversions)
    return (end - start) // DAY, window.max_days + 1


def attributed_values(plan: Plan, check: PlanCheck, policy: Policy, tables: dict[str, ColumnarTable],
                      row_person: dict[str, np.ndarray], n_persons: int, random_bytes: RandomBytes,
                      join_key: bytes) -> dict[str, np.ndarray]:
    """Exact int64 value per cell of every statistic of an attributed plan."""
    window = plan.window
    assert window is not None
    conversions, exposures = _credited(plan, policy, tables, row_person, n_persons)
    end = window.end.dataset
    person = row_person[end][conversions]
    columns = [_lag_days(policy, tables, plan, exposures, conversions) if key.trunc == LAG
               else key_codes(policy, tables[key.column.dataset], key,
                              exposures if key.column.dataset == window.start.dataset else conversions)
               for key in plan.group_by]
    if columns:
        cells, n = group_codes(columns)
    else:
        cells, n = np.zeros(len(conversions), dtype=np.int64), 1
    privacy = policy.privacy
    keep = bound_contributions(person, cells, n_persons,
                               max_cohorts_per_user=privacy.max_cohorts_per_user,
                               max_rows_per_user_per_cohort=privacy.max_rows_per_user,
                               random_bytes=random_bytes, n_cohorts=n,
                               row_tag=tables[end].join_keys(join_key)[conversions])
    counts = aggregate(person, cells, n, None, keep)
    out: dict[str, np.ndarray] = {}
    for statistic in check.statistics:
        kind, _, arg = statistic.name.partition(":")
        if kind == "persons":
            out[statistic.name] = counts.users
        elif kind == "count":
            out[statistic.name] = counts.rows
        else:
            dataset, column = arg.split(".")
            metric = metric_of(policy, ColumnRef(dataset, column))
            values = np.clip(tables[dataset].column(column)[conversions], metric.min, metric.max)
            sums = np.zeros(n, dtype=np.int64)
            np.add.at(sums, cells[keep], values[keep].astype(np.int64))
            out[statistic.name] = sums
    return out

