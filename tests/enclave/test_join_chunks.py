"""The join's chunked passes give the same answer whatever the chunk size (enclave/engine/join.py).

``match_users`` and ``unit_codes`` walk their arrays a chunk at a time to bound their
temporaries; runs of equal keyed prefixes straddle chunk boundaries, and prefix collisions send
rows to the exact fallback. Shrinking the chunks to a few rows puts every boundary case in a
small test: the outputs must equal those of one whole-array pass, and the reference semantics
(same code iff same id, dense codes, -1 iff unmatched; codes in the ids' lexicographic order).
"""

from __future__ import annotations

import numpy as np
import pytest

from enclave.engine import join


def _check(left: np.ndarray, right: np.ndarray, m: join.UserMatch) -> None:
    lset = {bytes(r) for r in left}
    matched = lset & {bytes(r) for r in right}
    assert m.n_matched == len(matched)
    code_of: dict[bytes, int] = {}
    for ids, codes in ((left, m.left_user), (right, m.right_user)):
        for row, code in zip(ids, codes.tolist(), strict=True):
            ident = bytes(row)
            if ident not in matched:
                assert code == -1
            else:
                assert code_of.setdefault(ident, code) == code
    assert sorted(code_of.values()) == list(range(len(matched)))


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    left_users = rng.integers(0, 200, 1200)
    right_users = rng.integers(100, 300, 900)
    # Keys of few distinct values: many users share a keyed prefix (runs fail confirmation and
    # take the fallback), and the runs are long enough to cross every small chunk boundary.
    key_of = (rng.integers(0, 40, 300).astype(np.uint64) << np.uint64(50)) | \
        rng.integers(0, 2**20, 300).astype(np.uint64)
    key_of[:150] = np.uint64(7) << np.uint64(50)
    return users[left_users], users[right_users], key_of[left_users], key_of[right_users]


@pytest.mark.parametrize("seed", range(3))
def test_match_users_is_the_same_in_small_chunks(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    left, right, lk, rk = _data(seed)
    whole = join.match_users(left, right, lk, rk)
    _check(left, right, whole)
    for chunk in (1, 2, 5, 64):
        monkeypatch.setattr(join, "_CHUNK", chunk)
        monkeypatch.setattr(join, "_RUN_CHUNK", chunk)
        small = join.match_users(left, right, lk, rk)
        assert small.n_matched == whole.n_matched
        assert np.array_equal(small.left_user, whole.left_user)
        assert np.array_equal(small.right_user, whole.right_user)


def test_match_users_with_real_keys_in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    left, right, _, _ = _data(9)
    lk, rk = join.join_keys(left, bytes(32)), join.join_keys(right, bytes(32))
    whole = join.match_users(left, right, lk, rk)
    _check(left, right, whole)
    monkeypatch.setattr(join, "_CHUNK", 3)
    monkeypatch.setattr(join, "_RUN_CHUNK", 3)
    small = join.match_users(left, right, lk, rk)
    assert np.array_equal(small.left_user, whole.left_user)
    assert np.array_equal(small.right_user, whole.right_user)


@pytest.mark.parametrize("chunk", [4, 8, 40, 1 << 20])
def test_unit_codes_in_chunks(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(join, "_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    users = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    users[:20, :24] = users[0, :24]  # ids that differ only in their last lane
    ids = users[rng.integers(0, 50, 700)]
    codes, n = join.unit_codes(ids)
    lanes = [tuple(r) for r in np.ascontiguousarray(ids).view("<u8").tolist()]
    rank = {lane: i for i, lane in enumerate(sorted(set(lanes)))}
    assert n == len(rank)
    assert codes.tolist() == [rank[lane] for lane in lanes]
