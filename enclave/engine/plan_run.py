"""Run a checked free-form query plan (docs/query-language.md) on the NumPy core.

The order is ``analyses.run_query``'s, for the same reasons: the statistics and their exact noise
parameters come from ``protocol.query_plan.check_plan`` without data; the overflow bound is proven
and every cell's noise drawn before a row is read; the result leaves at a deadline of the public
shape. Then:

1. ``WHERE``: a mask per dataset from the dimension codes (declared values only);
2. the join of the masked rows on the person (keyed join keys, ``join.match_users``);
3. ``GROUP BY``: cohort codes of the cohort dataset's rows, its matched rows bounded to L0 cohorts
   and Linf rows per person and cohort (``bounding.bound_contributions``);
4. per cohort: distinct persons; the cohort dataset's own kept rows (row-level ``COUNT``/``SUM``);
   for another dataset, each person's value over at most Linf of its rows, once per cohort the
   person is in (person-level). The derivation of what one person can change is next to the
   statistics, in ``protocol/query_plan.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from enclave.engine.aggregation import (
    aggregate,
    check_no_overflow,
    cohort_pairs,
    frequency_histogram,
    per_cohort_total,
)
from enclave.engine.analyses import NoiseSource, Release, draw
from enclave.engine.bounding import RandomBytes, bound_contributions
from enclave.engine.cohorts import Selection, fixed_point_text
from enclave.engine.columns import ColumnarTable
from enclave.engine.join import match_users, unit_codes
from enclave.engine.plan_attribution import attributed_values
from enclave.engine.plan_columns import group_codes, group_labels, key_codes, metric_of, row_masks
from enclave.engine.release_timing import plan_cost_kind, release_deadline, wait_for_release
from protocol.policy import ColumnRef, Policy
from protocol.privacy.accounting import MECHANISMS, Calibrated, bun_steinke_epsilon, calibrate, decimal_text
from protocol.query_plan import Plan, PlanCheck

__all__ = ["exact_values", "run_plan"]


def _ref(text: str) -> ColumnRef:
    dataset, column = text.split(".")
    return ColumnRef(dataset, column)


def run_plan(plan: Plan, check: PlanCheck, policy: Policy, tables: dict[str, ColumnarTable],
             noise: NoiseSource, random_bytes: RandomBytes, *, join_key: bytes,
             clock: Callable[[], float], sleep: Callable[[float], None]) -> Release:
    """Run a plan ``check_plan`` accepted; the ledger must already have been charged."""
    started = clock()
    calibrated = calibrate(list(check.statistics), policy.privacy.mode, check.cost)
    max_rows = sum(d.max_rows for d in policy.datasets if d.name in plan.datasets)
    try:
        for c in calibrated:
            if c.statistic.name.startswith("sum:"):
                ref = _ref(c.statistic.name[4:])
                metric, dataset = metric_of(policy, ref), policy.dataset(ref.dataset)
                assert dataset is not None
                check_no_overflow(dataset.max_rows, metric.min, metric.max)
        noisy = {c.statistic.name: draw(noise, c) for c in calibrated}  # before any data
        true = exact_values(plan, check, policy, tables, random_bytes, join_key)
        columns, rows, suppressed = _release(plan, check, policy, true, noisy)
    finally:
        cells = sum(c.statistic.length for c in calibrated)
        wait_for_release(started, release_deadline(cells, max_rows, plan_cost_kind(plan)),
                         clock=clock, sleep=sleep)
    return Release(columns, rows, _metadata(plan, check, policy, calibrated, noise, suppressed))


def _matched(plan: Plan, policy: Policy, tables: dict[str, ColumnarTable],
             masks: dict[str, np.ndarray | None], join_key: bytes) -> tuple[dict[str, np.ndarray], int, int]:
    """Each dataset's row -> person code (-1: filtered out or, in a JOIN, not on the other side),
    the persons and the matched persons: codes 0..matched-1 are matched; with a LEFT JOIN the
    kept dataset's other persons follow."""
    left, right = policy.join  # check_plan: the plan joins exactly these two
    sides = []
    for name in (left, right):
        ids, tags = tables[name].ids, tables[name].join_keys(join_key)
        mask = masks[name]
        sides.append((ids, tags) if mask is None else (ids[mask], tags[mask]))
    match = match_users(sides[0][0], sides[1][0], sides[0][1], sides[1][1])
    del sides
    # The match's codes (int32 below 2^31 rows; every person code below, LEFT JOIN's unmatched
    # ones too, is under the rows joined): the one full-length array a query holds per table.
    users = {left: match.left_user, right: match.right_user}
    n_matched = match.n_matched
    del match
    out: dict[str, np.ndarray] = {}
    for name in (left, right):
        mask = masks[name]
        if mask is None:
            out[name] = users.pop(name)
        else:
            full = np.full(tables[name].rows, -1, dtype=users[name].dtype)
            full[mask] = users.pop(name)
            out[name] = full
    n_persons = n_matched
    if plan.left_join:
        kept = plan.datasets[0]
        rows = out[kept] < 0
        mask = masks[kept]
        if mask is not None:
            rows &= mask
        units, n_unmatched = unit_codes(tables[kept].ids[rows])
        out[kept][rows] = units + n_matched
        n_persons += n_unmatched
    return out, n_persons, n_matched


