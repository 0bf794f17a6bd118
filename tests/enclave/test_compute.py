"""The join and aggregation core against independent pure-Python references."""

from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import InvalidInput
from tests.support import engine_core as compute


def _fixed_bytes(seed: int):
    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


def _ids(rows: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 32)


def _check_match(left: list[bytes], right: list[bytes]) -> compute.UserMatch:
    """Compare match_users with a dict-based reference: same code iff same id, -1 iff unmatched."""
    m = compute.match_users(_ids(left), _ids(right))
    matched = set(left) & set(right)
    assert m.n_matched == len(matched)
    code_of: dict[bytes, int] = {}
    for ids, codes in ((left, m.left_user), (right, m.right_user)):
        assert codes.dtype == np.int32 and len(codes) == len(ids)  # int64 only past 2^31 rows
        for ident, code in zip(ids, codes.tolist(), strict=True):
            if ident not in matched:
                assert code == -1
                continue
            assert code_of.setdefault(ident, code) == code
    assert sorted(code_of.values()) == list(range(len(matched)))
    return m


def _pool(rng: random.Random, n: int) -> list[bytes]:
    """Distinct digests, many of them sharing long prefixes to force collision handling."""
    base = rng.randbytes(32)
    pool = {rng.randbytes(32) for _ in range(n)}
    pool |= {base[:8] + rng.randbytes(24) for _ in range(n // 4)}  # same first 8 bytes
    pool |= {bytes([b]) + base[1:] for b in rng.sample(range(256), 4)}  # differ in byte 0 only
    pool |= {base[:31] + bytes([b]) for b in rng.sample(range(256), 3)}  # differ in the last byte
    return sorted(pool)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 60), st.integers(0, 60))
def test_match_against_reference(seed: int, n_left: int, n_right: int) -> None:
    rng = random.Random(seed)
    pool = _pool(rng, 12)
    _check_match([rng.choice(pool) for _ in range(n_left)],
                 [rng.choice(pool) for _ in range(n_right)])


def test_match_prefix_collisions_never_merge() -> None:
    a, b, c = (b"\x11" * 8 + bytes([x]) * 24 for x in (1, 2, 3))
    m = _check_match([a, a, b, c], [b, b, a])
    assert m.n_matched == 2 and m.left_user[3] == -1
    assert m.left_user[0] != m.left_user[2]
    # the same first 31 bytes: only the last byte tells them apart
    d, e = b"\x22" * 31 + b"\x00", b"\x22" * 31 + b"\x01"
    assert _check_match([d] * 3, [e] * 2).n_matched == 0


def test_match_larger_random_data() -> None:
    rng = np.random.default_rng(7)
    users = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    users[:200, :8] = users[0, :8]  # a big prefix-collision group
    left = users[rng.integers(0, 2000, 20_000)]
    right = users[rng.integers(1000, 3000, 15_000)]
    _check_match([bytes(r) for r in left], [bytes(r) for r in right])


def test_match_empty_and_bad_input() -> None:
    empty = np.empty((0, 32), np.uint8)
    one = np.zeros((2, 32), np.uint8)
    m = compute.match_users(empty, one)
    assert m.n_matched == 0 and m.right_user.tolist() == [-1, -1]
    assert compute.match_users(one, one).n_matched == 1
    with pytest.raises(InvalidInput):
        compute.match_users(np.zeros((2, 16), np.uint8), one)


def test_cohort_codes_mixed_radix() -> None:
    a = np.array([0, 1, 2, 2], np.uint16)
    b = np.array([0, 3, 1, 4], np.uint16)
    codes, n = compute.cohort_codes([a, b], [3, 5])
    assert n == 15 and codes.tolist() == [0, 8, 11, 14] and codes.dtype == np.int64
    with pytest.raises(InvalidInput):
        compute.cohort_codes([a, b], [3, 4])
    with pytest.raises(InvalidInput):
        compute.cohort_codes([a], [3, 5])


def _many_rows_dataset():
    """User 0 has 40 rows over 10 cohorts; users 1..5 are small; -1 rows are unmatched."""
    users = [0] * 40 + [1, 1, 2, 3, 3, 3, 4, 5, -1, -1]
    cohorts = [i % 10 for i in range(40)] + [0, 1, 2, 3, 3, 3, 5, 6, 7, 8]
    return np.array(users, np.int64), np.array(cohorts, np.int64)


