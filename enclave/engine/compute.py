"""Join and aggregation core: arrays in, arrays out, no Python loop per row.

Privacy unit and sensitivities (reference/differential-privacy.md §5.3). The unit is one matched
user: neighbouring datasets differ by all the rows of one user. After ``bound_contributions``
a user has kept rows in at most L0 = ``max_cohorts_per_user`` cohorts and at most
Linf = ``max_rows_per_user_per_cohort`` rows in each, and after ``per_user_metric`` its metric
total is a sum of at most Linf_m = ``max_rows_per_user`` values clamped to [lo, hi]. Hence, over
the ``n_cohorts`` outputs of ``aggregate``, adding or removing one user changes

* ``users``      by at most 1 in each of ≤ L0 cohorts:              Δ1 = L0,        Δ2² = L0
* ``rows``       by at most Linf in each of ≤ L0 cohorts:           Δ1 = L0·Linf,   Δ2² = L0·Linf²
* ``metric_sum`` by at most Linf_m·C in each of ≤ L0 cohorts, with C = max(|lo|, |hi|) (each
  user's total is attributed once to every cohort it is in): Δ1 = L0·Linf_m·C, Δ2² = L0·(Linf_m·C)²

``sensitivities`` computes exactly these, so no scale is ever typed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from protocol.errors import InvalidInput

__all__ = [
    "AggregateCounts",
    "Sensitivities",
    "UserMatch",
    "aggregate",
    "bound_contributions",
    "check_no_overflow",
    "cohort_codes",
    "frequency_histogram",
    "match_users",
    "overlap",
    "per_user_metric",
    "sensitivities",
    "unit_codes",
]

RandomBytes = Callable[[int], bytes]
_INT64_MAX = 2**63 - 1
_MAX_INDEX_BITS = 40  # row-index bits in a packed join key; leaves >= 24 prefix bits
_CHUNK = 1 << 20  # elements per step when filling big buffers: keeps temporaries cache-sized


@dataclass(frozen=True)
class UserMatch:
    """Dense matched-user code per row (or -1 when the user is absent from the other side)."""

    left_user: np.ndarray  # int64[n_left]
    right_user: np.ndarray  # int64[n_right]
    n_matched: int


@dataclass(frozen=True)
class AggregateCounts:
    users: np.ndarray  # int64[n_cohorts]: distinct matched users with a kept row in the cohort
    rows: np.ndarray  # int64[n_cohorts]: kept rows of matched users
    metric_sum: np.ndarray | None  # int64[n_cohorts], or None when no metric was given


@dataclass(frozen=True)
class Sensitivities:
    """L1 sensitivities and squared L2 sensitivities (exact integers) of ``aggregate``."""

    users_l1: int
    users_l2_sq: int
    rows_l1: int
    rows_l2_sq: int
    metric_l1: int
    metric_l2_sq: int


def sensitivities(
    *, max_cohorts_per_user: int, max_rows_per_user_per_cohort: int, max_rows_per_user: int,
    lo: int, hi: int,
) -> Sensitivities:
    """The sensitivities derived in the module docstring, from the bounds and the clamp."""
    l0, linf, c = max_cohorts_per_user, max_rows_per_user_per_cohort, max(abs(lo), abs(hi))
    per_cell = max_rows_per_user * c
    return Sensitivities(l0, l0, l0 * linf, l0 * linf * linf, l0 * per_cell, l0 * per_cell**2)


# --------------------------------------------------------------------------------------- join


def _lanes(ids: np.ndarray) -> np.ndarray:
    """(n, 4) uint64 view of (n, 32) uint8 (or V32/S32) digests, without copying."""
    arr = np.asarray(ids)
    if arr.ndim == 1 and arr.dtype.kind in "SV" and arr.dtype.itemsize == 32:
        arr = arr.view(np.uint8).reshape(-1, 32)
    if arr.ndim != 2 or arr.shape[1] != 32 or arr.dtype != np.uint8:
        raise InvalidInput("identifiers must be 32-byte digests")
    return np.ascontiguousarray(arr).view("<u8")


def _pack_sorted(left: np.ndarray, right: np.ndarray, shift: int) -> np.ndarray:
    """Sorted uint64 [top (64-shift) bits of lane 0 | row index], right rows indexed after left.

    Left indices are all below right ones, so inside a run of equal prefixes the left rows come
    first: a run holds both sides exactly when its first row is left and its last row is right.
    Each side is sorted on its own core (NumPy releases the GIL; values, not argsort), then one
    stable sort merges the two sorted runs in linear time (timsort finds the runs).
    """
    n_left = len(left)
    packed = np.empty(n_left + len(right), dtype=np.uint64)
    high = np.uint64((2**64 - 1) ^ ((1 << shift) - 1))
    for side, base in ((left, 0), (right, n_left)):
        for start in range(0, len(side), _CHUNK):
            stop = min(start + _CHUNK, len(side))
            out = packed[base + start : base + stop]
            np.bitwise_and(side[start:stop, 0], high, out=out)
            out |= np.arange(base + start, base + stop, dtype=np.uint64)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(np.ndarray.sort, (packed[:n_left], packed[n_left:])))
    packed.sort(kind="stable")
    return packed


def _candidate_runs(packed: np.ndarray, shift: int,
                    n_left: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, split, end) of each run of equal prefixes that holds rows of both sides.

    Rows [start, split) of ``packed`` are the run's left rows and [split, end) its right rows.
    """
    n = len(packed)
    low = np.uint64((1 << shift) - 1)
    new = np.empty(n + 1, dtype=bool)  # new[i]: row i starts a run; new[n] closes the last one
    new[0] = new[n] = True
    tmp = np.empty(min(n, _CHUNK), dtype=np.uint64)
    for start in range(1, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        t = tmp[: stop - start]
        np.bitwise_xor(packed[start:stop], packed[start - 1 : stop - 1], out=t)
        np.greater(t, low, out=new[start:stop])  # prefixes differ
    bounds = np.flatnonzero(new)
    del new, tmp
    edge = np.take(packed, bounds[:-1])
    edge &= low
    both = edge < n_left  # a run's first row is left ...
    bounds -= 1  # in place (no temporary): bounds[1:] is now each run's last row
    np.take(packed, bounds[1:], out=edge)
    edge &= low
    both &= edge >= n_left  # ... and its last row is right
    del edge
    bounds += 1
    starts, ends = bounds[:-1][both], bounds[1:][both]
    del bounds, both
    # the first right row of a run is the first value >= [its prefix | n_left]
    first_right = np.take(packed, starts)
    first_right &= ~low
    first_right |= np.uint64(n_left)
    splits = np.searchsorted(packed, first_right)
    return starts, splits, ends


def _rows_of_runs(packed: np.ndarray, starts: np.ndarray, stops: np.ndarray, shift: int,
                  base: int) -> tuple[np.ndarray, np.ndarray]:
    """Table row (packed index - base) and run number of every row in [starts, stops)."""
    counts = stops - starts
    run = np.repeat(np.arange(len(starts)), counts)
    first = np.cumsum(counts) - counts  # first output slot of each run
    rows = np.arange(len(run), dtype=np.int64)
    rows += (starts - first)[run]  # now positions in ``packed``
    np.take(packed, rows, out=rows.view(np.uint64))
    rows &= (1 << shift) - 1
    rows -= base
    return rows, run


def _equal_to_heads(side: np.ndarray, rows: np.ndarray, run: np.ndarray,
                    heads: np.ndarray) -> np.ndarray:
    """side[rows[i]] == heads[run[i]] on all 32 bytes, computed in memory-bounded chunks."""
    ok = np.empty(len(rows), dtype=bool)
    for start in range(0, len(rows), _CHUNK):
        stop = start + _CHUNK
        got = np.take(side, rows[start:stop], axis=0)
        want = np.take(heads, run[start:stop], axis=0)
        np.all(got == want, axis=1, out=ok[start:stop])
    return ok


def match_users(left_ids: np.ndarray, right_ids: np.ndarray) -> UserMatch:
    """Match users of two parties on their 32-byte id digests (many rows per user allowed).

    One value sort of packed 64-bit keys groups rows by id prefix; each run holding both sides
    is confirmed on all 32 bytes against its first row, so a prefix collision can never merge
    two people. Runs that fail confirmation (two ids share the prefix: rare for real digests,
    and merely slower for crafted ones) are regrouped exactly by ``_fallback``. Matched users
    get dense codes in [0, n_matched).
    """
    left, right = _lanes(left_ids), _lanes(right_ids)
    n_left, n_right = len(left), len(right)
    if n_left == 0 or n_right == 0:
        return UserMatch(np.full(n_left, -1, np.int64), np.full(n_right, -1, np.int64), 0)
    shift = max(1, (n_left + n_right - 1).bit_length())
    if shift > _MAX_INDEX_BITS:
        raise InvalidInput("too many rows to join")
    packed = _pack_sorted(left, right, shift)
    starts, splits, ends = _candidate_runs(packed, shift, n_left)
    li, lrun = _rows_of_runs(packed, starts, splits, shift, 0)
    ri, rrun = _rows_of_runs(packed, splits, ends, shift, n_left)
    del packed  # free the sort buffer before the outputs take its place
    lcounts = splits - starts
    heads = np.take(left, li[np.cumsum(lcounts) - lcounts], axis=0)  # each run's first row
    del starts, splits, ends, lcounts
    bad = np.zeros(len(heads), dtype=bool)
    bad[lrun[~_equal_to_heads(left, li, lrun, heads)]] = True
    bad[rrun[~_equal_to_heads(right, ri, rrun, heads)]] = True
    code = np.cumsum(~bad) - 1
    code[bad] = -1
    n_clean = len(bad) - int(np.count_nonzero(bad))
    left_user = np.full(n_left, -1, np.int64)
    right_user = np.full(n_right, -1, np.int64)
    left_user[li] = code[lrun]
    right_user[ri] = code[rrun]
    n_extra = _fallback(left, right, li[bad[lrun]], ri[bad[rrun]], left_user, right_user,
                        n_clean)
    return UserMatch(left_user, right_user, n_clean + n_extra)


def _fallback(left: np.ndarray, right: np.ndarray, li: np.ndarray, ri: np.ndarray,
              left_user: np.ndarray, right_user: np.ndarray, first_code: int) -> int:
    """Exact grouping on all 32 bytes for rows of prefix-collision runs; returns new codes."""
    if len(li) == 0:
        return 0
    full = np.concatenate([np.take(left, li, axis=0), np.take(right, ri, axis=0)])
    is_left = np.arange(len(full)) < len(li)
    rows = np.concatenate([li, ri])
    order = np.lexsort(full.T[::-1])  # any total order on the 32 bytes groups equal ids
    full, is_left, rows = full[order], is_left[order], rows[order]
    new = np.ones(len(rows), dtype=bool)
    new[1:] = (full[1:] != full[:-1]).any(axis=1)
    group = np.cumsum(new) - 1
    has_l = np.zeros(group[-1] + 1, dtype=bool)
    has_r = np.zeros_like(has_l)
    has_l[group[is_left]] = True
    has_r[group[~is_left]] = True
    matched = has_l & has_r
    code = first_code + np.cumsum(matched) - 1
    hit = matched[group]
    left_user[rows[hit & is_left]] = code[group[hit & is_left]]
    right_user[rows[hit & ~is_left]] = code[group[hit & ~is_left]]
    return int(np.count_nonzero(matched))


def overlap(match: UserMatch) -> int:
    """Number of distinct users present on both sides (per cohort: ``aggregate(...).users``)."""
    return match.n_matched


# ---------------------------------------------------------------------------- cohorts and bounds


def cohort_codes(dim_columns: Sequence[np.ndarray], sizes: Sequence[int]) -> tuple[np.ndarray, int]:
    """Mixed-radix cohort code per row (first column most significant) and the cohort count."""
    if not dim_columns or len(dim_columns) != len(sizes):
        raise InvalidInput("one size per dimension column is required")
    n_cohorts = 1
    for size in sizes:
        n_cohorts *= int(size)
    if min(sizes) < 1 or n_cohorts > 2**31:
        raise InvalidInput("cohort space is empty or too large")
    codes = np.zeros(len(dim_columns[0]), dtype=np.int64)
    for col, size in zip(dim_columns, sizes, strict=True):
        if len(col) != len(codes):
            raise InvalidInput("dimension columns differ in length")
        if len(col) and int(col.max()) >= size:
            raise InvalidInput("a dimension code is outside its declared values")
        codes *= size
        codes += col
    return codes, n_cohorts


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
    uniform subset of its rows. ``random_bytes`` is the CSPRNG (``os.urandom`` in the enclave).
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


def check_no_overflow(max_rows: int, lo: int, hi: int) -> int:
    """Prove, before any data is read, that no int64 sum formed here can overflow.

    Every sum this module forms — a user's metric total, a cohort's ``metric_sum``, and every
    partial sum inside ``np.add.at`` — adds distinct rows of one metric table, each clamped to
    [lo, hi]: ``metric_sum`` adds the totals of *distinct* users, whose row sets are disjoint.
    So its magnitude is at most ``max_rows · C`` with C = max(|lo|, |hi|) and ``max_rows`` the
    policy's row limit of that table. Returns that bound; raises ``InvalidInput`` if it exceeds
    2^63 - 1 or the clamp is malformed.
    """
    if not (-_INT64_MAX <= lo <= hi <= _INT64_MAX) or max_rows < 0:
        raise InvalidInput("metric clamp or row limit is invalid")
    bound = max_rows * max(abs(lo), abs(hi))
    if bound > _INT64_MAX:
        raise InvalidInput("row limit times metric clamp could overflow a 64-bit sum")
    return bound


def per_user_metric(
    row_user: np.ndarray, values: np.ndarray, n_users: int, *,
    lo: int, hi: int, max_rows_per_user: int, random_bytes: RandomBytes,
) -> np.ndarray:
    """Exact int64 metric total per matched user over at most Linf_m uniformly chosen rows.

    Each row is clamped to [lo, hi] first. The caller has run ``check_no_overflow`` for this
    table, so the integer sums below cannot wrap.
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


def aggregate(
    row_user: np.ndarray, row_cohort: np.ndarray, n_cohorts: int,
    user_metric: np.ndarray | None, keep_mask: np.ndarray,
) -> AggregateCounts:
    """Per-cohort distinct users, kept rows and metric sum (each user's total once per cohort)."""
    sel = keep_mask & (row_user >= 0)
    users, cohorts = row_user[sel], row_cohort[sel]
    if len(cohorts) and (int(cohorts.min()) < 0 or int(cohorts.max()) >= n_cohorts):
        raise InvalidInput("cohort code out of range")
    rows = np.bincount(cohorts, minlength=n_cohorts).astype(np.int64, copy=False)
    pair = users * np.int64(n_cohorts)
    pair += cohorts
    del users
    pair.sort()
    distinct = np.ones(len(pair), dtype=bool)
    distinct[1:] = pair[1:] != pair[:-1]
    pair = pair[distinct]
    pair_user, pair_cohort = np.divmod(pair, n_cohorts)
    n_users = np.bincount(pair_cohort, minlength=n_cohorts).astype(np.int64, copy=False)
    metric = None
    if user_metric is not None:
        metric = np.zeros(n_cohorts, dtype=np.int64)
        np.add.at(metric, pair_cohort, user_metric[pair_user])
    return AggregateCounts(n_users, rows, metric)


# ----------------------------------------------------------------- added for the privacy engine


def frequency_histogram(row_user: np.ndarray, row_cohort: np.ndarray, n_cohorts: int,
                        max_frequency: int) -> np.ndarray:
    """int64[n_cohorts, F]: units per cohort by their number of rows, the last bucket being ≥ F.

    Pass only kept rows of matched units (``row_user >= 0``); each (unit, cohort) pair with r
    rows adds one to bucket min(r, F) - 1 of its cohort.
    """
    if max_frequency < 1:
        raise InvalidInput("max_frequency must be at least 1")
    pair = row_user.astype(np.int64) * np.int64(n_cohorts)
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


def unit_codes(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense code per row of one table's distinct 32-byte ids (all rows, matched or not)."""
    lanes = _lanes(ids)
    n = len(lanes)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    order = np.lexsort(lanes.T[::-1])  # lane 0 most significant; any total order would do
    ordered = lanes[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    codes = np.empty(n, dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return codes, int(np.count_nonzero(new))
