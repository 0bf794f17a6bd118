"""``cohort_activation``: the recipient's *own* identifiers of a matched cohort.

This releases row-level data, which no DP mechanism protects: the recipient learns which of its
own people are matched (and in the cohort). The policy must therefore name exactly one
recipient that owns a joined dataset and say ``release_own_identifiers = true``; the ids come
only from that recipient's table, so an unmatched id of the other party can never appear.

``run`` adds the pre-drawn noise to the cohort's distinct matched units and releases ids only
when that noisy size passes the ``Selection`` (the size's sensitivity:
``protocol/privacy/statistics.py``). The result is padded to a size that depends only on the
policy's ``max_identifiers`` (larger cohorts release a uniform sample of that many), so the
host cannot read the cohort size from the ciphertext length.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgpack
import numpy as np

from enclave.engine.analysis_base import Job, Output
from enclave.engine.cohorts import Selection

__all__ = ["run"]

_ID_BYTES = 32
_PAD_FLOOR = 1 << 16  # padding is always ≥ 64 KiB, so its msgpack header is always 5 bytes


def _in_cohort(job: Job, row_user_of: dict[str, np.ndarray], n_matched: int) -> np.ndarray:
    cohort = job.plan.cohort
    if not cohort:
        return np.ones(n_matched, dtype=bool)
    name = cohort[0][0].dataset
    dataset, table, user = job.policy.dataset(name), job.tables[name], row_user_of[name]
    assert dataset is not None
    rows = user >= 0
    for ref, value in cohort:
        dimension = dataset.dimension(ref.column)
        assert dimension is not None
        rows &= table.column(ref.column) == dimension.values.index(value)
    member = np.zeros(n_matched, dtype=bool)
    member[user[rows]] = True
    return member


def _own_ids(job: Job, row_user_of: dict[str, np.ndarray], member: np.ndarray,
             cap: int) -> tuple[list[bytes], bool]:
    recipient = job.plan.analysis.recipients[0]
    owners = {d.name: d.owner for d in job.policy.datasets}
    own = next(name for name in job.policy.join if owners[name] == recipient)
    user = row_user_of[own]
    rows = np.flatnonzero(user >= 0)
    rows = rows[member[user[rows]]]
    _, first = np.unique(user[rows], return_index=True)  # one row per unit
    ids = np.ascontiguousarray(job.tables[own].ids[rows[first]]).view(np.uint8).reshape(-1, _ID_BYTES)
    sampled = len(ids) > cap
    if sampled:  # a uniform sample of ``cap`` ids, chosen with the CSPRNG
        priority = np.frombuffer(job.random_bytes(8 * len(ids)), dtype="<u8")
        ids = ids[np.argsort(priority, kind="stable")[:cap]]
    ordered = ids[np.lexsort(ids.T[::-1])]  # sorted: the order says nothing about the rows
    return [bytes(row) for row in ordered], sampled


@lru_cache(maxsize=8)
def _target_size(cap: int) -> int:
    return len(msgpack.packb([[bytes(_ID_BYTES)]] * cap, use_bin_type=True)) + 5 + _PAD_FLOOR


def _padding(rows: list[list[Any]], cap: int) -> bytes:
    """Bytes that bring ``rows`` plus padding (with its 5-byte header) to a size fixed by ``cap``."""
    used = len(msgpack.packb(rows, use_bin_type=True))
    return bytes(_target_size(cap) - used - 5)


def run(job: Job, noisy: dict[str, list[int]], selection: Selection) -> Output:
    cap = job.plan.analysis.max_identifiers
    assert cap is not None
    match, row_user_of = job.match()
    member = _in_cohort(job, row_user_of, match.n_matched)
    noisy_size = max(0, int(np.count_nonzero(member)) + noisy["cohort_size"][0])
    released = selection.releases(noisy_size)
    ids, sampled = _own_ids(job, row_user_of, member, cap) if released else ([], False)
    rows: list[list[Any]] = [[digest] for digest in ids]
    return Output(["id_sha256"], rows, 1, 0 if released else 1, {
        "noisy_cohort_size": noisy_size,
        "identifiers": "the recipient's own SHA-256 identifiers; not protected by differential privacy",
        "max_identifiers": cap,
        "identifiers_sampled": sampled,
        "padding": _padding(rows, cap),
    })
