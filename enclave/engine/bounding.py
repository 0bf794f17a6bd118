"""Contribution bounding: which rows of each matched user a query may use (arrays in, arrays out).

The bounds are the policy's: L0 cohorts per user, Linf rows per (user, cohort) and Linf_m rows
per user for a metric, each kept row a uniform choice made with the injected CSPRNG. What these
bounds let one user change is derived, from the policy alone, in ``protocol/privacy/statistics.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from protocol.errors import InvalidInput

__all__ = ["RandomBytes", "bound_contributions", "per_user_metric"]

RandomBytes = Callable[[int], bytes]


def _priorities(random_bytes: RandomBytes, n: int) -> np.ndarray:
    raw = random_bytes(8 * n)
    if len(raw) != 8 * n:
        raise InvalidInput("random source returned the wrong number of bytes")
    return np.frombuffer(raw, dtype="<u8")


def _random_order(groups: np.ndarray, n_groups: int, random_bytes: RandomBytes) -> np.ndarray:
    """Permutation sorting rows by group, uniformly shuffled inside each group.

    The random priority fills the bits the group number leaves free (>= 24 of them here);
    equal priorities inside a group (chance below k²/2^25 for k rows) fall back to the sort's
    own order. Privacy does not rest on this uniformity: only on the bounds being enforced.
    """
    prio = _priorities(random_bytes, len(groups))
    group_bits = max(1, (n_groups - 1).bit_length())
    if group_bits > 40:
        return np.lexsort((prio, groups))
    key = groups.astype(np.uint64) << np.uint64(64 - group_bits)
    key |= prio >> np.uint64(group_bits)
    return np.argsort(key)


def _rank_in_runs(sorted_groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... inside each run of equal values of a sorted array."""
    n = len(sorted_groups)
    new = np.ones(n, dtype=bool)
    new[1:] = sorted_groups[1:] != sorted_groups[:-1]
    starts = np.flatnonzero(new)
    return np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))


def _keep_first(groups: np.ndarray, n_groups: int, limit: int,
                random_bytes: RandomBytes) -> np.ndarray:
    """Mask keeping ``limit`` uniformly chosen elements of every group (all when fewer)."""
    if limit >= len(groups):  # a public-shape shortcut: nothing can exceed the limit
        return np.ones(len(groups), dtype=bool)
    order = _random_order(groups, n_groups, random_bytes)
    keep = np.zeros(len(groups), dtype=bool)
    keep[order[_rank_in_runs(groups[order]) < limit]] = True
    return keep


def bound_contributions(
    row_user: np.ndarray, row_cohort: np.ndarray, n_users: int, *,
    max_cohorts_per_user: int, max_rows_per_user_per_cohort: int, random_bytes: RandomBytes,
    n_cohorts: int | None = None,
) -> np.ndarray:
    """Keep-mask bounding each matched user to L0 cohorts and Linf rows per (user, cohort).

    Rows with ``row_user == -1`` are never kept. The L0 cohorts of a user are a uniform subset
    of its cohorts (one random priority per (user, cohort) pair); the Linf rows of a pair are a
    uniform subset of its rows. ``random_bytes`` is the session's injected CSPRNG.
    """
    l0, linf = max_cohorts_per_user, max_rows_per_user_per_cohort
    if l0 < 1 or linf < 1:
        raise InvalidInput("contribution bounds must be at least 1")
    rows = np.flatnonzero(row_user >= 0)
    keep = np.zeros(len(row_user), dtype=bool)
    if len(rows) == 0:
        return keep
    cohorts = row_cohort[rows]
    n_c = int(cohorts.max()) + 1 if n_cohorts is None else n_cohorts
    if n_users * n_c > 2**62:
        raise InvalidInput("too many user-cohort pairs")
    pair = row_user[rows] * n_c + cohorts
    row_ok = _keep_first(pair, n_users * n_c, linf, random_bytes)
    if l0 < n_c:  # a user can hold at most n_c cohorts, so otherwise nothing to drop
        pairs, pair_of_row = np.unique(pair, return_inverse=True)
        pair_ok = _keep_first(pairs // n_c, n_users, l0, random_bytes)
        row_ok &= pair_ok[pair_of_row]
    keep[rows[row_ok]] = True
    return keep


def per_user_metric(
    row_user: np.ndarray, values: np.ndarray, n_users: int, *,
    lo: int, hi: int, max_rows_per_user: int, random_bytes: RandomBytes,
) -> np.ndarray:
    """Exact int64 metric total per matched user over at most Linf_m uniformly chosen rows.

    Each row is clamped to [lo, hi] first. The caller has run ``aggregation.check_no_overflow``
    for this table, so the integer sums below cannot wrap.
    """
    if max_rows_per_user < 1 or lo > hi:
        raise InvalidInput("metric bounds are invalid")
    rows = np.flatnonzero(row_user >= 0)
    users = row_user[rows]
    clamped = np.clip(values[rows], lo, hi).astype(np.int64, copy=False)
    keep = _keep_first(users, n_users, max_rows_per_user, random_bytes)
    totals = np.zeros(n_users, dtype=np.int64)
    np.add.at(totals, users[keep], clamped[keep])  # integer scatter-add: exact, no float
    return totals