def _per_person_rows(person: np.ndarray, n_persons: int, linf: int, tags: np.ndarray,
                     random_bytes: RandomBytes) -> np.ndarray:
    """Keep-mask of at most Linf uniformly chosen rows per person, over a dataset's rows (-1:
    never kept). One draw per dataset, so a count and a sum over the same dataset use the same
    rows and an AVG is consistent."""
    one_cohort = np.broadcast_to(np.int64(0), person.shape)  # no memory: a zero stride
    return bound_contributions(person, one_cohort, n_persons,
                               max_cohorts_per_user=1, max_rows_per_user_per_cohort=linf,
                               random_bytes=random_bytes, n_cohorts=1, row_tag=tags)


def _histogram(plan: Plan, check: PlanCheck, policy: Policy, tables: dict[str, ColumnarTable],
               row_person: dict[str, np.ndarray], n_persons: int, dataset: str,
               bounded: tuple[np.ndarray, np.ndarray] | None, random_bytes: RandomBytes,
               join_key: bytes) -> np.ndarray:
    """Persons per cohort by their number of kept rows of ``dataset`` there: buckets 1..F ("F or
    more" last), flattened cohort by cohort as the statistic's noise vector is."""
    top = next(a.max for a in plan.select if a.fn == "histogram" and a.arg == dataset)
    assert top is not None
    if bounded is not None:  # the cohort dataset's kept rows: (person, cohort) of each
        users, cohorts = bounded
        return frequency_histogram(users, cohorts, check.n_cohorts, top).ravel()
    person = row_person[dataset]
    users = person[_per_person_rows(person, n_persons, policy.privacy.max_rows_per_user,
                                    tables[dataset].join_keys(join_key), random_bytes)]
    return frequency_histogram(users, np.zeros(len(users), dtype=np.int64), 1, top).ravel()


def _dataset_persons(plan: Plan, policy: Policy, table: ColumnarTable, mask: np.ndarray | None,
                     random_bytes: RandomBytes, join_key: bytes, n: int) -> np.ndarray:
    """Distinct persons of one dataset per cohort, matched or not (WHERE applies), each in at
    most L0 cohorts: the exposed persons of a lift."""
    units, n_units = unit_codes(table.ids if mask is None else table.ids[mask])  # no copy unfiltered
    if not plan.group_by:
        return np.array([n_units], dtype=np.int64)
    cohorts, _ = group_codes([key_codes(policy, table, key, mask) for key in plan.group_by])
    tags = table.join_keys(join_key)
    keep = bound_contributions(units, cohorts, n_units,
                               max_cohorts_per_user=policy.privacy.max_cohorts_per_user,
                               max_rows_per_user_per_cohort=1, random_bytes=random_bytes, n_cohorts=n,
                               row_tag=tags if mask is None else tags[mask])
    return aggregate(units, cohorts, n, None, keep).users


