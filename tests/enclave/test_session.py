"""The enclave end to end in one process: frames in, signed (and encrypted) outputs out."""

from __future__ import annotations

import os
from collections import defaultdict
from decimal import Decimal

import numpy as np
import pytest

from protocol.errors import (
    AuthenticationFailed,
    BudgetExhausted,
    ConflictError,
    DecryptionFailed,
    InvalidInput,
    PolicyViolation,
    ProtocolError,
    ReplayDetected,
    StateError,
)
from protocol.wire import unpack_document
from tests.conftest import ZeroNoise
from tests.support.enclave_harness import EnclaveHarness, digests

N_PEOPLE = 600


def _datasets(seed: int = 1) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """People 0..599; the publisher saw 0..399, the advertiser converted 200..599.

    Each publisher person has one or two impressions in one campaign/age/region cohort and each
    advertiser person one or two conversions, well inside the policy's contribution bounds, so
    bounding drops nothing and the plaintext reference below is exact.
    """
    rng = np.random.default_rng(seed)
    people = digests(N_PEOPLE, seed)
    pub_people = np.repeat(np.arange(0, 400), rng.integers(1, 3, 400))
    campaign = rng.integers(0, 2, 400).astype(np.uint16)[pub_people]
    age = rng.integers(0, 2, 400).astype(np.uint16)[pub_people]
    region = rng.integers(0, 5, 400).astype(np.uint16)[pub_people]
    adv_people = np.repeat(np.arange(200, 600), rng.integers(1, 3, 400))
    value = rng.integers(0, 80_000, len(adv_people)).astype(np.int64)  # some above the 500.00 clamp
    impressions = {"id": people[pub_people], "campaign": campaign, "age_band": age, "region": region}
    conversions = {"id": people[adv_people], "value": value}
    return impressions, conversions


def _reference(impressions, conversions, group_by):
    """Plaintext answer computed independently, with Python dicts over the raw rows."""
    totals: dict[bytes, int] = defaultdict(int)
    for pid, v in zip(map(bytes, conversions["id"]), conversions["value"], strict=True):
        totals[pid] += min(max(int(v), 0), 50_000)
    cohorts: dict[tuple, dict] = defaultdict(lambda: {"users": set(), "rows": 0})
    for i, pid in enumerate(map(bytes, impressions["id"])):
        if pid in totals:
            key = tuple(int(impressions[c][i]) for c in group_by)
            cohorts[key]["users"].add(pid)
            cohorts[key]["rows"] += 1
    return {key: (len(c["users"]), c["rows"], sum(totals[p] for p in c["users"]))
            for key, c in cohorts.items()}


def _flip(record: bytes, offset: int) -> bytes:
    out = bytearray(record)
    out[offset] ^= 1
    return bytes(out)


def _set_byte(record: bytes, offset: int, value: int) -> bytes:
    out = bytearray(record)
    out[offset] = value
    return bytes(out)


@pytest.fixture
def enclave(policy_bytes: bytes) -> EnclaveHarness:
    return EnclaveHarness(policy_bytes, ZeroNoise())


@pytest.fixture
def loaded(enclave: EnclaveHarness, parties) -> EnclaveHarness:
    impressions, conversions = _datasets()
    enclave.upload(parties["publisher"], "impressions", impressions)
    enclave.upload(parties["advertiser"], "conversions", conversions)
    return enclave


def test_attestation_binds_keys_policy_and_nonce(enclave: EnclaveHarness) -> None:
    from protocol.report_data import report_data

    nonce = bytes(range(32))
    att = enclave.call("attest", {"nonce": nonce})
    assert att["quote"] is None and att["mode"] == "simulation"
    assert att["policy"] == enclave.policy.raw
    assert att["report_data"] == report_data(att["enc_pub"], att["sig_pub"], enclave.policy.hash, nonce)


def test_upload_receipt_is_signed_and_counts_rows(enclave: EnclaveHarness, parties) -> None:
    impressions, _ = _datasets()
    receipt = enclave.upload(parties["publisher"], "impressions", impressions)
    assert receipt["rows"] == len(impressions["id"]) and receipt["simulated"] is True
    listed = enclave.call("list_uploads", {})["uploads"]
    assert [u["upload_id"] for u in listed] == [receipt["upload_id"]]