def test_bounding_caps_a_heavy_user() -> None:
    users, cohorts = _many_rows_dataset()
    keep = compute.bound_contributions(users, cohorts, 6, max_cohorts_per_user=3,
                                       max_rows_per_user_per_cohort=2, random_bytes=os.urandom)
    kept = Counter(zip(users[keep].tolist(), cohorts[keep].tolist(), strict=True))
    assert len({c for u, c in kept if u == 0}) == 3
    assert all(n <= 2 for n in kept.values())
    assert sum(n for (u, _), n in kept.items() if u == 0) == 6
    small = users > 0
    assert keep[small].sum() == 7  # only user 3 is over a bound: 3 rows in cohort 3, Linf = 2
    assert keep[small & (users != 3)].all()
    assert not keep[users < 0].any()


def test_bounding_is_uniform() -> None:
    users, cohorts = _many_rows_dataset()
    draw = _fixed_bytes(3)
    chosen: Counter[int] = Counter()
    rows_chosen: Counter[int] = Counter()
    trials = 3000
    for _ in range(trials):
        keep = compute.bound_contributions(users, cohorts, 6, max_cohorts_per_user=2,
                                           max_rows_per_user_per_cohort=1, random_bytes=draw)
        sel = keep & (users == 0)
        chosen.update(cohorts[sel].tolist())
        rows_chosen.update(np.flatnonzero(sel & (cohorts == 0)).tolist())
    # each of 10 cohorts is chosen with probability 2/10; each of its 4 rows then with 1/4
    for c in range(10):
        assert abs(chosen[c] / trials - 0.2) < 0.04
    for row in (0, 10, 20, 30):
        assert abs(rows_chosen[row] / (0.2 * trials) - 0.25) < 0.08


def test_bounding_without_limits_keeps_all_matched_rows() -> None:
    users, cohorts = _many_rows_dataset()
    keep = compute.bound_contributions(users, cohorts, 6, max_cohorts_per_user=100,
                                       max_rows_per_user_per_cohort=1000, random_bytes=os.urandom)
    assert keep.tolist() == (users >= 0).tolist()
    with pytest.raises(InvalidInput):
        compute.bound_contributions(users, cohorts, 6, max_cohorts_per_user=0,
                                    max_rows_per_user_per_cohort=1, random_bytes=os.urandom)


def test_per_user_metric_exact_and_clamped() -> None:
    rng = random.Random(5)
    n_users = 30
    users = [rng.randrange(-1, n_users) for _ in range(500)]
    values = [rng.randrange(-(2**55), 2**55) for _ in range(500)]
    lo, hi = -(2**53) - 1, 2**54 + 3  # beyond float64's exact integers
    got = compute.per_user_metric(np.array(users), np.array(values), n_users, lo=lo, hi=hi,
                                  max_rows_per_user=1000, random_bytes=os.urandom)
    expected = [0] * n_users
    for u, v in zip(users, values, strict=True):
        if u >= 0:
            expected[u] += min(max(v, lo), hi)
    assert got.dtype == np.int64 and got.tolist() == expected


def test_per_user_metric_bounds_rows() -> None:
    users = np.array([0] * 6 + [1, 2, 2], np.int64)
    values = np.array([1, 20, 300, 4000, 50000, 600000, 7, 8, 9], np.int64)
    seen = set()
    for _ in range(200):
        got = compute.per_user_metric(users, values, 3, lo=0, hi=10**6, max_rows_per_user=2,
                                      random_bytes=os.urandom)
        assert got[1:].tolist() == [7, 17]
        seen.add(int(got[0]))
    assert seen == {a + b for a, b in combinations(values[:6].tolist(), 2)}


def test_check_no_overflow() -> None:
    assert compute.check_no_overflow(10**6, -100, 10**9) == 10**15
    with pytest.raises(InvalidInput):
        compute.check_no_overflow(2**40, 0, 2**23)
    with pytest.raises(InvalidInput):
        compute.check_no_overflow(10, 5, 4)


