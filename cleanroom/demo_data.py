"""Seeded synthetic data for the demo: a publisher's impressions and an advertiser's conversions.

NumPy's seeded RNG is fine here: this is test data, not a privacy path. Impressions fall in
October and November 2026; a shared person's orders come a few days after one of their
impressions, more often in the campaign's test arm than in its held-out control arm, so the
demo's lift query has something to find. Emails are messy on the publisher's side (case and
whitespace), as real exports are, and normalisation must undo it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from protocol.policy import Policy

__all__ = ["generate_data"]

_OCTOBER = 1_790_812_800  # 2026-10-01T00:00:00Z
_DAY = 86_400


def _rows_per_person(rng: np.random.Generator, people: int, low: int, high: int,
                     at_least: int) -> np.ndarray:
    counts = rng.integers(low, high + 1, size=people)
    short = at_least - int(counts.sum())
    if short > 0:  # top up so each party has at least the requested number of rows
        np.add.at(counts, rng.integers(0, people, size=short), 1)
    return counts


def _emails(rng: np.random.Generator, person: np.ndarray, messy: bool) -> np.ndarray:
    emails = np.char.add(np.char.add("person", person.astype(str)), "@example.org")
    if messy:  # real exports differ in case and whitespace; normalisation must undo it
        emails = np.where(rng.random(len(emails)) < 0.1, np.char.upper(emails), emails)
        emails = np.where(rng.random(len(emails)) < 0.05, np.char.add(" ", emails), emails)
    return emails


def _write_csv(path: Path, header: Sequence[str], columns: Sequence[np.ndarray]) -> None:
    joined = columns[0].astype(str)
    for column in columns[1:]:
        joined = np.char.add(np.char.add(joined, ","), column.astype(str))
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        f.write("\n".join(joined.tolist()))
        f.write("\n")


def _iso(seconds: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC text, as a party's export would have it."""
    return np.char.add(np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s"), "Z")


def _order_times(rng: np.random.Generator, buyer: np.ndarray, person: np.ndarray, served: np.ndarray,
                 control_of: np.ndarray, pub_people: int) -> np.ndarray:
    """When each order was placed: a shared person's often 0-6 days after one of their
    impressions (less often in the control arm), everyone else's at any time in the period."""
    when = _OCTOBER + rng.integers(0, 61 * _DAY, size=len(buyer))
    first_seen = np.full(pub_people, -1, dtype=np.int64)
    first_seen[person] = served  # one of the person's impressions (the last written wins)
    seen = np.zeros(len(buyer), dtype=bool)
    shared = buyer < pub_people
    seen[shared] = first_seen[buyer[shared]] >= 0
    nudged = seen & (rng.random(len(buyer)) < np.where(
        control_of[np.minimum(buyer, pub_people - 1)], 0.25, 0.6))
    when[nudged] = first_seen[buyer[nudged]] + rng.integers(0, 7 * _DAY, size=int(nudged.sum()))
    return when


def generate_data(policy: Policy, work: Path, rows: int, overlap: float, seed: int) -> dict[str, Path]:
    """Write ``impressions.csv`` and ``conversions.csv``; return {dataset: path}."""
    rng = np.random.default_rng(seed)
    impressions, conversions = policy.dataset("impressions"), policy.dataset("conversions")
    assert impressions is not None and conversions is not None
    campaigns = np.array(impressions.dimension("campaign").values)  # type: ignore[union-attr]
    ages = np.array(impressions.dimension("age_band").values)  # type: ignore[union-attr]
    regions = np.array(impressions.dimension("region").values)  # type: ignore[union-attr]

    pub_people = max(1, rows // 4)
    pub_counts = _rows_per_person(rng, pub_people, 1, 7, rows)
    person = np.repeat(np.arange(pub_people), pub_counts)
    age_of = rng.integers(0, len(ages), size=pub_people)  # a person keeps one age band
    region_of = rng.integers(0, len(regions), size=pub_people)
    order = rng.permutation(len(person))
    person = person[order]
    control_of = rng.random(pub_people) < 0.2  # a person is held out of the campaigns (control)
    served = _OCTOBER + rng.integers(0, 61 * _DAY, size=len(person))  # October and November
    header = ["email", "campaign", "age_band", "region", "device"]
    columns = [
        _emails(rng, person, messy=True),
        campaigns[rng.integers(0, len(campaigns), size=len(person))],
        ages[age_of[person]],
        regions[region_of[person]],
        np.array(["mobile", "desktop", "tablet"])[rng.integers(0, 3, size=len(person))],
    ]
    if impressions.dimension("arm") is not None:
        header.append("arm")
        columns.append(np.where(control_of[person], "control", "test"))
    if impressions.timestamp("ts") is not None:
        header.append("ts")
        columns.append(_iso(served))
    pub_path = work / "publisher-impressions.csv"
    _write_csv(pub_path, header, columns)

    adv_people = max(1, rows * 2 // 3)
    shared = min(round(overlap * adv_people), pub_people)
    # The campaigns work: a held-out (control) person buys two thirds as often as a test one.
    weight = np.where(control_of, 2.0, 3.0)
    adv_ids = np.concatenate([rng.choice(pub_people, size=shared, replace=False, p=weight / weight.sum()),
                              pub_people + np.arange(adv_people - shared)])
    adv_counts = _rows_per_person(rng, adv_people, 1, 2, rows)
    buyer = rng.permutation(np.repeat(adv_ids, adv_counts))
    cents = np.clip(rng.lognormal(np.log(6_000), 0.8, size=len(buyer)), 1, 90_000).astype(np.int64)
    values = np.char.add(np.char.add((cents // 100).astype(str), "."),
                         np.char.zfill((cents % 100).astype(str), 2))
    header, columns = ["email", "value"], [_emails(rng, buyer, messy=False), values]
    if conversions.timestamp("ts") is not None:
        header.append("ts")
        columns.append(_iso(_order_times(rng, buyer, person, served, control_of, pub_people)))
    adv_path = work / "advertiser-conversions.csv"
    _write_csv(adv_path, header, columns)
    return {"impressions": pub_path, "conversions": adv_path}