def test_overlap_matches_plaintext(loaded: EnclaveHarness, parties) -> None:
    result = loaded.query(parties["advertiser"], "overlap", {"group_by": []})
    assert result.rows == [[200]]  # people 200..399
    impressions, conversions = _datasets()
    by_campaign = loaded.query(parties["publisher"], "overlap", {"group_by": ["impressions.campaign"]})
    ref = _reference(impressions, conversions, ["campaign"])
    values = loaded.policy.dataset("impressions").dimension("campaign").values
    expected = [[values[k[0]], users] for k, (users, _, _) in sorted(ref.items()) if users >= 50]
    assert expected and by_campaign.rows == expected


def test_aggregate_matches_plaintext(loaded: EnclaveHarness, parties) -> None:
    impressions, conversions = _datasets()
    params = {"group_by": ["impressions.campaign", "impressions.age_band"], "metric": "conversions.value"}
    result = loaded.query(parties["advertiser"], "conversions_by_segment", params)
    dataset = loaded.policy.dataset("impressions")
    ref = _reference(impressions, conversions, ["campaign", "age_band"])
    expected = []
    for (campaign, age), (users, rows, total) in sorted(ref.items()):
        if users >= 50:
            expected.append([dataset.dimension("campaign").values[campaign],
                             dataset.dimension("age_band").values[age], users, rows,
                             str(Decimal(total).scaleb(-2)),
                             str((Decimal(total) / users).scaleb(-2).quantize(Decimal("0.01")))])
    assert len(expected) >= 2 and result.rows == expected
    assert result.columns == ["campaign", "age_band", "users", "rows", "value_sum", "value_mean_per_user"]
    privacy = result.privacy
    assert privacy["epsilon_charged"] == "3/5"
    assert privacy["budget_remaining"] == {"impressions": "27/5", "conversions": "27/5"}
    assert privacy["suppressed_cohorts"] == 48 - len(expected)
    # Sensitivities come from the policy's bounds: L0=4, Linf=8, C=50000 cents.
    assert privacy["sensitivity"] == {"users": 4, "rows": 32, "sum": 4 * 8 * 50_000}


def test_noise_scale_is_sensitivity_over_epsilon_share(policy_bytes: bytes, parties) -> None:
    noise = ZeroNoise()
    enclave = EnclaveHarness(policy_bytes, noise)
    impressions, conversions = _datasets()
    enclave.upload(parties["publisher"], "impressions", impressions)
    enclave.upload(parties["advertiser"], "conversions", conversions)
    enclave.query(parties["advertiser"], "overlap", {"group_by": []})
    assert noise.scales == [1 / (enclave.policy.analysis("overlap").epsilon)]


@pytest.mark.parametrize("mutate", ["flip", "reorder", "truncate", "drop_last_flag"])
def test_tampered_chunks_fail_as_one_error(enclave: EnclaveHarness, parties, mutate: str) -> None:
    impressions, _ = _datasets()
    _, records = enclave.encrypt(parties["publisher"], "impressions", impressions)
    assert len(records) > 3
    if mutate == "flip":
        records[2] = _flip(records[2], -1)
    elif mutate == "reorder":
        records[1], records[2] = records[2], records[1]
    elif mutate == "truncate":  # host cuts the stream short and claims the cut is the end
        records = [*records[:-2], _set_byte(records[-2], 4, 1)]
    else:  # the real last chunk relabelled as not-last
        records[-1] = _set_byte(records[-1], 4, 0)
    with pytest.raises((DecryptionFailed, AssertionError)) as info:
        enclave.send_records(records)
    if mutate != "drop_last_flag":
        assert info.type is DecryptionFailed
    assert enclave.call("list_uploads", {})["uploads"] == []


def test_upload_signed_by_the_wrong_party(enclave: EnclaveHarness, parties) -> None:
    impressions, _ = _datasets()
    _, records = enclave.encrypt(parties["publisher"], "impressions", impressions)
    import msgpack

    from protocol.upload import RECORD_HEADER
    head = msgpack.unpackb(records[0][RECORD_HEADER.size:], raw=False)
    head["signature"] = parties["advertiser"].sign(b"cleanroom/v1/upload-header\x00", head["header"])
    with pytest.raises(AuthenticationFailed):
        enclave.call("upload_begin", head)


def test_upload_to_another_partys_dataset_is_denied(enclave: EnclaveHarness, parties) -> None:
    conversions_as_publisher = enclave.policy.dataset("conversions")
    from cleanroom.upload_crypto import UploadEncryptor
    with pytest.raises(InvalidInput):  # the client refuses first...
        UploadEncryptor(parties["publisher"], enclave.policy, conversions_as_publisher,
                        enclave.ready["enc_pub"])


