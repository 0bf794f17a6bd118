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

from collections.abc import Callable

__all__ = ["BASE_S", "PER_CELL_S", "PER_ROW_S", "PER_ROW_S_BY_KIND", "release_deadline", "wait_for_release"]

BASE_S = 0.02  # fixed cost: authorization, signing, sealing
PER_CELL_S = 400e-6  # up to four exact draws per cell at ≥ 10k draws/s (discrete Gaussian, σ ≈ 1)
# Per row of max_rows: the worst measured (µs: overlap 0.50, aggregate 0.58, reach 0.42,
# attribution 1.42, activation 0.27) over adversarial shapes (all rows matched, 8 rows per user,
# 1,000 users, crafted prefixes, none matched), keyed-id cache cold, 2M rows per side, 2-core
# VM at load ~1.5; times ~1.4.
PER_ROW_S_BY_KIND = {"overlap": 7e-7, "aggregate": 8e-7, "reach_frequency": 6e-7,
                     "attribution": 2e-6, "cohort_activation": 4e-7}
PER_ROW_S = max(PER_ROW_S_BY_KIND.values())  # for an unnamed kind


def release_deadline(n_cells: int, max_rows: int = 0, kind: str | None = None) -> float:
    """Seconds after a query's start at which its result may leave (``max_rows``: the sum over
    the joined datasets of the policy's ``max_rows``, never the rows actually uploaded)."""
    if n_cells < 0 or max_rows < 0:
        raise ValueError("shape must be non-negative")
    return BASE_S + PER_CELL_S * n_cells + PER_ROW_S_BY_KIND.get(kind or "", PER_ROW_S) * max_rows


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
