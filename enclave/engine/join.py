"""Match the users of the two joined datasets on their 32-byte id digests: arrays in, arrays out.

No Python loop per row: one keyed PRF pass, one value sort of packed 64-bit keys, then
vectorised confirmation on the original digests.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol.errors import InvalidInput

__all__ = ["JOIN_KEY_BYTES", "UserMatch", "join_keys", "match_users", "prf64", "unit_codes"]

JOIN_KEY_BYTES = 32  # the enclave's per-collaboration AES-256 join key (enclave/state/keys.py)

_MAX_INDEX_BITS = 40  # row-index bits in a packed join key; leaves >= 24 prefix bits
_CHUNK = 1 << 20  # elements per step when filling big buffers: keeps temporaries cache-sized
_RUN_CHUNK = 1 << 18  # left rows per step of _common_runs, which holds ~8 temporaries per row


@dataclass(frozen=True)
class UserMatch:
    """Dense matched-user code per row (or -1 when the user is absent from the other side)."""

    left_user: np.ndarray  # [n_left], int32 when both sides have fewer than 2^31 rows, else int64
    right_user: np.ndarray  # [n_right], the same dtype
    n_matched: int


def _lanes(ids: np.ndarray) -> np.ndarray:
    """(n, 4) uint64 view of (n, 32) uint8 (or V32/S32) digests, without copying."""
    arr = np.asarray(ids)
    if arr.ndim == 1 and arr.dtype.kind in "SV" and arr.dtype.itemsize == 32:
        arr = arr.view(np.uint8).reshape(-1, 32)
    if arr.ndim != 2 or arr.shape[1] != 32 or arr.dtype != np.uint8:
        raise InvalidInput("identifiers must be 32-byte digests")
    return np.ascontiguousarray(arr).view("<u8")


def join_keys(ids: np.ndarray, key: bytes) -> np.ndarray:
    """uint64 keyed join key of every 32-byte id: a PRF of the id under the enclave's ``key``.

    Parties hash identifiers themselves, so they choose the 32 bytes the enclave sees; keyed on
    raw digest bytes, a party could craft ids sharing a target's prefix, and the work of
    separating them (``_fallback``) would tell whether the other side holds the target (issue
    11). Here an id x = (x0, x1), two 16-byte blocks, maps to the low 8 bytes of
    t = AES_K(AES_K(x0) XOR x1): CBC-MAC on messages of one fixed length (two blocks) is a PRF
    when AES is a PRP (Bellare, Kilian, Rogaway 2000: advantage about q^2/2^128 for q ids), and
    a truncated PRF is a PRF. K is a secret that never leaves the enclave and no t is released,
    so whatever ids a party picks, their keys collide only as often as uniform 64-bit values:
    the fallback cannot be reached by crafting. ECB is only the vectorised way to apply AES to
    each block of a column (no confidentiality rests on it). Matches are still confirmed on the
    original 32 bytes, so correctness never depends on the PRF. Chunks of 64k rows stay in
    cache; two halves run on two cores (OpenSSL and NumPy release the GIL).
    """
    lanes = _lanes(ids)
    if len(key) != JOIN_KEY_BYTES:
        raise InvalidInput("the join key must be 32 bytes")
    out = np.empty(len(lanes), dtype=np.uint64)

    def cbc_mac(start: int, stop: int) -> None:
        for i in range(start, stop, 1 << 16):
            x = lanes[i : min(i + (1 << 16), stop)]
            y = _aes(key, np.ascontiguousarray(x[:, :2]))
            y ^= x[:, 2:]
            out[i : i + len(x)] = _aes(key, y)[:, 0]

    half = len(lanes) // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(cbc_mac, (0, half), (half, len(lanes))))
    return out


def _aes(key: bytes, blocks: np.ndarray) -> np.ndarray:
    """AES_K of each row of a C-contiguous (m, 2) uint64 array (one 16-byte block per row)."""
    out = np.empty((len(blocks) + 1, 2), dtype=np.uint64)  # update_into wants a spare block
    if len(blocks):
        Cipher(algorithms.AES(key), modes.ECB()).encryptor().update_into(  # noqa: S305 (see join_keys)
            blocks.data.cast("B"), out.data.cast("B"))
    return out[:-1]


def prf64(key: bytes, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Low 64 bits of AES_K(hi || lo) per row (two uint64 columns): a PRF of the pair."""
    return _aes(key, np.column_stack((hi, lo)).astype(np.uint64, copy=False))[:, 0]


