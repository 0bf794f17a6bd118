"""Contribution bounding: which rows of each matched user a query may use (arrays in, arrays out).

The bounds are the policy's: L0 cohorts per user, Linf rows per (user, cohort) and Linf_m rows
per user for a metric, each kept row a uniform choice made with the injected CSPRNG. What these
bounds let one user change is derived, from the policy alone, in ``protocol/privacy/statistics.py``.

Memory (issue 13): the rows to choose from are sorted once, by (user, cohort, row), as one packed
int64 each, in place; every other per-row array is a bool or int8 mask, int32 run bounds, or is
built a chunk at a time, and only over-limit runs are shuffled, a batch at a time: 17-25 bytes
per input row measured at 2-5M rows, 100-130 before (``tests/enclave/test_bounding_memory.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from enclave.engine.join import JOIN_KEY_BYTES, prf64
from protocol.errors import InvalidInput

__all__ = ["RandomBytes", "RowTags", "bound_contributions", "per_user_metric"]

RandomBytes = Callable[[int], bytes]
# Each row's person tag (the keyed join key); read only at the rows that must be chosen from.
RowTags = np.ndarray | None

_CHUNK = 1 << 18  # elements per step wherever a whole-length temporary would otherwise be made
_PACK_BITS = 63  # pair code and row index share one non-negative int64 when they fit
_BATCH = 1 << 18  # elements of over-limit runs shuffled at a time (~30 bytes each meanwhile)


def _fresh_key(random_bytes: RandomBytes) -> bytes:
    key = random_bytes(JOIN_KEY_BYTES)
    if len(key) != JOIN_KEY_BYTES:
        raise InvalidInput("random source returned the wrong number of bytes")
    return key


def _random_order(groups: np.ndarray, rank: np.ndarray, n_groups: int, tags: np.ndarray,
                  key: bytes) -> np.ndarray:
    """Permutation sorting rows by group, uniformly shuffled inside each group.

    The rows a unit keeps depend only on its own rows and the query's randomness (issue 11):
    priorities drawn in row order, or ties left to an unstable sort, would let other units'
    rows change them. So a row's priority is AES, under a fresh ``key`` from the session's
    CSPRNG, of (its person's ``tag``, its ``rank`` among its group's rows in table order); a
    group is one unit's, and permuting other units' rows changes neither. Distinct inputs give
    distinct AES blocks, uniform up to PRP advantage: a uniform shuffle. Truncated-priority ties
    fall to the stable sort, i.e. the unit's own row order. Privacy rests only on the bounds.
    ``groups`` are sorted and below ``n_groups``, which alone sets the truncation.
    """
    prio = prf64(key, tags, rank.astype(np.uint64))
    group_bits = max(1, (n_groups - 1).bit_length())
    if group_bits > 40:
        return np.lexsort((rank, prio, groups))
    packed = groups.astype(np.uint64) << np.uint64(64 - group_bits)
    prio >>= np.uint64(group_bits)
    packed |= prio
    del prio
    return np.argsort(packed, kind="stable")


def _flatnonzero(mask: np.ndarray) -> np.ndarray:
    """``np.flatnonzero``, as int32 when that fits: half the bytes, and NumPy indexes with it."""
    if len(mask) >= 2**30:  # (int32 with room to spare for the sums of ``_excess``)
        return np.flatnonzero(mask)
    out = np.empty(int(np.count_nonzero(mask)), dtype=np.int32)
    at = 0
    for start in range(0, len(mask), _CHUNK):
        found = np.flatnonzero(mask[start:start + _CHUNK])
        found += start
        out[at:at + len(found)] = found
        at += len(found)
    return out


def _run_bounds(values: Callable[[slice], np.ndarray], n: int) -> np.ndarray:
    """Where each run of equal values starts in a sorted sequence of ``n``, then ``n``: run i is
    [bounds[i], bounds[i + 1]). ``values`` reads the sequence a chunk at a time."""
    new = np.empty(n + 1, dtype=bool)
    new[:1] = new[n:] = True
    for start in range(1, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        part = values(slice(start - 1, stop))
        np.not_equal(part[1:], part[:-1], out=new[start:stop])
    return _flatnonzero(new)


def _excess(bounds: np.ndarray, limit: int, n_groups: int, tags_at: Callable[[np.ndarray], np.ndarray],
            key: bytes, drop: Callable[[np.ndarray], None]) -> None:
    """Pass to ``drop`` the indices of the elements to drop so that each run (``_run_bounds``)
    of a sequence keeps ``limit`` uniformly chosen ones, all when it has fewer; ``tags_at``
    gives the tags of elements. Only runs over the limit are shuffled, whole runs of about
    ``_BATCH`` elements at a time (a run's order does not depend on the others')."""
    n_runs, lo = len(bounds) - 1, 0
    while lo < n_runs:
        hi = int(np.searchsorted(bounds, int(bounds[lo]) + _BATCH, side="right")) - 1
        hi = min(max(hi, lo + 1), n_runs)
        first = bounds[lo:hi].astype(np.int64)
        count = np.diff(bounds[lo:hi + 1]).astype(np.int64)
        lo = hi
        over = count > limit
        first, count = first[over], count[over]
        if len(first) == 0:
            continue
        run = np.repeat(np.arange(len(first)), count)
        rank = np.arange(len(run))
        rank -= np.repeat(np.cumsum(count) - count, count)
        at = first[run] + rank  # every element of these over-limit runs, in sequence order
        order = _random_order(run, rank, n_groups, tags_at(at), key)
        # ``order`` permutes inside runs only, so its i-th element's rank in its run is rank[i].
        drop(at[order[rank >= limit]])


class _Sorted:
    """The rows to bound in (user, cohort, row) order: each one's pair code and table row.

    Packed as ``pair << row_bits | row`` in one int64 when both fit (one in-place sort, no
    index array), else two arrays from a stable argsort."""

    def __init__(self, key: np.ndarray, row_bits: int, rows: np.ndarray | None) -> None:
        self.key, self.row_bits, self._rows = key, row_bits, rows

    def pairs(self, at: slice | np.ndarray) -> np.ndarray:
        if self._rows is not None:
            return self.key[at]
        return self.key[at] >> self.row_bits  # a new array: the key stays

    def rows(self, at: slice | np.ndarray) -> np.ndarray:
        if self._rows is not None:
            return self._rows[at]
        return self.key[at] & ((1 << self.row_bits) - 1)


def _pair_codes(row_user: np.ndarray, row_cohort: np.ndarray, user_code: np.ndarray, n_c: int,
                rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(user, cohort) code of ``rows``, users renumbered densely in their order."""
    cohorts = row_cohort[rows]
    if len(cohorts) and (int(cohorts.min()) < 0 or int(cohorts.max()) >= n_c):
        raise InvalidInput("cohort code out of range")
    pair: np.ndarray = np.multiply(user_code[row_user[rows]], n_c, out=out)
    pair += cohorts
    return pair