def exact_values(plan: Plan, check: PlanCheck, policy: Policy, tables: dict[str, ColumnarTable],
                 random_bytes: RandomBytes, join_key: bytes) -> dict[str, np.ndarray]:
    """Exact int64 value per cohort of every statistic of the plan."""
    privacy, n = policy.privacy, check.n_cohorts
    masks = row_masks(plan, policy, tables)  # WHERE, once for the join and every count
    row_person, n_persons, n_matched = _matched(plan, policy, tables, masks, join_key)
    if plan.window is not None:
        return attributed_values(plan, check, policy, tables, row_person, n_persons, random_bytes, join_key)
    group = check.group_dataset
    kept_cohorts = pair_user = pair_cohort = np.zeros(0, dtype=np.int64)
    keep = np.zeros(0, dtype=bool)
    if group is not None:
        # Over all the dataset's rows, unmatched ones coded -1 (which bounding never keeps): no
        # index of the matched rows, and no copy of their person codes, tags or keys.
        person = row_person[group]
        cohorts, _ = group_codes([key_codes(policy, tables[group], key) for key in plan.group_by])
        keep = bound_contributions(person, cohorts, n_persons,
                                   max_cohorts_per_user=privacy.max_cohorts_per_user,
                                   max_rows_per_user_per_cohort=privacy.max_rows_per_user,
                                   random_bytes=random_bytes, n_cohorts=n,
                                   row_tag=tables[group].join_keys(join_key))
        # One sort of the kept (person, cohort) pairs serves every count and sum below; the
        # kept rows' cohorts (``cohorts[keep]``) are all that is read of the cohorts after it.
        kept_cohorts, pair_user, pair_cohort = cohort_pairs(person, cohorts, n, keep)
        del cohorts
        if plan.left_join:  # the kept dataset's unmatched persons: the last cohort, nil keys
            unmatched = np.arange(n_matched, n_persons, dtype=np.int64)
            pair_user = np.concatenate([pair_user, unmatched])
            pair_cohort = np.concatenate([pair_cohort, np.full(len(unmatched), n - 1, dtype=np.int64)])
    per_person_keep: dict[str, np.ndarray] = {}  # dataset -> keep-mask of its Linf-bounded rows
    out: dict[str, np.ndarray] = {}
    for statistic in check.statistics:
        kind, _, arg = statistic.name.partition(":")
        dataset = arg.split(".")[0]
        if kind == "persons":
            out[statistic.name] = (
                _dataset_persons(plan, policy, tables[arg], masks[arg], random_bytes, join_key, n) if arg
                else np.bincount(pair_cohort, minlength=n).astype(np.int64) if group is not None
                else np.array([n_persons], dtype=np.int64))
            continue
        if kind == "histogram":
            bounded = None if group is None else (row_person[group][keep], kept_cohorts)
            out[statistic.name] = _histogram(plan, check, policy, tables, row_person, n_persons, arg,
                                             bounded, random_bytes, join_key)
            continue
        metric = metric_of(policy, _ref(arg)) if kind == "sum" else None
        column = tables[dataset].column(arg.split(".")[1]) if metric is not None else None
        if dataset == group:  # the cohort dataset's own kept rows: row-level
            if metric is None:
                out[statistic.name] = np.bincount(kept_cohorts, minlength=n).astype(np.int64)
            else:
                assert column is not None
                values = np.clip(column[keep], metric.min, metric.max).astype(np.int64)
                sums = np.zeros(n, dtype=np.int64)
                np.add.at(sums, kept_cohorts, values)
                out[statistic.name] = sums
            continue
        # another dataset's rows: each person's bounded value, once per cohort the person is in
        person = row_person[dataset]
        if dataset not in per_person_keep:
            per_person_keep[dataset] = _per_person_rows(person, n_persons, privacy.max_rows_per_user,
                                                        tables[dataset].join_keys(join_key), random_bytes)
        kept = per_person_keep[dataset]
        value = np.zeros(n_persons, dtype=np.int64)
        if metric is None:
            np.add.at(value, person[kept], 1)
        else:
            assert column is not None
            clamped = np.clip(column[kept], metric.min, metric.max).astype(np.int64)
            np.add.at(value, person[kept], clamped)
        out[statistic.name] = (np.array([int(value.sum())], dtype=np.int64) if group is None
                               else per_cohort_total(pair_user, pair_cohort, n, value))
    return out


