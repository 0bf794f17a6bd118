"""Seeded synthetic data for two parties (not a privacy path, so NumPy's PRNG is fine here).

Publisher impressions: id digest, campaign (50 values), age_band (6), region (10): 3,000
cohorts. Advertiser conversions: id digest, value in cents (fixed point, scale 2). Each party
has several rows per user on average (Poisson-like, from uniform user draws) and about 30% of
the smaller party's users also appear on the other side. Digests are random 32-byte strings,
which is what SHA-256 of distinct identifiers looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ADVERTISER_SCHEMA",
    "DIMENSION_SIZES",
    "PUBLISHER_SCHEMA",
    "Parties",
    "generate",
]

PUBLISHER_SCHEMA = (("id", "id"), ("campaign", "dimension"), ("age_band", "dimension"),
                    ("region", "dimension"))
ADVERTISER_SCHEMA = (("id", "id"), ("value", "metric"))
DIMENSION_SIZES = {"campaign": 50, "age_band": 6, "region": 10}
VALUE_RANGE_CENTS = (100, 50_000)  # 1.00 to 500.00


@dataclass(frozen=True)
class Parties:
    publisher: dict[str, np.ndarray]
    advertiser: dict[str, np.ndarray]
    shared_users: int

    @property
    def raw_bytes(self) -> int:
        """Bytes of all plaintext columns of both parties (what the enclave must hold)."""
        return sum(c.nbytes for side in (self.publisher, self.advertiser) for c in side.values())


def generate(rows: int, *, seed: int = 2024, overlap: float = 0.3,
             publisher_rows_per_user: float = 4.0,
             advertiser_rows_per_user: float = 2.5) -> Parties:
    """``rows`` rows per party; users drawn uniformly so rows per user vary around the mean."""
    rng = np.random.default_rng(seed)
    n_pub = max(1, round(rows / publisher_rows_per_user))
    n_adv = max(1, round(rows / advertiser_rows_per_user))
    shared = round(overlap * min(n_pub, n_adv))
    # user universe: [0, n_pub) publisher users; [n_pub - shared, n_pub - shared + n_adv) advertiser
    universe = np.frombuffer(rng.bytes(32 * (n_pub + n_adv - shared)), dtype=np.uint8)
    universe = universe.reshape(-1, 32)
    pub_user = rng.integers(0, n_pub, rows)
    age_of_user = rng.integers(0, 6, n_pub).astype(np.uint16)
    region_of_user = rng.integers(0, 10, n_pub).astype(np.uint16)
    publisher = {
        "id": universe[pub_user],
        "campaign": rng.integers(0, 50, rows).astype(np.uint16),
        "age_band": age_of_user[pub_user],
        "region": region_of_user[pub_user],
    }
    adv_user = (n_pub - shared) + rng.integers(0, n_adv, rows)
    advertiser = {
        "id": universe[adv_user],
        "value": rng.integers(*VALUE_RANGE_CENTS, rows, dtype=np.int64),
    }
    return Parties(publisher, advertiser, shared)
