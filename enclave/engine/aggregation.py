"""Per-cohort aggregation and histograms over kept rows, and the overflow proof that precedes them.

Exact int64 arithmetic throughout (integer scatter-adds, no float), arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocol.errors import InvalidInput

__all__ = ["AggregateCounts", "aggregate", "check_no_overflow", "cohort_pairs", "frequency_histogram",
           "per_cohort_total"]

_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class AggregateCounts:
    users: np.ndarray  # int64[n_cohorts]: distinct matched users with a kept row in the cohort
    rows: np.ndarray  # int64[n_cohorts]: kept rows of matched users
    metric_sum: np.ndarray | None  # int64[n_cohorts], or None when no metric was given


def check_no_overflow(max_rows: int, lo: int, hi: int) -> int:
    """Prove, before any data is read, that no int64 sum of the engine can overflow.

    Every sum the engine forms (a user's metric total in ``bounding.per_user_metric``, a cohort's
    ``metric_sum``, every partial sum inside ``np.add.at``) adds distinct rows of one metric
    table, each clamped to [lo, hi]: ``metric_sum`` adds the totals of *distinct* users, whose
    row sets are disjoint. So its magnitude is at most ``max_rows · C`` with C = max(|lo|, |hi|)
    and ``max_rows`` the policy's row limit of that table. Returns that bound; raises
    ``InvalidInput`` if it exceeds 2^63 - 1 or the clamp is malformed.
    """
    if not (-_INT64_MAX <= lo <= hi <= _INT64_MAX) or max_rows < 0:
        raise InvalidInput("metric clamp or row limit is invalid")
    bound = max_rows * max(abs(lo), abs(hi))
    if bound > _INT64_MAX:
        raise InvalidInput("row limit times metric clamp could overflow a 64-bit sum")
    return bound


def cohort_pairs(row_user: np.ndarray, row_cohort: np.ndarray, n_cohorts: int,
                 keep_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept rows' cohorts, and every distinct (user, cohort) pair among them, as
    (row cohorts, pair users, pair cohorts): one sort serves every per-cohort count and sum.

    The arrays may span a whole table: rows with ``row_user == -1`` are never counted. Each
    step works in place where it can, as every row may be kept (every row matched, say)."""
    sel = row_user >= 0
    sel &= keep_mask
    cohorts = row_cohort[sel]
    if len(cohorts) and (int(cohorts.min()) < 0 or int(cohorts.max()) >= n_cohorts):
        raise InvalidInput("cohort code out of range")
    pair = row_user[sel].astype(np.int64, copy=False)  # a fresh array either way: ours to change
    del sel
    pair *= n_cohorts
    pair += cohorts
    pair.sort()
    distinct = np.ones(len(pair), dtype=bool)
    distinct[1:] = pair[1:] != pair[:-1]
    pair = pair[distinct]
    del distinct
    pair_user = np.empty_like(pair)
    np.divmod(pair, n_cohorts, out=(pair_user, pair))  # the cohorts overwrite the pair codes
    return cohorts, pair_user, pair


def per_cohort_total(pair_user: np.ndarray, pair_cohort: np.ndarray, n_cohorts: int,
                     user_value: np.ndarray) -> np.ndarray:
    """Each cohort's sum of its users' values, each user once (exact int64)."""
    total = np.zeros(n_cohorts, dtype=np.int64)
    np.add.at(total, pair_cohort, user_value[pair_user])
    return total


def aggregate(
    row_user: np.ndarray, row_cohort: np.ndarray, n_cohorts: int,
    user_metric: np.ndarray | None, keep_mask: np.ndarray,
) -> AggregateCounts:
    """Per-cohort distinct users, kept rows and metric sum (each user's total once per cohort).

    Rows with ``row_user == -1`` are never counted (as in ``cohort_pairs``)."""
    cohorts, pair_user, pair_cohort = cohort_pairs(row_user, row_cohort, n_cohorts, keep_mask)
    rows = np.bincount(cohorts, minlength=n_cohorts).astype(np.int64, copy=False)
    n_users = np.bincount(pair_cohort, minlength=n_cohorts).astype(np.int64, copy=False)
    metric = None if user_metric is None else per_cohort_total(pair_user, pair_cohort, n_cohorts,
                                                               user_metric)
    return AggregateCounts(n_users, rows, metric)


def frequency_histogram(row_user: np.ndarray, row_cohort: np.ndarray, n_cohorts: int,
                        max_frequency: int) -> np.ndarray:
    """int64[n_cohorts, F]: units per cohort by their number of rows, the last bucket being ≥ F.

    Pass only kept rows of matched units (``row_user >= 0``); each (unit, cohort) pair with r
    rows adds one to bucket min(r, F) - 1 of its cohort.
    """
    if max_frequency < 1:
        raise InvalidInput("max_frequency must be at least 1")
    pair = row_user.astype(np.int64)  # a copy: sorted in place below
    pair *= n_cohorts
    pair += row_cohort
    pair.sort()
    new = np.ones(len(pair), dtype=bool)
    new[1:] = pair[1:] != pair[:-1]
    starts = np.flatnonzero(new)
    per_pair = np.diff(np.append(starts, len(pair)))
    cohort = pair[starts] % n_cohorts
    bucket = np.minimum(per_pair, max_frequency) - 1
    flat = np.bincount(cohort * max_frequency + bucket, minlength=n_cohorts * max_frequency)
    return flat.astype(np.int64, copy=False).reshape(n_cohorts, max_frequency)