def _reference_aggregate(users, cohorts, keep, n_cohorts, user_metric):
    members = defaultdict(set)
    rows = [0] * n_cohorts
    for u, c, k in zip(users, cohorts, keep, strict=True):
        if k and u >= 0:
            members[c].add(u)
            rows[c] += 1
    n_users = [len(members[c]) for c in range(n_cohorts)]
    total = [sum(user_metric[u] for u in members[c]) for c in range(n_cohorts)]
    return n_users, rows, total


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 300))
def test_aggregate_against_reference(seed: int, n_rows: int) -> None:
    rng = random.Random(seed)
    n_users, n_cohorts = rng.randrange(1, 20), rng.randrange(1, 12)
    users = [rng.randrange(-1, n_users) for _ in range(n_rows)]
    cohorts = [rng.randrange(n_cohorts) for _ in range(n_rows)]
    keep = [rng.random() < 0.8 for _ in range(n_rows)]
    metric = [rng.randrange(-(2**58), 2**58) for _ in range(n_users)]
    got = compute.aggregate(np.array(users), np.array(cohorts), n_cohorts,
                            np.array(metric, np.int64), np.array(keep))
    ref = _reference_aggregate(users, cohorts, keep, n_cohorts, metric)
    assert (got.users.tolist(), got.rows.tolist(), got.metric_sum.tolist()) == ref
    assert got.users.dtype == got.rows.dtype == got.metric_sum.dtype == np.int64


def test_aggregate_without_metric_and_bad_cohort() -> None:
    got = compute.aggregate(np.array([0, 0, 1]), np.array([1, 1, 1]), 3, None,
                            np.ones(3, bool))
    assert got.users.tolist() == [0, 2, 0] and got.rows.tolist() == [0, 3, 0]
    assert got.metric_sum is None
    with pytest.raises(InvalidInput):
        compute.aggregate(np.array([0]), np.array([3]), 3, None, np.ones(1, bool))


def test_end_to_end_small_join() -> None:
    """match -> cohorts -> bound (unlimited) -> metric -> aggregate, against a dict join."""
    rng = random.Random(11)
    pool = _pool(rng, 40)
    left = [rng.choice(pool) for _ in range(400)]
    dims = [rng.randrange(4) for _ in range(400)]
    right = [rng.choice(pool) for _ in range(300)]
    vals = [rng.randrange(0, 10_000) for _ in range(300)]
    m = compute.match_users(_ids(left), _ids(right))
    codes, n_c = compute.cohort_codes([np.array(dims, np.uint16)], [4])
    keep = compute.bound_contributions(m.left_user, codes, m.n_matched, max_cohorts_per_user=4,
                                       max_rows_per_user_per_cohort=10**6,
                                       random_bytes=os.urandom)
    metric = compute.per_user_metric(m.right_user, np.array(vals), m.n_matched, lo=0,
                                     hi=10**6, max_rows_per_user=10**6, random_bytes=os.urandom)
    got = compute.aggregate(m.left_user, codes, n_c, metric, keep)
    totals: Counter[bytes] = Counter()
    for ident, v in zip(right, vals, strict=True):
        totals[ident] += v
    members, rows = defaultdict(set), Counter()
    for ident, d in zip(left, dims, strict=True):
        if ident in totals:
            members[d].add(ident)
            rows[d] += 1
    assert got.users.tolist() == [len(members[d]) for d in range(4)]
    assert got.rows.tolist() == [rows[d] for d in range(4)]
    assert got.metric_sum.tolist() == [sum(totals[i] for i in members[d]) for d in range(4)]


def test_match_when_every_id_shares_the_prefix() -> None:
    """Crafted digests that all collide on 8 bytes take the exact path and still match right."""
    rng = np.random.default_rng(3)
    users = rng.integers(0, 256, (2000, 32), dtype=np.uint8)
    users[:, :8] = 7
    left = users[rng.integers(0, 1200, 6000)]
    right = users[rng.integers(800, 2000, 5000)]
    _check_match([bytes(r) for r in left], [bytes(r) for r in right])


def _crowd(seed: int):
    """User 0 (30 rows over 3 cohorts) among 40 other users with 1-12 rows each."""
    rng = np.random.default_rng(seed)
    users = [0] * 30 + [int(u) for u in rng.integers(1, 41, 300)]
    cohorts = [i % 3 for i in range(30)] + [int(c) for c in rng.integers(0, 5, 300)]
    return np.array(users, np.int64), np.array(cohorts, np.int64)