def _sorted_side(keys: np.ndarray, shift: int) -> np.ndarray:
    """Sorted uint64 [top (64-shift) bits of each keyed join key | its row index] of one side."""
    high = np.uint64((2**64 - 1) ^ ((1 << shift) - 1))
    out = np.empty(len(keys), dtype=np.uint64)
    for start in range(0, len(keys), _CHUNK):
        stop = min(start + _CHUNK, len(keys))
        chunk = out[start:stop]
        np.bitwise_and(keys[start:stop], high, out=chunk)
        chunk |= np.arange(start, stop, dtype=np.uint64)
    out.sort()  # in place: no buffer (a stable sort would need one; the values are distinct)
    return out


def _run_starts(prefix: np.ndarray, continues: bool) -> np.ndarray:
    """Positions where a run of equal values of the sorted ``prefix`` starts (position 0 too,
    unless ``continues``: the slice goes on with a run that started before it)."""
    new = np.empty(len(prefix), dtype=bool)
    new[0] = not continues
    np.not_equal(prefix[1:], prefix[:-1], out=new[1:])
    return np.flatnonzero(new)


def _common_runs(left: np.ndarray, right: np.ndarray, shift: int,
                 count_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(left start, left count, right start, right count) of every prefix held by both sides.

    ``left`` and ``right`` are ``_sorted_side`` outputs; a prefix's rows are one contiguous run
    in each. Runs come in prefix order, the order one merged sort of both sides would give. The
    two sides are never merged: the left side is walked chunk by chunk, and each of its prefixes
    is looked up, by binary search, among the distinct prefixes of the slice of the right side
    its chunk spans, so the work memory is a chunk's plus the runs held by both sides (a
    minority of the rows).
    """
    sh, low = np.uint64(shift), np.uint64((1 << shift) - 1)
    parts: list[tuple[np.ndarray, ...]] = []
    for start in range(0, len(left), _RUN_CHUNK):
        stop = min(start + _RUN_CHUNK, len(left))
        prefix = left[start:stop] >> sh
        at = _run_starts(prefix, start > 0 and (left[start - 1] >> sh) == prefix[0])
        if len(at) == 0:  # the chunk continues a run that started before it
            continue
        wanted = prefix[at]
        del prefix
        # The right rows that can share a prefix with this chunk's runs are one slice of about
        # a chunk's size (the keys are uniform): its distinct prefixes are searched instead of
        # the whole side, which keeps the binary searches in cache and halves them (a run's
        # end is the next run's start).
        r_lo = int(np.searchsorted(right, wanted[0] << sh, side="left"))
        r_hi = int(np.searchsorted(right, (wanted[-1] << sh) | low, side="right"))
        if r_hi == r_lo:
            continue
        window = right[r_lo:r_hi] >> sh
        w_at = _run_starts(window, False)
        w_prefix = window[w_at]
        del window
        pos = np.searchsorted(w_prefix, wanted, side="left")
        np.minimum(pos, len(w_prefix) - 1, out=pos)
        hit = w_prefix[pos] == wanted
        if not hit.any():
            continue
        pos = pos[hit]
        w_end = np.append(w_at[1:], r_hi - r_lo)  # each right run ends where the next starts
        l_stop = np.empty(len(at), dtype=np.int64)  # each run ends where the next one starts
        l_stop[:-1] = at[1:] + start
        l_stop[-1] = np.searchsorted(left, (wanted[-1] << sh) | low, side="right")  # it may go on
        l_start = at[hit] + start
        parts.append((l_start, l_stop[hit] - l_start, w_at[pos] + r_lo, w_end[pos] - w_at[pos]))
    columns: list[list[np.ndarray]] = [list(c) for c in zip(*parts, strict=True)] or [[], [], [], []]
    del parts
    out = []
    dtypes = (np.dtype(np.int64), count_dtype, np.dtype(np.int64), count_dtype)
    for dtype, pieces in zip(dtypes, columns, strict=True):
        out.append(np.concatenate(pieces).astype(dtype, copy=False) if pieces
                   else np.zeros(0, dtype=dtype))
        pieces.clear()  # one column's pieces and its whole at a time, never all of them twice
    return out[0], out[1], out[2], out[3]


def _blocks(counts: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Consecutive runs cut into blocks of about ``_CHUNK`` rows: (first run, end run, first
    row, end row) each; a run larger than that is a block of its own."""
    ends = np.cumsum(counts)
    out, run = [], 0
    while run < len(counts):
        row = int(ends[run] - counts[run])
        stop = max(run + 1, int(np.searchsorted(ends, row + _CHUNK, side="right")))
        out.append((run, stop, row, int(ends[stop - 1])))
        run = stop
    return out


