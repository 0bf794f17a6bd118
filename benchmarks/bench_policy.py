"""The benchmark's collaboration policy: the example policy, edited only where the data needs it.

``policies/advertiser-publisher.toml`` declares 8 campaigns and 5 regions; the benchmark's data
(``benchmarks/datagen.py``) has 50 campaigns and 10 regions (3,000 cohorts, the issue's shape).
So a copy gets those two value lists replaced by text substitution, optionally larger budgets,
and freshly generated party keys bound in with ``cleanroom.keys.bind_keys_into_policy`` -- the
same edit ``cleanroom.demo`` makes. Everything else (privacy settings, analyses, row limits)
stays as the example says, so the benchmark exercises the policy the project ships.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.datagen import DIMENSION_SIZES
from cleanroom.keys import PartyKeys, bind_keys_into_policy
from protocol.policy import Policy, parse_policy

__all__ = ["EXAMPLE_POLICY", "PARTIES", "bench_policy", "dimension_values", "party_keys"]

EXAMPLE_POLICY = Path(__file__).resolve().parents[1] / "policies" / "advertiser-publisher.toml"
PARTIES = {"publisher": "impressions", "advertiser": "conversions"}  # party -> its dataset
_AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")


def dimension_values() -> dict[str, tuple[str, ...]]:
    """The value strings of each dimension; code ``i`` of datagen is ``values[i]``."""
    values = {
        "campaign": tuple(f"c{i:02d}" for i in range(DIMENSION_SIZES["campaign"])),
        "age_band": _AGE_BANDS,
        "region": tuple(f"r{i}" for i in range(DIMENSION_SIZES["region"])),
    }
    assert all(len(values[k]) == n for k, n in DIMENSION_SIZES.items())
    return values


def _replace_values(text: str, dimension: str, values: tuple[str, ...]) -> str:
    # The `values = [...]` array right after `name = "<dimension>"`, possibly spanning lines.
    pattern = re.compile(r'(name = "' + re.escape(dimension) + r'"\s*\nvalues = )\[[^\]]*\]')
    listing = "[" + ", ".join(f'"{v}"' for v in values) + "]"
    new, count = pattern.subn(lambda m: m.group(1) + listing, text)
    if count != 1:
        raise RuntimeError(f"the example policy's {dimension!r} values were not found once")
    return new


def bench_policy(keys: dict[str, PartyKeys], *, budget: str | None = None,
                 max_rows: int = 50_000_000) -> tuple[bytes, Policy]:
    """Policy bytes with the benchmark's dimensions and ``keys`` bound in, and its parse.

    ``budget`` (a decimal string) replaces both datasets' total epsilon, for runs that query
    more often than the example's budget of 6.0 allows. ``max_rows`` is declared for both
    datasets: the enclave pads every query to a deadline computed from the declared max_rows,
    so a run that queries declares the rows it uploads, as a real collaboration would.
    """
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    for dimension in ("campaign", "region"):
        text = _replace_values(text, dimension, dimension_values()[dimension])
    # The example is sized for the shipped 2 GiB enclave; benchmarks run far larger, natively.
    text, count = re.subn(r"^max_rows = [0-9_]+", f"max_rows = {max_rows}", text, flags=re.M)
    if count != 2:
        raise RuntimeError("the example policy's max_rows entries were not found")
    if budget is not None:
        text, count = re.subn(r'^(impressions|conversions) = "[0-9.]+"', rf'\1 = "{budget}"',
                              text, flags=re.M)
        if count != 2:
            raise RuntimeError("the example policy's [privacy.budget] entries were not found")
    raw, bound = bind_keys_into_policy(text.encode(), {p: k.public() for p, k in keys.items()})
    if sorted(bound) != sorted(keys):
        raise RuntimeError(f"keys bound for {bound}, expected {sorted(keys)}")
    policy = parse_policy(raw)
    for name, size in DIMENSION_SIZES.items():
        dataset = policy.dataset("impressions")
        assert dataset is not None
        dim = dataset.dimension(name)
        assert dim is not None and len(dim.values) == size, name
    return raw, policy


def party_keys() -> dict[str, PartyKeys]:
    """Fresh keys for both parties (benchmark throwaways: never saved)."""
    return {party: PartyKeys.generate(party) for party in PARTIES}
