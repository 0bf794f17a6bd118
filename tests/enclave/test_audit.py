"""Audit entries, heads on every output, and deletion, driven through the enclave's frames."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from cleanroom.audit import AuditHead, verify_audit_log
from protocol.crypto import DELETE_LABEL
from protocol.errors import ConflictError, PolicyViolation, ReplayDetected
from protocol.wire import pack, pack_document, unpack_document
from tests.conftest import ZeroNoise
from tests.support.enclave_harness import EnclaveHarness, digests


def _data() -> tuple[dict, dict]:
    people = digests(300, seed=3)
    impressions = {"id": people[:200], "campaign": np.zeros(200, np.uint16),
                   "age_band": np.zeros(200, np.uint16), "region": np.zeros(200, np.uint16)}
    conversions = {"id": people[100:], "value": np.full(200, 1000, np.int64)}
    return impressions, conversions


def _verify(enclave: EnclaveHarness) -> tuple[AuditHead, list[dict]]:
    return verify_audit_log(enclave.published, enclave.ready["sig_pub"],
                            enclave.policy.collaboration_id)


def _delete_request(enclave: EnclaveHarness, keys, dataset: str) -> dict:
    request = pack_document("delete_request", {
        "collaboration_id": enclave.policy.collaboration_id, "policy_hash": enclave.policy.hash,
        "party": keys.party_id, "dataset": dataset, "nonce": os.urandom(16),
        "issued_at": int(time.time())})
    return {"request": request, "signature": keys.sign(DELETE_LABEL, request)}


@pytest.fixture
def enclave(policy_bytes: bytes) -> EnclaveHarness:
    return EnclaveHarness(policy_bytes, ZeroNoise())


def _upload(enclave: EnclaveHarness, keys, dataset: str, columns: dict) -> dict:
    _, records = enclave.encrypt(keys, dataset, columns)
    return unpack_document("upload_receipt", enclave.send_records(records)["receipt"])


def test_every_change_is_a_signed_linked_entry_and_outputs_carry_the_head(enclave, parties) -> None:
    impressions, conversions = _data()
    first = _upload(enclave, parties["publisher"], "impressions", impressions)
    second = _upload(enclave, parties["advertiser"], "conversions", conversions)
    assert (first["audit_head"]["seq"], second["audit_head"]["seq"]) == (1, 2)

    reply = enclave.call("query", enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []}))
    head, bodies = _verify(enclave)
    assert [b["kind"] for b in bodies] == ["upload_accepted", "upload_accepted", "query_run",
                                           "budget_charged", "result_released"]
    assert bodies[3]["details"]["amount"] == "1/5" and head.seq == 5
    from cleanroom.result_open import open_result
    result = open_result(reply["results"]["advertiser"], parties["advertiser"],
                         enclave.ready["sig_pub"], enclave.policy, reply["query_id"])
    assert result.body["audit_head"]["seq"] == 4  # the head that records its charge


def test_a_query_that_fails_after_its_charge_still_publishes_its_entries(enclave, parties,
                                                                           monkeypatch) -> None:
    impressions, conversions = _data()
    _upload(enclave, parties["publisher"], "impressions", impressions)
    _upload(enclave, parties["advertiser"], "conversions", conversions)
    import enclave.requests.queries as queries_module

    def broken(*args, **kwargs):
        raise ValueError("simulated fault inside the analysis")

    monkeypatch.setattr(queries_module, "run_query", broken)
    reply = enclave.call_raw(pack(
        "query", enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []})))
    assert reply.type == "error" and reply.body["code"] == "internal"
    enclave.call("audit_flush", {})
    head, bodies = _verify(enclave)
    assert [b["kind"] for b in bodies][-2:] == ["query_run", "budget_charged"] and head.seq == 4


def test_deletion_removes_the_data_keeps_the_budget_spent_and_is_audited(enclave, parties) -> None:
    impressions, conversions = _data()
    _upload(enclave, parties["publisher"], "impressions", impressions)
    receipt = _upload(enclave, parties["advertiser"], "conversions", conversions)
    enclave.call("query", enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []}))

    deleted = enclave.call("delete", _delete_request(enclave, parties["advertiser"], "conversions"))
    enclave.verify_enclave_signature(b"cleanroom/v1/deletion-receipt\x00", deleted["receipt"],
                                     deleted["signature"])
    body = unpack_document("deletion_receipt", deleted["receipt"])
    assert body["upload_ids"] == [receipt["upload_id"]] == deleted["upload_ids"]
    assert body["rows_deleted"] == 200
    assert [e["upload_id"] for e in enclave.call("list_uploads", {})["uploads"]] != [receipt["upload_id"]]
    with pytest.raises(ConflictError):  # no data left to join
        enclave.call("query", enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []}))

    _upload(enclave, parties["advertiser"], "conversions", conversions)  # upload again ...
    result = enclave.query(parties["advertiser"], "overlap", {"group_by": []})
    assert result.privacy["budget_remaining"]["conversions"] == "28/5"  # ... no fresh budget
    _, bodies = _verify(enclave)
    assert "dataset_deleted" in [b["kind"] for b in bodies]


def test_only_the_owner_may_delete_and_requests_do_not_replay(enclave, parties) -> None:
    with pytest.raises(PolicyViolation):
        enclave.call("delete", _delete_request(enclave, parties["publisher"], "conversions"))
    request = _delete_request(enclave, parties["advertiser"], "conversions")
    enclave.call("delete", request)
    with pytest.raises(ReplayDetected):
        enclave.call("delete", request)


def test_restart_keeps_the_head_and_republishes_what_it_may_not_have_handed_over(policy_bytes,
                                                                                 parties) -> None:
    first = EnclaveHarness(policy_bytes, ZeroNoise())
    impressions, _ = _data()
    _, records = first.encrypt(parties["publisher"], "impressions", impressions)
    first.send_records(records)
    head, _ = _verify(first)
    assert head.seq == 1

    # State is sealed before the receipt leaves, so the sealed copy still lists the entry as
    # unpublished: had the reply been lost in a crash, the entry is not. The restarted enclave
    # hands it over again (the host drops duplicates by sequence number), keeps the same head,
    # and the host's replay of the accepted upload adds no entry.
    restarted = EnclaveHarness(policy_bytes, ZeroNoise(), sealed=first.sealed[-1])
    assert restarted.call("audit_flush", {})["audit"] == first.published
    restarted.send_records(records)
    assert restarted.published == first.published  # only the republished entry
    assert restarted.session._require().audit.head == head