def _run_of_rows(counts: np.ndarray) -> np.ndarray:
    """0-based run number of each row of consecutive runs of ``counts`` rows."""
    return np.repeat(np.arange(len(counts)), counts)


def _gather_rows(side: np.ndarray, starts: np.ndarray, counts: np.ndarray, shift: int,
                 blocks: list[tuple[int, int, int, int]], dtype: np.dtype) -> np.ndarray:
    """Row index of every row of the runs, in run order: the low bits of ``side``'s values."""
    out = np.empty(int(counts.sum()), dtype=dtype)
    low = np.uint64((1 << shift) - 1)
    for r0, r1, o0, o1 in blocks:
        if r1 == r0 + 1:  # one run: its rows are one slice
            src = int(starts[r0])
            out[o0:o1] = side[src : src + o1 - o0] & low
            continue
        at = np.arange(o0, o1)  # positions in ``side``: row slot + (run start - run slot)
        at += np.repeat(starts[r0:r1] - (np.cumsum(counts[r0:r1]) - counts[r0:r1] + o0),
                        counts[r0:r1])
        values = np.take(side, at)
        values &= low
        out[o0:o1] = values
    return out


def _mark_bad(lanes: np.ndarray, rows: np.ndarray, counts: np.ndarray, heads: np.ndarray,
              blocks: list[tuple[int, int, int, int]], bad: np.ndarray) -> None:
    """bad[run] = True for every run with a row whose 32 bytes differ from its run's head."""
    step = max(1, _CHUNK // 4)  # rows of 32 bytes: keeps the gathered copies near a uint64 chunk's size
    for r0, r1, o0, o1 in blocks:
        run = _run_of_rows(counts[r0:r1])
        run += r0
        for s in range(0, o1 - o0, step):
            got = np.take(lanes, rows[o0 + s : min(o0 + s + step, o1)], axis=0)
            runs = run[s : s + len(got)]
            got ^= np.take(heads, runs, axis=0)  # zero lanes where the row equals its head
            # OR of the four lanes: 3x faster than (got == want).all(axis=1) on (n, 4) arrays
            differs = got[:, 0] | got[:, 1]
            differs |= got[:, 2]
            differs |= got[:, 3]
            bad[runs[differs != 0]] = True


def _fill(out: np.ndarray, rows: np.ndarray, counts: np.ndarray, code: np.ndarray,
          blocks: list[tuple[int, int, int, int]]) -> np.ndarray:
    """out[row] = code[its run] for every row of the runs; returns the rows of bad runs."""
    bad_rows = []
    for r0, r1, o0, o1 in blocks:
        run_code = code[r0:r1][_run_of_rows(counts[r0:r1])]
        out[rows[o0:o1]] = run_code
        bad_rows.append(rows[o0:o1][run_code < 0])
    return np.concatenate(bad_rows) if bad_rows else rows[:0]


def match_users(left_ids: np.ndarray, right_ids: np.ndarray, left_keys: np.ndarray,
                right_keys: np.ndarray) -> UserMatch:
    """Match users of two parties on their 32-byte id digests (many rows per user allowed).

    ``*_keys`` are the ids' keyed join keys (``join_keys``, under the enclave's secret). Each
    side's packed 64-bit keys are value-sorted (one core each); rows are grouped by keyed
    prefix, and each prefix held by both sides is confirmed on all 32 bytes against its first
    left row, so a prefix collision can never merge two people. Runs that fail confirmation
    (two ids share a keyed prefix: chance only, since a party cannot predict the PRF) are
    regrouped exactly by ``_fallback``. Matched users get dense codes in [0, n_matched), in the
    order of their keyed prefixes.

    Memory (docs/scale-out.md): the two sorted key arrays (8 bytes per row), then the row
    indices of the matched rows (4 bytes each below 2^31 rows), then the two outputs (as wide
    per row); every other temporary is one chunk's or a few bytes per matched user.
    """
    left, right = _lanes(left_ids), _lanes(right_ids)
    n_left, n_right = len(left), len(right)
    if left_keys.shape != (n_left,) or right_keys.shape != (n_right,) or \
            left_keys.dtype != np.uint64 or right_keys.dtype != np.uint64:
        raise InvalidInput("one keyed join key per identifier is required")
    # Row indices, run lengths and user codes (fewer than the rows) in 4 bytes when they fit:
    # the codes are the match's output, one per row of each side, and live through the query.
    small = np.dtype(np.int32) if max(n_left, n_right) < 2**31 else np.dtype(np.int64)
    if n_left == 0 or n_right == 0:
        return UserMatch(np.full(n_left, -1, small), np.full(n_right, -1, small), 0)
    shift = max(1, (n_left + n_right - 1).bit_length())
    if shift > _MAX_INDEX_BITS:
        raise InvalidInput("too many rows to join")
    with ThreadPoolExecutor(max_workers=2) as pool:  # NumPy releases the GIL while sorting
        left_sorted, right_sorted = pool.map(_sorted_side, (left_keys, right_keys), (shift, shift))
    l_start, l_count, r_start, r_count = _common_runs(left_sorted, right_sorted, shift, small)
    l_blocks, r_blocks = _blocks(l_count), _blocks(r_count)
    # The smaller side's rows first, then each sorted array is freed as soon as it is read.
    ri = _gather_rows(right_sorted, r_start, r_count, shift, r_blocks, small)
    del right_sorted, r_start
    li = _gather_rows(left_sorted, l_start, l_count, shift, l_blocks, small)
    del left_sorted
    heads = np.take(left, li[np.cumsum(l_count) - l_count], axis=0)  # each run's first left row
    del l_start
    bad = np.zeros(len(l_count), dtype=bool)
    _mark_bad(left, li, l_count, heads, l_blocks, bad)
    _mark_bad(right, ri, r_count, heads, r_blocks, bad)
    del heads
    code = np.cumsum(~bad) - 1
    code[bad] = -1
    n_clean = len(bad) - int(np.count_nonzero(bad))
    left_user = np.full(n_left, -1, small)
    li_bad = _fill(left_user, li, l_count, code, l_blocks)
    del li
    right_user = np.full(n_right, -1, small)
    ri_bad = _fill(right_user, ri, r_count, code, r_blocks)
    del ri
    n_extra = _fallback(left, right, li_bad, ri_bad, left_user, right_user, n_clean)
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


def unit_codes(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense code per row of one table's distinct 32-byte ids (all rows, matched or not)."""
    lanes = _lanes(ids)
    n = len(lanes)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    order = np.lexsort(lanes.T[::-1])  # lane 0 most significant; any total order would do
    # Consecutive rows in that order are compared a chunk at a time: the ordered copy of the
    # ids (32 bytes per row) is never made whole.
    new = np.empty(n, dtype=bool)
    new[0] = True
    step = max(1, _CHUNK // 4)
    for start in range(1, n, step):
        stop = min(start + step, n)
        here = np.take(lanes, order[start:stop], axis=0)
        before = np.take(lanes, order[start - 1 : stop - 1], axis=0)
        np.any(here != before, axis=1, out=new[start:stop])
    ranks = np.cumsum(new, dtype=np.int64)
    n_units = int(ranks[-1])
    del new
    ranks -= 1
    codes = np.empty(n, dtype=np.int64)
    codes[order] = ranks
    return codes, n_units
