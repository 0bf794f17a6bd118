"""Seeded synthetic data for two parties (not a privacy path, so NumPy's PRNG is fine here).

Publisher impressions: id digest, campaign (50 values), age_band (6), region (10): 3,000
cohorts. Advertiser conversions: id digest, value in cents (fixed point, scale 2). Each party
has several rows per user on average (Poisson-like, from uniform user draws) and about 30% of
the smaller party's users also appear on the other side. Digests are random-looking 32-byte
strings, which is what SHA-256 of distinct identifiers looks like.

The data is made block by block (``blocks``): block ``b`` of a side depends only on the seed, the
side, ``b`` and the shape, never on the blocks before it. A user's digest and attributes are a
function of the user's number (AES under a key derived from the seed), so no table of users is
held either. A 100M-row party can therefore be produced in pieces of ``BLOCK_ROWS`` rows by any
process, and ``generate`` (the whole columns at once, for small runs) gives the same rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "ADVERTISER_SCHEMA",
    "BLOCK_ROWS",
    "DIMENSION_SIZES",
    "PUBLISHER_SCHEMA",
    "Parties",
    "Shape",
    "blocks",
    "generate",
    "raw_bytes",
    "rebatch",
]

PUBLISHER_SCHEMA = (("id", "id"), ("campaign", "dimension"), ("age_band", "dimension"),
                    ("region", "dimension"))
ADVERTISER_SCHEMA = (("id", "id"), ("value", "metric"))
DIMENSION_SIZES = {"campaign": 50, "age_band": 6, "region": 10}
VALUE_RANGE_CENTS = (100, 50_000)  # 1.00 to 500.00
BLOCK_ROWS = 1 << 20
SIDES = ("publisher", "advertiser")
_ROW_BYTES = {"publisher": 32 + 3 * 2, "advertiser": 32 + 8}


@dataclass(frozen=True)
class Parties:
    publisher: dict[str, np.ndarray]
    advertiser: dict[str, np.ndarray]
    shared_users: int

    @property
    def raw_bytes(self) -> int:
        """Bytes of all plaintext columns of both parties (what the enclave must hold)."""
        return sum(c.nbytes for side in (self.publisher, self.advertiser) for c in side.values())


@dataclass(frozen=True)
class Shape:
    """How many users each side has and which of them are shared, for ``rows`` rows per side."""

    rows: int
    seed: int = 2024
    overlap: float = 0.3
    publisher_rows_per_user: float = 4.0
    advertiser_rows_per_user: float = 2.5

    @property
    def n_pub(self) -> int:
        return max(1, round(self.rows / self.publisher_rows_per_user))

    @property
    def n_adv(self) -> int:
        return max(1, round(self.rows / self.advertiser_rows_per_user))

    @property
    def shared(self) -> int:
        # publisher users are [0, n_pub); advertiser users [n_pub - shared, n_pub - shared + n_adv)
        return round(self.overlap * min(self.n_pub, self.n_adv))


def raw_bytes(rows: int) -> int:
    """Plaintext column bytes of both parties at ``rows`` rows each (38 + 40 bytes per row)."""
    return rows * sum(_ROW_BYTES.values())


def _aes_blocks(key: bytes, users: np.ndarray, lanes: int) -> np.ndarray:
    """(n, 2 * lanes) uint64: AES_key((u, j)) for j in [0, lanes), a permutation of the inputs."""
    plain = np.empty((len(users), lanes, 2), dtype="<u8")
    plain[:, :, 0] = users[:, None]
    plain[:, :, 1] = np.arange(lanes, dtype="<u8")
    out = np.empty(plain.size + 2, dtype="<u8")  # update_into wants one spare block
    Cipher(algorithms.AES(key), modes.ECB()).encryptor().update_into(  # noqa: S305 (test data)
        plain.data.cast("B"), out.data.cast("B"))
    return out[:-2].reshape(len(users), 2 * lanes)


def _key(seed: int) -> bytes:
    return hashlib.sha256(b"cleanroom-bench-users" + seed.to_bytes(8, "little")).digest()


def _user_ids(key: bytes, users: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 digest of each user number: distinct users get distinct digests."""
    return _aes_blocks(key, users.astype("<u8"), 2).view(np.uint8).reshape(-1, 32)


def _user_attributes(key: bytes, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(age_band, region) of each user, fixed per user as a publisher's profile would be."""
    mixed = _aes_blocks(key, users.astype("<u8") | np.uint64(1 << 63), 1)[:, 0]
    return ((mixed % np.uint64(6)).astype(np.uint16),
            ((mixed >> np.uint64(32)) % np.uint64(10)).astype(np.uint16))


def _block(shape: Shape, side: str, index: int, rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([shape.seed, SIDES.index(side), index])
    key = _key(shape.seed)
    if side == "publisher":
        users = rng.integers(0, shape.n_pub, rows)
        age, region = _user_attributes(key, users)
        return {"id": _user_ids(key, users),
                "campaign": rng.integers(0, 50, rows).astype(np.uint16),
                "age_band": age, "region": region}
    users = (shape.n_pub - shape.shared) + rng.integers(0, shape.n_adv, rows)
    return {"id": _user_ids(key, users),
            "value": rng.integers(*VALUE_RANGE_CENTS, rows, dtype=np.int64)}


def blocks(shape: Shape, side: str) -> Iterator[dict[str, np.ndarray]]:
    """One side's columns, ``BLOCK_ROWS`` rows at a time (the last block shorter)."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}")
    for index, start in enumerate(range(0, shape.rows, BLOCK_ROWS)):
        yield _block(shape, side, index, min(BLOCK_ROWS, shape.rows - start))


def rebatch(source: Iterator[dict[str, np.ndarray]], rows: int) -> Iterator[dict[str, np.ndarray]]:
    """The same columns re-cut into pieces of ``rows`` rows (the last one shorter)."""
    pending: list[dict[str, np.ndarray]] = []
    held = 0
    for block in source:
        pending.append(block)
        held += len(block["id"])
        while held >= rows:
            joined = {k: np.concatenate([b[k] for b in pending]) for k in pending[0]}
            yield {k: v[:rows] for k, v in joined.items()}
            rest = {k: v[rows:] for k, v in joined.items()}
            held -= rows
            pending = [rest] if held else []
    if held:
        yield {k: np.concatenate([b[k] for b in pending]) for k in pending[0]}


def generate(rows: int, *, seed: int = 2024, overlap: float = 0.3,
             publisher_rows_per_user: float = 4.0,
             advertiser_rows_per_user: float = 2.5) -> Parties:
    """``rows`` rows per party in memory; users drawn uniformly so rows per user vary around the mean."""
    shape = Shape(rows, seed, overlap, publisher_rows_per_user, advertiser_rows_per_user)
    sides = [{k: np.concatenate([b[k] for b in parts]) for k in parts[0]}
             for parts in (list(blocks(shape, side)) for side in SIDES)]
    return Parties(sides[0], sides[1], shape.shared)