def _sort_rows(row_user: np.ndarray, row_cohort: np.ndarray, user_code: np.ndarray, n_c: int,
               chosen: np.ndarray) -> _Sorted:
    """The ``chosen`` rows sorted by (user, cohort, row)."""
    n_pairs = (int(user_code[-1]) + 1) * n_c
    row_bits = (len(chosen) - 1).bit_length()
    if (n_pairs - 1).bit_length() + row_bits > _PACK_BITS:
        rows = np.flatnonzero(chosen)
        pairs = _pair_codes(row_user, row_cohort, user_code, n_c, rows)
        order = np.argsort(pairs, kind="stable")
        return _Sorted(pairs[order], 0, rows[order])
    key = np.empty(int(np.count_nonzero(chosen)), dtype=np.int64)
    at = 0
    for start in range(0, len(chosen), _CHUNK):
        rows = np.flatnonzero(chosen[start:start + _CHUNK])
        rows += start
        part = key[at:at + len(rows)]
        _pair_codes(row_user, row_cohort, user_code, n_c, rows, out=part)
        part <<= row_bits
        part |= rows
        at += len(rows)
    key.sort()  # in place, with no buffer: the keys are distinct, so stability is not needed
    return _Sorted(key, row_bits, None)


def _tag_source(row_user: np.ndarray, row_tag: RowTags) -> Callable[[np.ndarray], np.ndarray]:
    """The uint64 tags of the rows at given indices."""
    source = row_user if row_tag is None else row_tag
    if source.shape != row_user.shape:
        raise InvalidInput("one tag per row is required")
    return lambda rows: source[rows].astype(np.uint64, copy=False)


