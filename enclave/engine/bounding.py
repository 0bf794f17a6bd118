"""Contribution bounding: which rows of each matched user a query may use (arrays in, arrays out).

The bounds are the policy's: L0 cohorts per user, Linf rows per (user, cohort) and Linf_m rows
per user for a metric, each kept row a uniform choice made with the injected CSPRNG. What these
bounds let one user change is derived, from the policy alone, in ``protocol/privacy/statistics.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from enclave.engine.join import JOIN_KEY_BYTES, prf64
from protocol.errors import InvalidInput

__all__ = ["RandomBytes", "RowTags", "bound_contributions", "per_user_metric"]

RandomBytes = Callable[[int], bytes]
# A row's person tag (the keyed join key), or a function giving all rows' tags: drawn only when
# some person's rows must be chosen from, which the common case of small persons never needs.
RowTags = np.ndarray | Callable[[], np.ndarray] | None


def _random_order(groups: np.ndarray, rank: np.ndarray, n_groups: int, tags: np.ndarray,
                  random_bytes: RandomBytes) -> np.ndarray:
    """Permutation sorting rows by group, uniformly shuffled inside each group.

    The rows a unit keeps depend only on its own rows and the query's randomness (issue 11):
    priorities drawn in row order, or ties left to an unstable sort, would let other units'
    rows change them. So a row's priority is AES, under a fresh key from the session's CSPRNG,
    of (its person's ``tag``, its ``rank`` among its group's rows in table order); a group is
    one unit's, and permuting other units' rows changes neither. Distinct inputs give distinct
    AES blocks, uniform up to PRP advantage: a uniform shuffle. Truncated-priority ties fall
    to the stable sort, i.e. the unit's own row order. Privacy rests only on the bounds.
    """
    key = random_bytes(JOIN_KEY_BYTES)
    if len(key) != JOIN_KEY_BYTES:
        raise InvalidInput("random source returned the wrong number of bytes")
    prio = prf64(key, tags, rank.astype(np.uint64))
    group_bits = max(1, (n_groups - 1).bit_length())
    if group_bits > 40:
        return np.lexsort((rank, prio, groups))
    packed = groups.astype(np.uint64) << np.uint64(64 - group_bits)
    packed |= prio >> np.uint64(group_bits)
    return np.argsort(packed, kind="stable")


def _rank_in_runs(sorted_groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... inside each run of equal values of a sorted array."""
    n = len(sorted_groups)
    new = np.ones(n, dtype=bool)
    new[1:] = sorted_groups[1:] != sorted_groups[:-1]
    starts = np.flatnonzero(new)
    return np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))


def _keep_first(groups: np.ndarray, n_groups: int, limit: int, tags: np.ndarray,
                random_bytes: RandomBytes) -> np.ndarray:
    """Mask keeping ``limit`` uniformly chosen elements of every group (all when fewer); one
    stable sort ranks rows in their group, and only groups over the limit are shuffled."""
    keep = np.ones(len(groups), dtype=bool)
    if limit >= len(groups):  # a public-shape shortcut: nothing can exceed the limit
        return keep
    order = np.argsort(groups, kind="stable")
    rank = _rank_in_runs(groups[order])
    run = np.cumsum(rank == 0) - 1
    over_at = np.bincount(run)[run] > limit  # positions (in ``order``) of over-limit groups
    over = order[over_at]
    sub = groups[over]
    sub_order = _random_order(sub, rank[over_at], n_groups, tags[over], random_bytes)
    keep[over] = False
    keep[over[sub_order[_rank_in_runs(sub[sub_order]) < limit]]] = True
    return keep


def _tags(row_user: np.ndarray, row_tag: RowTags) -> np.ndarray:
    tags = row_user if row_tag is None else row_tag() if callable(row_tag) else row_tag
    if tags.shape != row_user.shape:
        raise InvalidInput("one tag per row is required")
    return tags.astype(np.uint64, copy=False)


def bound_contributions(
    row_user: np.ndarray, row_cohort: np.ndarray, n_users: int, *,
    max_cohorts_per_user: int, max_rows_per_user_per_cohort: int, random_bytes: RandomBytes,
    n_cohorts: int | None = None, row_tag: RowTags = None,
) -> np.ndarray:
    """Keep-mask bounding each matched user to L0 cohorts and Linf rows per (user, cohort).

    Rows with ``row_user == -1`` are never kept. The L0 cohorts of a user are a uniform subset
    of its cohorts (one random priority per (user, cohort) pair); the Linf rows of a pair are a
    uniform subset of its rows. ``random_bytes`` is the session's injected CSPRNG. ``row_tag``
    names each row's person (the enclave passes its keyed join key); by default the user code.
    """
    l0, linf = max_cohorts_per_user, max_rows_per_user_per_cohort
    if l0 < 1 or linf < 1:
        raise InvalidInput("contribution bounds must be at least 1")
    rows = np.flatnonzero(row_user >= 0)
    keep = np.zeros(len(row_user), dtype=bool)
    if len(rows) == 0:
        return keep
    n_c = int(row_cohort[rows].max()) + 1 if n_cohorts is None else n_cohorts
    # A user with at most min(L0, Linf) rows holds at most that many cohorts and rows per
    # cohort (at most Linf rows, where no more than L0 cohorts exist), so the bounds keep all
    # its rows: only the other users' rows need the sorts below. (Which rows a user keeps still
    # depends only on its own rows and the randomness; the work saved depends on the data,
    # which the release deadline's padding hides.)
    per_user = np.bincount(row_user[rows], minlength=n_users)
    threshold = linf if n_c <= l0 else min(l0, linf)
    if len(per_user) == 0 or int(per_user.max()) <= threshold:  # every user is small
        keep[rows] = True
        return keep
    small = per_user[row_user[rows]] <= threshold
    keep[rows[small]] = True
    rows = rows[~small]
    if len(rows) == 0:
        return keep
    cohorts = row_cohort[rows]
    if n_users * n_c > 2**62:
        raise InvalidInput("too many user-cohort pairs")
    pair = row_user[rows] * n_c + cohorts
    tags = _tags(row_user, row_tag)[rows]
    row_ok = _keep_first(pair, n_users * n_c, linf, tags, random_bytes)
    if l0 < n_c:  # a user can hold at most n_c cohorts, so otherwise nothing to drop
        pairs, first, pair_of_row = np.unique(pair, return_index=True, return_inverse=True)
        pair_ok = _keep_first(pairs // n_c, n_users, l0, tags[first], random_bytes)
        row_ok &= pair_ok[pair_of_row]
    keep[rows[row_ok]] = True
    return keep


def per_user_metric(
    row_user: np.ndarray, values: np.ndarray, n_users: int, *,
    lo: int, hi: int, max_rows_per_user: int, random_bytes: RandomBytes,
    row_tag: RowTags = None,
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
    keep = _keep_first(users, n_users, max_rows_per_user, _tags(row_user, row_tag)[rows],
                       random_bytes)
    totals = np.zeros(n_users, dtype=np.int64)
    np.add.at(totals, users[keep], clamped[keep])  # integer scatter-add: exact, no float
    return totals
