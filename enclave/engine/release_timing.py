"""Release a result at a time that depends only on the query's public shape.

Exact samplers take longer for larger noise, and joins and bounding take longer for some data
(docs/privacy.md; Jin et al. 2022). So a result, or an error raised after the budget was charged,
leaves ``run_query`` no earlier than a deadline computed from public numbers only: the cells the
query releases and the rows the host itself uploaded. If the work overruns the deadline, the
release waits for the next deadline doubling, so an overrun leaks at most log2 of its size.

Timing is not on the noise path, so plain floats (seconds) are fine here.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["BASE_S", "PER_CELL_S", "PER_ROW_S", "release_deadline", "wait_for_release"]

BASE_S = 0.02  # fixed cost: authorization, signing, sealing
PER_CELL_S = 400e-6  # up to four exact draws per cell at ≥ 10k draws/s (discrete Gaussian, σ ≈ 1)
# Join, bounding and aggregation: a few sorts over each uploaded row. Measured 0.05-0.14 µs per
# row on the benchmark machine (benchmarks/RESULTS.md); 0.2 µs keeps a margin without padding a
# 1M-row query by seconds. An overrun waits for the next doubling of the deadline.
PER_ROW_S = 2e-7


def release_deadline(n_cells: int, n_rows: int = 0) -> float:
    """Seconds after the start of a query at which its result may leave the enclave."""
    if n_cells < 0 or n_rows < 0:
        raise ValueError("shape must be non-negative")
    return BASE_S + PER_CELL_S * n_cells + PER_ROW_S * n_rows


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