def _bound(row_user: np.ndarray, row_cohort: np.ndarray, n_users: int, n_c: int, l0: int,
           linf: int, row_tag: RowTags, random_bytes: RandomBytes) -> tuple[np.ndarray, int]:
    """Keep-mask of ``bound_contributions`` for cohorts in [0, n_c), and how many rows it chose
    from (0: every user was small, and no randomness was drawn)."""
    valid = row_user >= 0
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0:
        return valid, 0
    # A user with at most min(L0, Linf) rows holds at most that many cohorts and rows per
    # cohort (at most Linf rows, where no more than L0 cohorts exist), so the bounds keep all
    # its rows: only the other users' rows need the sorts below. (Which rows a user keeps still
    # depends only on its own rows and the randomness; the work saved depends on the data,
    # which the release deadline's padding hides.)
    per_user = np.bincount(row_user if n_valid == len(row_user) else row_user[valid], minlength=n_users)
    threshold = linf if n_c <= l0 else min(l0, linf)
    if int(per_user.max()) <= threshold:  # every user is small
        return valid, 0
    big_user = per_user > threshold
    big = np.empty(len(row_user), dtype=bool)
    for start in range(0, len(row_user), _CHUNK):  # (chunks: ``take`` widens int32 indices)
        at = slice(start, start + _CHUNK)
        np.take(big_user, row_user[at], mode="clip", out=big[at])  # -1 reads user 0: masked next
    big &= valid
    keep = valid & ~big
    del valid
    if n_users * n_c > 2**62:
        raise InvalidInput("too many user-cohort pairs")
    tags = _tag_source(row_user, row_tag)
    user_code = np.cumsum(big_user, out=per_user)  # dense codes of the big users, in order
    user_code -= 1
    del big_user
    rows = _sort_rows(row_user, row_cohort, user_code, n_c, big)
    m = len(rows.key)
    del big, user_code
    bounds = _run_bounds(rows.pairs, m)  # the (user, cohort) pairs' runs of rows
    row_ok = np.ones(m, dtype=bool)

    def drop_rows(at: np.ndarray) -> None:
        row_ok[at] = False

    if linf < m:  # a public-shape shortcut: nothing can exceed the limit
        _excess(bounds, linf, n_users * n_c, lambda at: tags(rows.rows(at)),
                _fresh_key(random_bytes), drop_rows)
    n_pairs = len(bounds) - 1
    if l0 < n_c and l0 < n_pairs:  # a user holds at most n_c cohorts: else nothing to drop
        user_bounds = _run_bounds(lambda at: rows.pairs(bounds[at]) // n_c, n_pairs)
        # The rows of dropped pairs: +1 at each one's first row, -1 past its last, summed.
        edge = np.zeros(m + 1, dtype=np.int8)

        def drop_pairs(at: np.ndarray) -> None:
            edge[bounds[at]] += 1  # += : a pair may start where a dropped one ended
            edge[bounds[at + 1]] -= 1

        _excess(user_bounds, l0, n_users, lambda at: tags(rows.rows(bounds[at])),
                _fresh_key(random_bytes), drop_pairs)
        del user_bounds
        np.cumsum(edge, out=edge)
        row_ok[edge[:m].view(bool)] = False
        del edge
    for start in range(0, m, _CHUNK):
        at = slice(start, start + _CHUNK)
        keep[rows.rows(at)[row_ok[at]]] = True
    return keep, m


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
    Cohort codes of users with more rows than min(L0, Linf) must lie in [0, n_cohorts).
    """
    l0, linf = max_cohorts_per_user, max_rows_per_user_per_cohort
    if l0 < 1 or linf < 1:
        raise InvalidInput("contribution bounds must be at least 1")
    n_c = n_cohorts
    if n_c is None:
        valid = row_user >= 0
        if not valid.any():
            return valid
        n_c = int((row_cohort if valid.all() else row_cohort[valid]).max()) + 1
        del valid
    return _bound(row_user, row_cohort, n_users, n_c, l0, linf, row_tag, random_bytes)[0]


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
    one_cohort = np.broadcast_to(np.int64(0), row_user.shape)  # no memory: a zero stride
    keep, chosen = _bound(row_user, one_cohort, n_users, 1, 1, max_rows_per_user, row_tag,
                          random_bytes)
    if chosen == 0 and int(np.count_nonzero(keep)) > max_rows_per_user:
        # The key this function has always drawn once it had more rows than the bound, small
        # users or not: the session's later draws, and so their results, stay as they were.
        _fresh_key(random_bytes)
    totals = np.zeros(n_users, dtype=np.int64)
    for start in range(0, len(keep), _CHUNK):  # integer scatter-add: exact, no float
        at = slice(start, start + _CHUNK)
        kept = keep[at]
        np.add.at(totals, row_user[at][kept],
                  np.clip(values[at][kept], lo, hi).astype(np.int64, copy=False))
    return totals
