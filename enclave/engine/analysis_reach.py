"""``reach_frequency``: per cohort, the distinct matched units reached and a capped frequency histogram.

The exposures are the rows of the analysis's ``events`` dataset. ``run`` bounds them
(``Job.bounded_rows``), counts each unit's kept rows per cohort into buckets 1, 2, ..., F-1,
"F or more" (``aggregation.frequency_histogram``), adds the pre-drawn noise and releases the
cohorts the ``Selection`` allows. What one unit can change: ``protocol/privacy/statistics.py``.
"""

from __future__ import annotations

from typing import Any

from enclave.engine.aggregation import frequency_histogram
from enclave.engine.analysis_base import Job, Output
from enclave.engine.cohorts import Selection, cohort_labels

__all__ = ["run"]


def run(job: Job, noisy: dict[str, list[int]], selection: Selection) -> Output:
    plan = job.plan
    events, f = plan.analysis.events, plan.analysis.max_frequency
    assert events is not None and f is not None
    bounded = job.bounded_rows(events)
    histogram = frequency_histogram(bounded.users[bounded.keep], bounded.cohorts[bounded.keep],
                                    bounded.n_cohorts, f)
    reach = histogram.sum(axis=1)

    labels = cohort_labels(job.policy, plan.group_by)
    rows: list[list[Any]] = []
    suppressed = 0
    for cell, label in enumerate(labels):
        noisy_reach = max(0, int(reach[cell]) + noisy["reach"][cell])
        if not selection.releases(noisy_reach):
            suppressed += 1
            continue
        buckets = [max(0, int(histogram[cell, b]) + noisy["frequency"][cell * f + b]) for b in range(f)]
        rows.append([*label, noisy_reach, *buckets])
    columns = [ref.column for ref in plan.group_by] + ["reach"]
    columns += [f"frequency_{i}" for i in range(1, f)] + [f"frequency_{f}_plus"]
    return Output(columns, rows, len(labels), suppressed, {"max_frequency": f})