def test_same_upload_twice_is_a_conflict(enclave: EnclaveHarness, parties) -> None:
    impressions, _ = _datasets()
    _, records = enclave.encrypt(parties["publisher"], "impressions", impressions)
    enclave.send_records(records)
    with pytest.raises(ConflictError):
        enclave.send_records(records)


def test_replayed_query_is_rejected(loaded: EnclaveHarness, parties) -> None:
    request = loaded.signed_query(parties["advertiser"], "overlap", {"group_by": []})
    loaded.call("query", request)
    with pytest.raises(ReplayDetected):
        loaded.call("query", request)


def test_stale_query_is_rejected(loaded: EnclaveHarness, parties) -> None:
    with pytest.raises(ReplayDetected):
        loaded.call("query", loaded.signed_query(parties["advertiser"], "overlap", {"group_by": []},
                                                 issued_at=1))


@pytest.mark.parametrize(
    ("analysis", "params", "party"),
    [
        ("nope", {}, "advertiser"),
        ("conversions_by_segment", {"group_by": ["impressions.campaign"], "metric": "conversions.nope"},
         "advertiser"),
        ("conversions_by_segment", {"group_by": ["impressions.campaign", "impressions.age_band",
                                                 "impressions.region"], "metric": "conversions.value"},
         "advertiser"),
        ("conversions_by_segment", {"group_by": [], "metric": "conversions.value"}, "advertiser"),
        ("overlap", {"group_by": ["impressions.region"]}, "publisher"),
        ("overlap", {"metric": "conversions.value"}, "publisher"),
    ],
)
def test_disallowed_queries_are_denied_and_cost_nothing(loaded: EnclaveHarness, parties, analysis,
                                                         params, party) -> None:
    with pytest.raises(PolicyViolation):
        loaded.call("query", loaded.signed_query(parties[party], analysis, params))
    result = loaded.query(parties["advertiser"], "overlap", {"group_by": []})
    assert result.privacy["budget_remaining"]["impressions"] == "29/5"  # only this query paid


def test_budget_exhaustion_refuses_the_overspending_query(loaded: EnclaveHarness, parties) -> None:
    params = {"group_by": ["impressions.campaign"], "metric": "conversions.value"}
    for _ in range(10):  # 10 x 0.6 = the whole 6.0
        loaded.query(parties["advertiser"], "conversions_by_segment", params)
    with pytest.raises(BudgetExhausted):
        loaded.query(parties["advertiser"], "conversions_by_segment", params)
    with pytest.raises(BudgetExhausted):
        loaded.query(parties["advertiser"], "overlap", {"group_by": []})


def test_query_before_data_is_a_conflict(enclave: EnclaveHarness, parties) -> None:
    with pytest.raises(ConflictError):
        enclave.call("query", enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []}))


def test_forged_query_signature(loaded: EnclaveHarness, parties) -> None:
    request = loaded.signed_query(parties["advertiser"], "overlap", {"group_by": []})
    request["signature"] = bytes(64)
    with pytest.raises(AuthenticationFailed):
        loaded.call("query", request)


def test_bad_frames_get_error_replies_and_the_session_goes_on(loaded: EnclaveHarness, parties) -> None:
    for frame in (b"", b"\xc1", b"\x93\x01\x02\x03"):
        reply = loaded.call_raw(frame)
        assert reply.type == "error" and reply.body["code"] == "bad_message"
    with pytest.raises(ProtocolError):
        loaded.call("upload_chunk", {"stream": 99, "index": 0, "last": True, "data": b""})
    assert loaded.query(parties["advertiser"], "overlap", {"group_by": []}).rows == [[200]]


def test_restart_restores_keys_budget_and_requires_replay(policy_bytes: bytes, parties) -> None:
    first = EnclaveHarness(policy_bytes, ZeroNoise())
    impressions, conversions = _datasets()
    _, pub_records = first.encrypt(parties["publisher"], "impressions", impressions)
    _, adv_records = first.encrypt(parties["advertiser"], "conversions", conversions)
    first.send_records(pub_records)
    first.send_records(adv_records)
    first.query(parties["advertiser"], "overlap", {"group_by": []})

    second = EnclaveHarness(policy_bytes, ZeroNoise(), sealed=first.sealed[-1])
    assert second.ready["sig_pub"] == first.ready["sig_pub"]
    with pytest.raises(StateError):  # the host has not replayed the accepted uploads yet
        second.call("query", second.signed_query(parties["advertiser"], "overlap", {"group_by": []}))
    second.send_records(pub_records)
    second.send_records(adv_records)
    result = second.query(parties["advertiser"], "overlap", {"group_by": []})
    assert result.rows == [[200]]
    assert result.privacy["budget_remaining"]["impressions"] == "28/5"  # both queries paid


