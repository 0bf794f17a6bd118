"""The enclave's join key: generated at init, sealed with the other keys, passed to the engine."""

from __future__ import annotations

import pytest

from enclave.requests import queries
from enclave.state import sealing
from enclave.state.keys import EnclaveKeys
from protocol.errors import StateError
from tests.conftest import ZeroNoise
from tests.support.enclave_harness import EnclaveHarness, digests

SEALING_KEY = b"k" * 32  # the harness's


def test_the_join_key_is_sealed_and_restored() -> None:
    keys = EnclaveKeys.generate()
    assert len(keys.join) == 32 and keys.join != EnclaveKeys.generate().join
    restored = EnclaveKeys.from_sealed(keys.to_sealable())
    assert restored.join == keys.join and restored.sig_pub == keys.sig_pub


@pytest.mark.parametrize("join", [None, b"short", "not bytes"])
def test_sealed_keys_without_a_valid_join_key_fail_closed(join) -> None:
    sealable = EnclaveKeys.generate().to_sealable()
    if join is None:
        del sealable["join"]
    else:
        sealable["join"] = join
    with pytest.raises(StateError):
        EnclaveKeys.from_sealed(sealable)


def test_a_sealed_state_without_a_join_key_is_refused_at_restart(policy_bytes: bytes) -> None:
    first = EnclaveHarness(policy_bytes, ZeroNoise())
    state = sealing.unseal(first.sealed[-1], SEALING_KEY)
    del state["keys"]["join"]  # as an older version (or an edited blob) would have it
    old = sealing.seal(state, SEALING_KEY, random_bytes=lambda n: b"\x01" * n)
    with pytest.raises(StateError):  # never an unkeyed join
        EnclaveHarness(policy_bytes, ZeroNoise(), sealed=old)


def test_the_query_handler_joins_with_the_sealed_join_key(policy_bytes: bytes, parties,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    run_query = queries.run_query

    def spy(*args, **kwargs):
        seen.append(kwargs["join_key"])
        return run_query(*args, **kwargs)

    monkeypatch.setattr(queries, "run_query", spy)
    first = EnclaveHarness(policy_bytes, ZeroNoise())
    ids = digests(50, 3)
    first.upload(parties["publisher"], "impressions", {
        "id": ids, **{c: ids[:, 0].astype("uint16") % 2 for c in ("campaign", "age_band", "region")}})
    first.upload(parties["advertiser"], "conversions", {"id": ids, "value": ids[:, 1].astype("int64")})
    assert first.query(parties["advertiser"], "overlap", {"group_by": []}).rows == [[50]]
    second = EnclaveHarness(policy_bytes, ZeroNoise(), sealed=first.sealed[-1])
    restored = second.session._require().keys.join
    assert seen == [first.session._require().keys.join] and restored == seen[0]
