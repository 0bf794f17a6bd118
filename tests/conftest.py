"""Fixtures shared across the suite: parties, a policy bound to their keys, noise sources."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from cleanroom.keys import PartyKeys

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "policies" / "advertiser-publisher.toml"
# The example policy's public keys, replaced by the test parties' keys.
_EXAMPLE_KEYS = {
    "publisher": ("1288c6f7ef2ed6b18bc133de1bfce18e90690cf7a045348dcdef616c01929264",
                  "6377aa760ae0090699c24b7aad316d8a25c76a4930164f7438b08a45549b6242"),
    "advertiser": ("34cbc1938562e67960922219d78edbdafca012be62de131d4e16e6339479d41a",
                   "d0ad458ba43c92f1a2573920db55503d0b4ffc81cd57a087063805c1cbd40233"),
}


def bind_policy(parties: dict[str, PartyKeys], text: str | None = None) -> bytes:
    text = EXAMPLE_POLICY.read_text() if text is None else text
    for party_id, (signing, result) in _EXAMPLE_KEYS.items():
        keys = parties[party_id]
        assert signing in text and result in text
        text = text.replace(signing, keys.signing_public.hex()).replace(result, keys.result_public.hex())
    return text.encode()


class ZeroNoise:
    """No noise at all: lets tests compare released numbers with a plaintext reference."""

    mechanism = "none (test)"

    def __init__(self) -> None:
        self.scales: list[Fraction] = []

    def laplace(self, scale: Fraction, count: int) -> list[int]:
        self.scales.append(scale)
        return [0] * count


@pytest.fixture(autouse=True, scope="session")
def _isolated_cleanroom_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Clients remember audit heads under $CLEANROOM_HOME; never in the tester's home."""
    os.environ["CLEANROOM_HOME"] = str(tmp_path_factory.mktemp("cleanroom-home"))


@pytest.fixture(scope="session")
def parties() -> dict[str, PartyKeys]:
    return {name: PartyKeys.generate(name) for name in ("publisher", "advertiser")}


@pytest.fixture(scope="session")
def policy_bytes(parties: dict[str, PartyKeys]) -> bytes:
    return bind_policy(parties)
