"""Run an authorized query over the joined datasets and produce released (noised) rows.

Order matters for privacy: the noise for every released cell is drawn before any data is read
(the number of cells depends only on the policy and the query), contributions are bounded per
person after the join, and a cohort is released only when its noisy count of people reaches the
minimum cohort size. Sensitivities come from the policy's bounds, never from the data:

* people per cohort: one person is in at most L0 cohorts            -> Δ1 = L0
* rows per cohort: at most Linf rows per person and cohort          -> Δ1 = L0 · Linf
* metric sum: a person's total is ≤ Linf rows × C, C = max(|lo|,|hi|) -> Δ1 = L0 · Linf · C

The query's ε is split evenly over the statistics it releases (sequential composition), and each
statistic gets discrete Laplace noise of scale t = Δ1 / ε_statistic (pure ε-DP).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from enclave import compute
from enclave.columns import ColumnarTable
from enclave.policy import QueryPlan
from protocol.errors import PolicyViolation
from protocol.policy import ColumnRef, Policy

__all__ = ["MAX_RELEASED_CELLS", "NoiseSource", "Release", "run_query"]

MAX_RELEASED_CELLS = 100_000


class NoiseSource(Protocol):
    mechanism: str

    def laplace(self, scale: Fraction, count: int) -> list[int]: ...


@dataclass(frozen=True)
class Release:
    columns: list[str]
    rows: list[list[Any]]
    privacy: dict[str, Any]


@dataclass(frozen=True)
class _Statistic:
    name: str
    sensitivity: int


def _cohort_labels(policy: Policy, group_by: Sequence[ColumnRef]) -> tuple[list[list[str]], int]:
    value_lists = []
    for ref in group_by:
        dataset = policy.dataset(ref.dataset)
        dimension = dataset.dimension(ref.column) if dataset else None
        if dimension is None:
            raise PolicyViolation("unknown group_by column")
        value_lists.append(list(dimension.values))
    n_cells = int(np.prod([len(v) for v in value_lists], dtype=object)) if value_lists else 1
    if n_cells > MAX_RELEASED_CELLS:
        raise PolicyViolation("the query would release too many cells")
    labels: list[list[str]] = [[]]
    for values in value_lists:  # mixed radix, first column most significant (as compute.cohort_codes)
        labels = [[*prefix, value] for prefix in labels for value in values]
    return labels, n_cells


def _fixed_point_text(value: Fraction, scale: int) -> str:
    quantum = Decimal(1).scaleb(-scale)
    return str((Decimal(value.numerator) / Decimal(value.denominator)).quantize(quantum))


def run_query(
    plan: QueryPlan,
    policy: Policy,
    tables: dict[str, ColumnarTable],
    noise: NoiseSource,
    random_bytes: Callable[[int], bytes],
) -> Release:
    privacy = policy.privacy
    l0, linf = privacy.max_cohorts_per_user, privacy.max_rows_per_user
    labels, n_cells = _cohort_labels(policy, plan.group_by)

    metric = plan.metric_spec
    sens = compute.sensitivities(
        max_cohorts_per_user=l0, max_rows_per_user_per_cohort=linf, max_rows_per_user=linf,
        lo=metric.min if metric else 0, hi=metric.max if metric else 0,
    )
    # Without group_by, a person changes the single count by at most one.
    statistics = [_Statistic("users", sens.users_l1 if plan.group_by else 1)]
    if plan.analysis.kind == "aggregate":
        assert metric is not None and plan.metric is not None
        metric_dataset = policy.dataset(plan.metric.dataset)
        assert metric_dataset is not None
        compute.check_no_overflow(metric_dataset.max_rows, metric.min, metric.max)
        statistics += [_Statistic("rows", sens.rows_l1), _Statistic("sum", sens.metric_l1)]
    epsilon_each = plan.epsilon / len(statistics)
    scales = {s.name: Fraction(s.sensitivity) / epsilon_each for s in statistics}
    # Noise first: its amount and timing cannot depend on the data.
    noise_draws = {s.name: noise.laplace(scales[s.name], n_cells) for s in statistics}

    left_name, right_name = policy.join
    left, right = tables[left_name], tables[right_name]
    match = compute.match_users(left.ids, right.ids)
    row_user_of = {left_name: match.left_user, right_name: match.right_user}

    counts = _true_counts(plan, policy, tables, row_user_of, match.n_matched, l0, linf, random_bytes)

    users = [max(0, int(v) + d) for v, d in zip(counts.users, noise_draws["users"], strict=True)]
    released_rows: list[list[Any]] = []
    suppressed = 0
    for cell in range(n_cells):
        if users[cell] < privacy.min_cohort_size:
            suppressed += 1
            continue
        row: list[Any] = [*labels[cell], users[cell]]
        if plan.analysis.kind == "aggregate":
            assert plan.metric_spec is not None and counts.rows is not None
            scale = plan.metric_spec.scale
            rows = max(0, int(counts.rows[cell]) + noise_draws["rows"][cell])
            total = Fraction(int(counts.metric_sum[cell]) + noise_draws["sum"][cell], 10**scale)
            row += [rows, _fixed_point_text(total, scale),
                    _fixed_point_text(total / users[cell], scale)]
        released_rows.append(row)

    columns = [ref.column for ref in plan.group_by] + ["matched_users"]
    if plan.analysis.kind == "aggregate":
        assert plan.metric is not None
        columns = [ref.column for ref in plan.group_by] + [
            "users", "rows", f"{plan.metric.column}_sum", f"{plan.metric.column}_mean_per_user"]
    return Release(columns, released_rows, {
        "mechanism": noise.mechanism,
        "epsilon_charged": str(plan.epsilon),
        "epsilon_per_statistic": str(epsilon_each),
        "noise_scale": {name: str(scale) for name, scale in scales.items()},
        "sensitivity": {s.name: s.sensitivity for s in statistics},
        "min_cohort_size": privacy.min_cohort_size,
        "cohorts_total": n_cells,
        "suppressed_cohorts": suppressed,
        "contribution_bounds": {"max_cohorts_per_user": l0, "max_rows_per_user": linf},
        "clamps": ({str(plan.metric): [str(Fraction(plan.metric_spec.min, 10**plan.metric_spec.scale)),
                                       str(Fraction(plan.metric_spec.max, 10**plan.metric_spec.scale))]}
                   if plan.metric and plan.metric_spec else {}),
    })


@dataclass(frozen=True)
class _Counts:
    users: np.ndarray
    rows: np.ndarray | None
    metric_sum: np.ndarray | None


def _true_counts(plan: QueryPlan, policy: Policy, tables: dict[str, ColumnarTable],
                 row_user_of: dict[str, np.ndarray], n_matched: int, l0: int, linf: int,
                 random_bytes: Callable[[int], bytes]) -> _Counts:
    if not plan.group_by:
        return _Counts(np.array([n_matched], dtype=np.int64), None, None)

    group_dataset = plan.group_by[0].dataset
    table = tables[group_dataset]
    row_user = row_user_of[group_dataset]
    matched = row_user >= 0
    dataset = policy.dataset(group_dataset)
    assert dataset is not None
    dims = [table.column(ref.column)[matched] for ref in plan.group_by]
    sizes = [len(dataset.dimension(ref.column).values) for ref in plan.group_by]  # type: ignore[union-attr]
    row_cohort, n_cohorts = compute.cohort_codes(dims, sizes)
    users_of_rows = row_user[matched]
    keep = compute.bound_contributions(
        users_of_rows, row_cohort, n_matched,
        max_cohorts_per_user=l0, max_rows_per_user_per_cohort=linf, random_bytes=random_bytes,
        n_cohorts=n_cohorts,
    )
    user_metric = None
    if plan.metric is not None and plan.metric_spec is not None:
        metric_user = row_user_of[plan.metric.dataset]
        metric_matched = metric_user >= 0
        values = tables[plan.metric.dataset].column(plan.metric.column)[metric_matched]
        user_metric = compute.per_user_metric(
            metric_user[metric_matched], values, n_matched,
            lo=plan.metric_spec.min, hi=plan.metric_spec.max, max_rows_per_user=linf,
            random_bytes=random_bytes,
        )
    result = compute.aggregate(users_of_rows, row_cohort, n_cohorts, user_metric, keep)
    return _Counts(result.users, result.rows, result.metric_sum)