def _release(plan: Plan, check: PlanCheck, policy: Policy, true: dict[str, np.ndarray],
             noisy: dict[str, list[int]]) -> tuple[list[str], list[list[Any]], int]:
    """Noised cells, the release gate on noisy persons, and the output rows in plan order."""
    labels = group_labels(policy, plan)
    selection = Selection(check.min_persons, check.tau)
    columns = plan.output_columns
    rows, suppressed = [], 0
    for cell, label in enumerate(labels):
        noised = {name: int(values[cell]) + noisy[name][cell] for name, values in true.items()
                  if not name.startswith("histogram:")}
        persons = max(0, noised["persons"])
        if not selection.releases(persons):
            suppressed += 1
            continue
        row: list[Any] = list(label)
        for a in plan.select:
            if a.fn == "count_distinct":
                row.append(persons if a.arg == "person"
                           else max(0, noised[f"persons:{a.arg.split('.')[0]}"]))
            elif a.fn == "count":
                row.append(max(0, noised[f"count:{a.arg}"]))
            elif a.fn == "histogram":
                assert a.max is not None
                cells = true[f"histogram:{a.arg}"][cell * a.max:(cell + 1) * a.max]
                draws = noisy[f"histogram:{a.arg}"][cell * a.max:(cell + 1) * a.max]
                row.extend(max(0, int(v) + d) for v, d in zip(cells, draws, strict=True))
            else:
                scale = metric_of(policy, _ref(a.arg)).scale
                total = Fraction(noised[f"sum:{a.arg}"], 10**scale)
                if a.fn == "avg":
                    total /= max(1, noised[f"count:{a.arg.split('.')[0]}"])
                row.append(fixed_point_text(total, scale))
        if not plan.selects_gate:
            row.append(persons)
        rows.append(row)
    return columns, rows, suppressed


def _metadata(plan: Plan, check: PlanCheck, policy: Policy, calibrated: list[Calibrated],
              noise: NoiseSource, suppressed: int) -> dict[str, Any]:
    privacy = policy.privacy
    unit = privacy.unit
    meta: dict[str, Any] = {
        "mechanism": MECHANISMS[privacy.mode], "noise_source": noise.mechanism, "accounting": privacy.mode,
        "delta_charged": str(check.delta), "delta_total": str(privacy.conversion_delta + check.delta),
        f"{unit}_charged": str(check.cost),
        f"{unit}_per_statistic": {c.statistic.name: str(c.share) for c in calibrated},
        "min_persons": check.min_persons,
        **({"cohort_keys": "private", "threshold": check.tau} if check.tau is not None else {}),
        "cohorts_total": check.n_cohorts, "suppressed_cohorts": suppressed,
        "contribution_bounds": {"max_cohorts_per_user": privacy.max_cohorts_per_user,
                                "max_rows_per_user": privacy.max_rows_per_user},
        # which released column each noisy vector feeds (avg: sum / count)
        "column_statistics": _column_statistics(plan),
        "clamps": {}, "fixed_point_scale": {},
    }
    key = "noise_scale" if privacy.mode == "pure" else "noise_sigma2"
    meta[key] = {c.statistic.name: str(c.scale) for c in calibrated}
    if privacy.mode == "pure":
        meta["sensitivity"] = {c.statistic.name: c.statistic.l1 for c in calibrated}
    else:  # the (ε, δ) this query alone amounts to, as an upper bound (Bun–Steinke)
        meta["epsilon_charged"] = decimal_text(bun_steinke_epsilon(check.cost, privacy.delta))
        meta["epsilon_at_delta"] = str(privacy.delta)
        meta["sensitivity_l2_squared"] = {c.statistic.name: c.statistic.l2_sq for c in calibrated}
    for c in calibrated:
        if c.statistic.name.startswith("sum:"):
            metric = metric_of(policy, _ref(c.statistic.name[4:]))
            meta["clamps"][c.statistic.name[4:]] = [str(Fraction(metric.min, 10**metric.scale)),
                                                    str(Fraction(metric.max, 10**metric.scale))]
            meta["fixed_point_scale"][c.statistic.name[4:]] = metric.scale
    return meta


def _column_statistics(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in plan.select:
        if a.fn == "count_distinct":
            out[a.alias] = ["persons" if a.arg == "person" else f"persons:{a.arg.split('.')[0]}"]
        elif a.fn == "count":
            out[a.alias] = [f"count:{a.arg}"]
        elif a.fn == "histogram":
            out.update({column: [f"histogram:{a.arg}"] for column in a.columns})
        elif a.fn == "sum":
            out[a.alias] = [f"sum:{a.arg}"]
        else:
            out[a.alias] = [f"sum:{a.arg}", f"count:{a.arg.split('.')[0]}"]
    if not plan.selects_gate:
        out["persons"] = ["persons"]
    return out
