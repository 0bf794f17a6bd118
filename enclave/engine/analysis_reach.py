"""``reach_frequency``: distinct matched units reached per cohort and a capped frequency histogram.

The exposures are the rows of the analysis's ``events`` dataset. After bounding (≤ L0 cohorts
per unit, ≤ Linf rows per unit and cohort) a unit's frequency in a cohort is its number of kept
rows, and it falls in exactly one bucket 1, 2, ..., F-1, "F or more" of each of its ≤ k =
min(L0, cohorts) cohorts. So:

* ``reach``:     1 in each of k cohorts                     -> cells_per_unit k, per_cell 1
* ``frequency``: 1 in one bucket of each of k cohorts       -> cells_per_unit k, per_cell 1

Frequencies above Linf cannot occur (the policy requires F ≤ Linf), so the cap loses nothing
the bounding has not already removed.
"""

from __future__ import annotations

from typing import Any

from enclave.engine import compute
from enclave.engine.analysis_base import Job, Output
from enclave.engine.cohorts import Selection, cohort_labels

__all__ = ["run"]



def run(job: Job, noisy: dict[str, list[int]], selection: Selection) -> Output:
    plan = job.plan
    events, f = plan.analysis.events, plan.analysis.max_frequency
    assert events is not None and f is not None
    rows = job.bounded_rows(events)
    histogram = compute.frequency_histogram(rows.users[rows.keep], rows.cohorts[rows.keep],
                                            rows.n_cohorts, f)
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
