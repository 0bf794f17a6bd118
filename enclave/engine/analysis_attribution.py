"""``attribution``: conversions among exposed vs unexposed converters, per exposure cohort.

The converters are the distinct units of the metric's dataset (all of them, matched or not); a
converter is *exposed* to a cohort (e.g. a campaign) when a matched row of the ``group_by``
dataset puts it there, with exposures bounded to L0 cohorts per unit. ``run`` releases, per
cohort, the exposed converters, their conversions (≤ Linf rows each) and value (clamped), plus
one "all converters" total; unexposed = noisy total - noisy exposed (post-processing). What one
unit can change in each vector: ``protocol/privacy/statistics.py``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from enclave.engine.aggregation import cohort_pairs
from enclave.engine.analysis_base import Job, Output
from enclave.engine.bounding import bound_contributions, per_user_metric
from enclave.engine.cohorts import Selection, cohort_labels, fixed_point_text, row_cohorts
from enclave.engine.join import UserMatch, unit_codes

__all__ = ["run"]


def _exposed_units(job: Job, match: UserMatch, exposure_user: np.ndarray,
                   matched_to_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(converter unit, cohort) of every kept exposure pair, and the cohort count."""
    plan = job.plan
    exposures = plan.group_by[0].dataset
    # Every exposure row, unmatched ones coded -1 (never kept): no copy of the matched rows.
    row_cohort, n_cohorts = row_cohorts(job.policy, job.tables[exposures], plan.group_by)
    keep = bound_contributions(  # one row per (unit, cohort) shows exposure: Linf = 1
        exposure_user, row_cohort, match.n_matched, max_cohorts_per_user=job.privacy.max_cohorts_per_user,
        max_rows_per_user_per_cohort=1, random_bytes=job.random_bytes, n_cohorts=n_cohorts,
        row_tag=job.row_tags(exposures),
    )
    _, pair_user, pair_cohort = cohort_pairs(exposure_user, row_cohort, n_cohorts, keep)
    return matched_to_unit[pair_user], pair_cohort, n_cohorts


def _true_values(job: Job) -> dict[str, list[int]]:
    plan, privacy = job.plan, job.privacy
    assert plan.metric is not None and plan.metric_spec is not None
    match, row_user_of = job.match()
    table = job.tables[plan.metric.dataset]
    unit, n_units = unit_codes(table.ids)
    linf = privacy.max_rows_per_user
    conversions = np.minimum(np.bincount(unit, minlength=n_units), linf).astype(np.int64)
    value = per_user_metric(unit, table.column(plan.metric.column), n_units,
                            lo=plan.metric_spec.min, hi=plan.metric_spec.max,
                            max_rows_per_user=linf, random_bytes=job.random_bytes,
                            row_tag=job.row_tags(plan.metric.dataset))
    converter_user = row_user_of[plan.metric.dataset]
    matched_to_unit = np.full(match.n_matched, -1, dtype=np.int64)
    matched_to_unit[converter_user[converter_user >= 0]] = unit[converter_user >= 0]
    exposure_user = row_user_of[plan.group_by[0].dataset]
    units, cohorts, n_cohorts = _exposed_units(job, match, exposure_user, matched_to_unit)
    out = {}
    for name, per_unit in (("converters", np.ones(n_units, dtype=np.int64)),
                           ("conversions", conversions), ("value", value)):
        cells = np.zeros(n_cohorts, dtype=np.int64)
        np.add.at(cells, cohorts, per_unit[units])  # exact integer scatter-add
        out[name] = [int(v) for v in cells] + [int(per_unit.sum())]
    return out


def run(job: Job, noisy: dict[str, list[int]], selection: Selection) -> Output:
    plan = job.plan
    assert plan.metric is not None and plan.metric_spec is not None
    labels = cohort_labels(job.policy, plan.group_by)
    true = _true_values(job)
    released = {name: [v + d for v, d in zip(true[name], noisy[name], strict=True)] for name in true}
    total = {name: values[-1] for name, values in released.items()}
    scale = plan.metric_spec.scale
    rows: list[list[Any]] = []
    suppressed = 0
    for cell, label in enumerate(labels):
        exposed = max(0, released["converters"][cell])
        unexposed = max(0, total["converters"] - exposed)
        if not (selection.releases(exposed) and unexposed >= selection.min_cohort_size):
            suppressed += 1
            continue
        exposed_conv = max(0, released["conversions"][cell])
        exposed_value = released["value"][cell]
        rows.append([
            *label, exposed, exposed_conv, fixed_point_text(Fraction(exposed_value, 10**scale), scale),
            unexposed, max(0, total["conversions"] - exposed_conv),
            fixed_point_text(Fraction(total["value"] - exposed_value, 10**scale), scale),
        ])
    metric = plan.metric.column
    columns = [ref.column for ref in plan.group_by] + [
        "exposed_converters", "exposed_conversions", f"exposed_{metric}_sum",
        "unexposed_converters", "unexposed_conversions", f"unexposed_{metric}_sum"]
    return Output(columns, rows, len(labels), suppressed)