def _permute_others(n: int, own: np.ndarray, seed: int) -> np.ndarray:
    """A random permutation of row positions that keeps the ``own`` rows' relative order."""
    perm = np.random.default_rng(seed).permutation(n)
    own_slots = np.sort(np.flatnonzero(own[perm]))
    perm[own_slots] = np.flatnonzero(own)  # own rows in their original order
    return perm


@pytest.mark.parametrize("seed", range(5))
def test_permuting_other_users_rows_does_not_change_a_users_kept_rows(seed: int) -> None:
    # Issue 11, point 4: priorities drawn in row order (or ties left to a non-stable sort) made
    # a user's kept rows depend on where other users' rows sat. Same randomness draw both times.
    users, cohorts = _crowd(seed)
    own = users == 0
    perm = _permute_others(len(users), own, seed + 100)
    kw = {"max_cohorts_per_user": 2, "max_rows_per_user_per_cohort": 3, "n_cohorts": 5}
    keep = compute.bound_contributions(users, cohorts, 41, random_bytes=_fixed_bytes(seed), **kw)
    keep_p = compute.bound_contributions(users[perm], cohorts[perm], 41, random_bytes=_fixed_bytes(seed),
                                         **kw)
    assert keep[own].sum() == 6
    assert np.flatnonzero(keep & own).tolist() == sorted(perm[keep_p & own[perm]].tolist())
    values = np.arange(len(users), dtype=np.int64) * 7
    total = compute.per_user_metric(users, values, 41, lo=0, hi=10**6, max_rows_per_user=4,
                                    random_bytes=_fixed_bytes(seed))
    total_p = compute.per_user_metric(users[perm], values[perm], 41, lo=0, hi=10**6, max_rows_per_user=4,
                                      random_bytes=_fixed_bytes(seed))
    assert total[0] == total_p[0]


def test_a_users_kept_rows_do_not_depend_on_which_other_users_exist() -> None:
    # With its person's tag (the enclave passes the keyed join key), a user keeps the same rows
    # when the other users vanish and its dense code changes.
    users, cohorts = _crowd(9)
    tags = (users.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) + np.uint64(1)
    own = users == 0
    kw = {"max_cohorts_per_user": 2, "max_rows_per_user_per_cohort": 3, "n_cohorts": 5}
    keep = compute.bound_contributions(users, cohorts, 41, random_bytes=_fixed_bytes(1), row_tag=tags, **kw)
    alone = compute.bound_contributions(np.full(30, 7, np.int64), cohorts[own], 8,
                                        random_bytes=_fixed_bytes(1), row_tag=tags[own], **kw)
    assert keep[own].tolist() == alone.tolist()


def test_bounding_when_no_group_is_over_its_limit() -> None:
    users = np.arange(6, dtype=np.int64) // 2  # 3 users, 2 rows each, in 2 cohorts
    cohorts = np.arange(6, dtype=np.int64) % 2
    keep = compute.bound_contributions(users, cohorts, 3, max_cohorts_per_user=2,
                                       max_rows_per_user_per_cohort=1, random_bytes=os.urandom)
    assert keep.all()
    assert compute.per_user_metric(users, np.ones(6, np.int64), 3, lo=0, hi=1, max_rows_per_user=2,
                                   random_bytes=os.urandom).tolist() == [2, 2, 2]


def test_join_keys_are_a_two_block_cbc_mac_of_the_whole_id() -> None:
    # Reference computed per id with the library's own block calls, independently of join.py.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes(range(32))
    ids = np.random.default_rng(3).integers(0, 256, (70_000, 32), dtype=np.uint8)
    ids[:1000, :8] = ids[0, :8]  # crafted: a shared 8-byte prefix does not survive keying
    got = compute.join_keys(ids, key)
    for i in (0, 1, 999, 65_535, 65_536, 69_999):
        aes = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        x = bytes(ids[i])
        t = aes.update(bytes(a ^ b for a, b in zip(aes.update(x[:16]), x[16:], strict=True)))
        assert int(got[i]) == int.from_bytes(t[:8], "little")
    assert len(np.unique(got[:1000] >> np.uint64(40))) > 950  # 24-bit prefixes scatter
    assert not np.array_equal(got, compute.join_keys(ids, bytes(32)))
    with pytest.raises(InvalidInput):
        compute.join_keys(ids, b"short")
