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


@dataclass(frozen=True)
class UserMatch:
    """Dense matched-user code per row (or -1 when the user is absent from the other side)."""

    left_user: np.ndarray  # int64[n_left]
    right_user: np.ndarray  # int64[n_right]
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


def _pack_sorted(left: np.ndarray, right: np.ndarray, shift: int) -> np.ndarray:
    """Sorted uint64 [top (64-shift) bits of the keyed join key | row index], right rows after left.

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
            np.bitwise_and(side[start:stop], high, out=out)
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


def match_users(left_ids: np.ndarray, right_ids: np.ndarray, left_keys: np.ndarray,
                right_keys: np.ndarray) -> UserMatch:
    """Match users of two parties on their 32-byte id digests (many rows per user allowed).

    ``*_keys`` are the ids' keyed join keys (``join_keys``, under the enclave's secret). One
    value sort of packed 64-bit keys groups rows by keyed prefix; each run holding both sides
    is confirmed on all 32 bytes against its first row, so a prefix collision can never merge
    two people. Runs that fail confirmation (two ids share a keyed prefix: chance only, since a
    party cannot predict the PRF) are regrouped exactly by ``_fallback``. Matched users get
    dense codes in [0, n_matched).
    """
    left, right = _lanes(left_ids), _lanes(right_ids)
    n_left, n_right = len(left), len(right)
    if left_keys.shape != (n_left,) or right_keys.shape != (n_right,) or \
            left_keys.dtype != np.uint64 or right_keys.dtype != np.uint64:
        raise InvalidInput("one keyed join key per identifier is required")
    if n_left == 0 or n_right == 0:
        return UserMatch(np.full(n_left, -1, np.int64), np.full(n_right, -1, np.int64), 0)
    shift = max(1, (n_left + n_right - 1).bit_length())
    if shift > _MAX_INDEX_BITS:
        raise InvalidInput("too many rows to join")
    packed = _pack_sorted(left_keys, right_keys, shift)
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
