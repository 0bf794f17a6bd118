"""``overlap`` and ``aggregate``: per cohort, the distinct matched units (and kept rows and metric sum).

``run`` bounds each unit's rows (``Job.bounded_rows``) and metric total
(``bounding.per_user_metric``), counts per cohort (``aggregation.aggregate``), adds the pre-drawn
noise and releases the cohorts the ``Selection`` allows. Means are noisy sum / noisy users
(post-processing). What one unit can change in each vector: ``protocol/privacy/statistics.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from enclave.engine.aggregation import aggregate
from enclave.engine.analysis_base import Job, Output
from enclave.engine.bounding import per_user_metric
from enclave.engine.cohorts import Selection, cohort_labels, fixed_point_text

__all__ = ["run"]


@dataclass(frozen=True)
class _Counts:
    users: np.ndarray
    rows: np.ndarray | None
    metric_sum: np.ndarray | None


def _true_counts(job: Job) -> _Counts:
    plan, privacy = job.plan, job.privacy
    if not plan.group_by:  # one cohort: everyone matched
        match, _ = job.match()
        return _Counts(np.array([match.n_matched], dtype=np.int64), None, None)
    rows = job.bounded_rows(plan.group_by[0].dataset)
    match, row_user_of = rows.match, rows.row_user_of
    user_metric = None
    if plan.metric is not None and plan.metric_spec is not None:
        # Every row of the metric's dataset, unmatched ones coded -1 (never kept): no copy.
        user_metric = per_user_metric(
            row_user_of[plan.metric.dataset], job.tables[plan.metric.dataset].column(plan.metric.column),
            match.n_matched, lo=plan.metric_spec.min, hi=plan.metric_spec.max,
            max_rows_per_user=privacy.max_rows_per_user, random_bytes=job.random_bytes,
            row_tag=job.row_tags(plan.metric.dataset),
        )
    result = aggregate(rows.users, rows.cohorts, rows.n_cohorts, user_metric, rows.keep)
    return _Counts(result.users, result.rows, result.metric_sum)


def run(job: Job, noisy: dict[str, list[int]], selection: Selection) -> Output:
    plan = job.plan
    labels = cohort_labels(job.policy, plan.group_by)
    counts = _true_counts(job)
    users = [max(0, int(v) + d) for v, d in zip(counts.users, noisy["users"], strict=True)]
    rows: list[list[Any]] = []
    suppressed = 0
    for cell, label in enumerate(labels):
        if not selection.releases(users[cell]):
            suppressed += 1
            continue
        row: list[Any] = [*label, users[cell]]
        if plan.analysis.kind == "aggregate":
            assert plan.metric_spec is not None and counts.rows is not None and counts.metric_sum is not None
            scale = plan.metric_spec.scale
            n_rows = max(0, int(counts.rows[cell]) + noisy["rows"][cell])
            total = Fraction(int(counts.metric_sum[cell]) + noisy["sum"][cell], 10**scale)
            row += [n_rows, fixed_point_text(total, scale), fixed_point_text(total / users[cell], scale)]
        rows.append(row)

    columns = [ref.column for ref in plan.group_by] + ["matched_users"]
    if plan.analysis.kind == "aggregate":
        assert plan.metric is not None
        columns = [ref.column for ref in plan.group_by] + [
            "users", "rows", f"{plan.metric.column}_sum", f"{plan.metric.column}_mean_per_user"]
    return Output(columns, rows, len(labels), suppressed)