def test_restart_refuses_an_altered_replay(policy_bytes: bytes, parties) -> None:
    first = EnclaveHarness(policy_bytes, ZeroNoise())
    impressions, _ = _datasets()
    _, records = first.encrypt(parties["publisher"], "impressions", impressions)
    first.send_records(records)
    second = EnclaveHarness(policy_bytes, ZeroNoise(), sealed=first.sealed[-1])
    with pytest.raises(DecryptionFailed):
        second.send_records([records[0], _flip(records[1], 10), *records[2:]])


def test_sealed_state_is_bound_to_its_policy_and_key(policy_bytes: bytes, parties) -> None:
    first = EnclaveHarness(policy_bytes, ZeroNoise())
    with pytest.raises(StateError):
        EnclaveHarness(policy_bytes, ZeroNoise(), sealed=first.sealed[-1], sealing_key=b"x" * 32)
    other = policy_bytes.replace(b'min_cohort_size = 50', b'min_cohort_size = 51')
    with pytest.raises(StateError):
        EnclaveHarness(other, ZeroNoise(), sealed=first.sealed[-1])


def test_sealed_state_of_an_older_format_is_refused_clearly(policy_bytes: bytes) -> None:
    from enclave.state import sealing

    first = EnclaveHarness(policy_bytes, ZeroNoise())
    state = sealing.unseal(first.sealed[-1], b"k" * 32)
    del state["audit_head"]  # as written before the audit log existed
    with pytest.raises(StateError, match="older"):
        resealed = sealing.seal(state, b"k" * 32, random_bytes=os.urandom)
        EnclaveHarness(policy_bytes, ZeroNoise(), sealed=resealed)


@pytest.mark.parametrize("hint", [None, 10, 10**9])
def test_a_rows_hint_only_sizes_the_columns(enclave: EnclaveHarness, parties, hint) -> None:
    impressions, _ = _datasets()
    rows = len(impressions["id"])
    _, records = enclave.encrypt(parties["publisher"], "impressions", impressions,
                                 rows_hint=rows if hint is None else hint)
    assert unpack_document("upload_receipt", enclave.send_records(records)["receipt"])["rows"] == rows
    table = enclave.session._require().tables["impressions"]
    if hint is None:  # an exact hint: one allocation, no regrowth
        assert table.capacity == rows
    else:  # a wrong hint (too small, or absurd) changes nothing but the allocation pattern,
        # and an over-stated one does not keep its reservation once the upload is committed
        assert table.rows == rows and table.capacity <= 2 * rows


def test_a_replay_of_an_upload_the_enclave_never_accepted_is_refused(enclave: EnclaveHarness,
                                                                      parties) -> None:
    """The host stored it, then crashed before the commit: the party has no receipt for it."""
    import msgpack

    from protocol.upload import RECORD_HEADER

    impressions, _ = _datasets()
    _, records = enclave.encrypt(parties["publisher"], "impressions", impressions)
    head = msgpack.unpackb(records[0][RECORD_HEADER.size:], raw=False)
    with pytest.raises(StateError, match="never accepted"):
        enclave.call("upload_begin", {**head, "replay": True})
    enclave.send_records(records)  # the party's own retry is accepted as a new upload


def test_winding_the_clock_back_does_not_make_the_enclave_forget_a_request(policy_bytes: bytes,
                                                                            parties) -> None:
    """The host controls the enclave's clock under Gramine; the sealed floor does not go down."""
    now = [1_800_000_000]
    enclave = EnclaveHarness(policy_bytes, ZeroNoise(), clock=lambda: now[0])
    impressions, conversions = _datasets()
    streams = [enclave.encrypt(parties["publisher"], "impressions", impressions)[1],
               enclave.encrypt(parties["advertiser"], "conversions", conversions)[1]]
    for records in streams:
        enclave.send_records(records)
    first = enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []}, issued_at=now[0])
    enclave.call("query", first)
    now[0] += 400  # a later request moves the floor past the first one ...
    enclave.call("query", enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []},
                                               issued_at=now[0]))
    now[0] -= 390  # ... and winding the clock back does not bring the first one back
    with pytest.raises(ReplayDetected, match="older"):
        enclave.call("query", first)
    restarted = EnclaveHarness(policy_bytes, ZeroNoise(), sealed=enclave.sealed[-1],
                               clock=lambda: now[0])
    for records in streams:
        restarted.send_records(records)
    with pytest.raises(ReplayDetected):  # nor does a restart from the sealed state
        restarted.call("query", first)
