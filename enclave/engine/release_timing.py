"""Release a result at a time that depends only on the query's public shape.

Exact samplers take longer for larger noise, and joins and bounding take longer for some data
(docs/privacy.md; Jin et al. 2022). So a result, or an error raised after the budget was charged,
leaves ``run_query`` no earlier than a deadline from the policy and query alone (cells, kind,
the joined datasets' declared ``max_rows``): a worst-case cost model, not a typical cost nor the
rows uploaded, so no input a party controls pushes a query past it (ids are re-keyed before the
join, ``join.join_keys``, so none reach the exact fallback by design). On an overrun the
release waits for the next deadline doubling, so an overrun leaks at most log2 of its size.

Timing is not on the noise path, so plain floats (seconds) are fine here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from protocol.query_plan import Plan

__all__ = ["BASE_S", "GROWTH_PER_DOUBLING", "PER_CELL_S", "PER_ROW_S", "PER_ROW_S_BY_KIND",
           "REFERENCE_ROWS", "plan_cost_kind", "release_deadline", "wait_for_release"]

BASE_S = 0.1  # fixed: authorization, first-call warm-up (thread pools, key schedules); up to
# 0.05 s measured at 2,000 rows per dataset (benchmarks/release_floor.py)
PER_CELL_S = 400e-6  # up to four exact draws per cell at ≥ 10k draws/s (discrete Gaussian, σ ≈ 1)
# Per declared row, up to REFERENCE_ROWS: about 2x (plans: at least 1.66x) the worst that
# ``python -m benchmarks.release_floor --rows 10000000`` measured over its adversarial shapes
# (every row matched; 8 rows per person, so the bounds bind; 1,000 persons; none matched),
# keyed-id cache cold, on a 2-core VM at load 0.9-1.2 (benchmarks/RESULTS.md), in µs: overlap
# 0.14, aggregate 0.19, reach 0.15, attribution 0.63, activation 0.15, a plan 0.48 (a LEFT
# JOIN: its unmatched persons are coded by a sort of their 32-byte ids), a plan that counts one
# dataset's own persons (the lift: it codes and bounds every row of that dataset) 0.64.
PER_ROW_S_BY_KIND = {"overlap": 3e-7, "aggregate": 4e-7, "reach_frequency": 3e-7,
                     "attribution": 1.2e-6, "cohort_activation": 3e-7,
                     "plan": 8e-7, "plan_dataset_persons": 1.2e-6}
PER_ROW_S = max(PER_ROW_S_BY_KIND.values())  # for an unnamed kind
REFERENCE_ROWS = 20_000_000  # declared rows (two datasets of 10M) the constants were measured at
# Beyond it the cost per row grows: sorts are n log n and less of the data stays in cache.
# Measured from 10M to 100M rows per dataset: the core x1.23-1.46, with binding bounds
# x1.32-1.45, the plan engine x1.30 (3.3 doublings); from 2M to 10M at most x1.39 (2.3 doublings,
# the bounding code of the time). So +20% per doubling.
GROWTH_PER_DOUBLING = 0.2


def plan_cost_kind(plan: Plan) -> str:
    """The cost kind a free-form plan is padded as: counting one dataset's own persons
    (``COUNT(DISTINCT x.person)``) bounds every row of that dataset, not only matched ones."""
    if any(a.fn == "count_distinct" and a.arg != "person" for a in plan.select):
        return "plan_dataset_persons"
    return "plan"


def release_deadline(n_cells: int, max_rows: int = 0, kind: str | None = None) -> float:
    """Seconds after a query's start at which its result may leave (``max_rows``: the sum over
    the joined datasets of the policy's ``max_rows``, never the rows actually uploaded)."""
    if n_cells < 0 or max_rows < 0:
        raise ValueError("shape must be non-negative")
    growth = 1.0
    if max_rows > REFERENCE_ROWS:
        growth += GROWTH_PER_DOUBLING * math.log2(max_rows / REFERENCE_ROWS)
    per_row = PER_ROW_S_BY_KIND.get(kind or "", PER_ROW_S)
    return BASE_S + PER_CELL_S * n_cells + per_row * growth * max_rows


def wait_for_release(started: float, deadline_s: float, *, clock: Callable[[], float],
                     sleep: Callable[[float], None]) -> float:
    """Sleep until ``started + deadline_s`` (or the next doubling if that has passed).

    Returns the padded duration. ``clock`` (seconds) and ``sleep`` are the session's, injected:
    the deadline is measured on ``clock``, and ``sleep`` is asked once for what remains (a sleep
    lasts at least as long as asked; under Gramine the host serves both anyway).
    """
    target = deadline_s
    elapsed = clock() - started
    while elapsed > target:
        target *= 2
    if target > elapsed:
        sleep(target - elapsed)
    return target
