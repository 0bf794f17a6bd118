"""Contribution bounding's memory (tracemalloc: bytes per input row, never time), and that its
chunked and packed paths choose exactly the rows of the plain ones (issue 13)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest

from enclave.engine import bounding

ROWS = 2_000_000
# Measured 22-25 B/row at 2M rows, 17-18 at 5M (one packed int64 key per bounded row, masks,
# and fixed-size chunks: less per row as rows grow); before issue 13: 100-130. A generous margin.
MAX_BYTES_PER_ROW = 40


def _stream(seed: int) -> Callable[[int], bytes]:
    rng = np.random.default_rng(seed)
    return lambda k: rng.bytes(k)


def _rows(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Users with 1..40 rows in table order shuffled, half spread over 301 cohorts and half
    over a few favourites; one tag per person."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 41, size=n // 10)
    sizes = sizes[np.cumsum(sizes) <= n]
    users = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    favourite = rng.integers(0, 301, size=(len(sizes), 4))[users, rng.integers(0, 4, len(users))]
    cohorts = np.where(users % 2 == 0, rng.integers(0, 301, len(users)), favourite)
    order = rng.permutation(len(users))
    users, cohorts = users[order], cohorts[order]
    tags = rng.integers(0, 2**63, size=len(sizes), dtype=np.int64).astype(np.uint64)[users]
    return users, cohorts, len(sizes), tags


def _peak_per_row(fn: Callable[[], object], n: int) -> float:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return (tracemalloc.get_traced_memory()[1] - base) / n
    finally:
        tracemalloc.stop()


def test_bound_contributions_peak_per_row() -> None:
    users, cohorts, n_users, tags = _rows(ROWS)
    for l0, linf in ((5, 10), (5, 1), (1, 10)):
        peak = _peak_per_row(lambda: bounding.bound_contributions(
            users, cohorts, n_users, max_cohorts_per_user=l0, max_rows_per_user_per_cohort=linf,  # noqa: B023 (called at once)
            random_bytes=_stream(3), n_cohorts=301, row_tag=tags), len(users))
        assert peak < MAX_BYTES_PER_ROW, (l0, linf, peak)


def test_per_user_metric_peak_per_row() -> None:
    users, _, n_users, tags = _rows(ROWS)
    values = np.random.default_rng(2).integers(-100, 10**6, len(users))
    peak = _peak_per_row(lambda: bounding.per_user_metric(
        users, values, n_users, lo=0, hi=10**5, max_rows_per_user=10, random_bytes=_stream(4),
        row_tag=tags), len(users))
    assert peak < MAX_BYTES_PER_ROW, peak


@pytest.mark.parametrize("seed", range(6))
def test_chunks_batches_and_the_unpacked_sort_keep_the_same_rows(seed: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    users = rng.integers(-1, 60, n)
    users[: n // 4] = 7  # one big user
    cohorts = rng.integers(0, 9, n)
    tags = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    values = rng.integers(0, 1000, n)

    def run() -> tuple[np.ndarray, np.ndarray, bytes]:
        stream = _stream(seed)
        keep = bounding.bound_contributions(users, cohorts, 60, max_cohorts_per_user=3,
                                            max_rows_per_user_per_cohort=4, random_bytes=stream,
                                            n_cohorts=9, row_tag=tags)
        totals = bounding.per_user_metric(users, values, 60, lo=0, hi=500, max_rows_per_user=5,
                                          random_bytes=stream, row_tag=tags)
        return keep, totals, stream(8)  # the stream's state after: the same draws were made

    keep, totals, after = run()
    assert 0 < keep.sum() < (users >= 0).sum()
    for chunk, batch, pack in ((7, 3, 63), (1 << 18, 1 << 18, 4), (5, 1, 4)):
        monkeypatch.setattr(bounding, "_CHUNK", chunk)
        monkeypatch.setattr(bounding, "_BATCH", batch)
        monkeypatch.setattr(bounding, "_PACK_BITS", pack)
        other = run()
        assert np.array_equal(other[0], keep) and np.array_equal(other[1], totals) and other[2] == after
