"""An upload's lifecycle: created, appended to, replaced, retried, capped, deleted for good.

The host is the attacker where it re-sends ciphertext it kept (a real host and enclave on
loopback, or the enclave directly with a clock the test moves); a party is the attacker where it
floods the enclave with uploads. Each test reproduces an attack that worked before the fix.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import numpy as np
import pytest

from cleanroom.keys import PartyKeys
from enclave.__main__ import _serve
from enclave.requests import dispatch
from protocol.batch import encode_batch
from protocol.crypto import DELETE_LABEL
from protocol.errors import ConflictError, InvalidInput, PolicyViolation, ReplayDetected
from protocol.policy import Policy, parse_policy
from protocol.upload import RECORD_HEADER
from protocol.wire import MAX_FRAME_BYTES, encode_frame, pack, pack_document, read_frame, unpack
from tests.adversarial.kit import (
    ALLOW_SIMULATION,
    OCTET,
    MarkedData,
    assert_no_leak,
    assert_still_serving,
    encrypt_csv,
)
from tests.conftest import EXAMPLE_POLICY, ZeroNoise, bind_policy
from tests.support.deployment import HostDeployment
from tests.support.enclave_harness import EnclaveHarness, digests


def _impressions(rows: int, seed: int = 1) -> dict[str, np.ndarray]:
    zeros = np.zeros(rows, dtype=np.uint16)
    return {"id": digests(rows, seed), "campaign": zeros, "age_band": zeros, "region": zeros}


class _Clock:
    def __init__(self) -> None:
        import time

        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def _rows(enclave: EnclaveHarness, dataset: str) -> int:
    state = enclave.session._state
    assert state is not None
    table = state.tables.get(dataset)
    return 0 if table is None else table.rows


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, parties: dict[str, PartyKeys]) -> Any:
    """A real host and enclave whose policy lets impressions hold at most 3 uploads."""
    with HostDeployment(tmp_path_factory.mktemp("capped"), _capped_policy(parties, 3)) as host:
        yield host


def _capped_policy(parties: dict[str, PartyKeys], cap: int) -> bytes:
    return bind_policy(parties, EXAMPLE_POLICY.read_text().replace(
        "max_rows = 3_000_000 ", f"max_rows = 3_000_000\nmax_uploads = {cap} ", 1))


def _listed(enclave: EnclaveHarness) -> list[dict[str, Any]]:
    return enclave.call("list_uploads", {})["uploads"]


def _signed_delete(enclave: EnclaveHarness, keys: PartyKeys, now: int) -> dict[str, bytes]:
    request = pack_document("delete_request", {
        "collaboration_id": enclave.policy.collaboration_id, "policy_hash": enclave.policy.hash,
        "party": keys.party_id, "dataset": "impressions", "nonce": os.urandom(16), "issued_at": now})
    return {"request": request, "signature": keys.sign(DELETE_LABEL, request)}


# -- 6: the host brings a deleted dataset back --------------------------------------------------


@pytest.mark.slow
def test_host_cannot_resurrect_a_deleted_upload(fresh_deployment: HostDeployment, verify: Any,
                                                marked: MarkedData, policy: Policy,
                                                parties: dict[str, PartyKeys]) -> None:
    host = fresh_deployment
    enclave = verify(host)
    saved = encrypt_csv(policy, parties["publisher"], "impressions", marked.impressions(policy),
                        enclave.enc_pub, mode="create")
    assert host.request("POST", "/v1/uploads", saved.body, OCTET).status == 201
    host.client.delete(enclave, parties["publisher"], policy, "impressions")

    # The host kept the ciphertext and posts it again, before and after forcing a restart.
    again = host.request("POST", "/v1/uploads", saved.body, OCTET)
    assert (again.status, again.code) == (409, "replay")
    host.kill_enclave()
    host.wait_until_healthy()
    after_restart = host.request("POST", "/v1/uploads", saved.body, OCTET)
    assert (after_restart.status, after_restart.code) == (409, "replay")
    assert saved.upload_id.hex() not in [u["upload_id"] for u in host.client.uploads()]

    # The party itself may upload the dataset again: a fresh, signed header.
    fresh = encrypt_csv(policy, parties["publisher"], "impressions", marked.impressions(policy),
                        enclave.enc_pub, mode="create")
    assert host.request("POST", "/v1/uploads", fresh.body, OCTET).status == 201
    assert_no_leak(host, marked)
    assert_still_serving(host)


def test_a_deleted_upload_stays_deleted_once_its_window_has_passed(
        policy_bytes: bytes, parties: dict[str, PartyKeys]) -> None:
    """Past the window the id is forgotten, but the never-decreasing floor still refuses it."""
    clock = _Clock()
    enclave = EnclaveHarness(policy_bytes, ZeroNoise(), clock=clock)
    _, records = enclave.encrypt(parties["publisher"], "impressions", _impressions(50), now=int(clock.now))
    enclave.send_records(records)
    enclave.call("delete", _signed_delete(enclave, parties["publisher"], int(clock.now)))
    for advance in (10, 3600, 86_400):
        clock.now += advance
        with pytest.raises(ReplayDetected):
            enclave.send_records(records)
    clock.now -= 86_400  # the host winds the clock back: the floor does not follow
    with pytest.raises(ReplayDetected):
        enclave.send_records(records)
    assert _listed(enclave) == [] and _rows(enclave, "impressions") == 0


# -- 8: re-uploading silently appends; a retry stores the rows twice ----------------------------


def test_reupload_without_replace_or_append_is_refused_in_the_enclave(policy_bytes: bytes,
                                                        parties: dict[str, PartyKeys]) -> None:
    enclave = EnclaveHarness(policy_bytes, ZeroNoise())
    publisher = parties["publisher"]
    first = enclave.upload(publisher, "impressions", _impressions(200, 1), mode="create")
    with pytest.raises(ConflictError) as refused:
        enclave.upload(publisher, "impressions", _impressions(200, 2), mode="create")
    assert first["upload_id"].hex() in refused.value.message and "200 rows" in refused.value.message
    assert "--replace" in refused.value.message and "--append" in refused.value.message
    assert _rows(enclave, "impressions") == 200

    second = enclave.upload(publisher, "impressions", _impressions(30, 3), mode="append")
    assert _rows(enclave, "impressions") == 230 and len(_listed(enclave)) == 2

    replaced = enclave.upload(publisher, "impressions", _impressions(70, 4), mode="replace")
    assert sorted(replaced["replaced"]) == sorted([first["upload_id"], second["upload_id"]])
    assert _rows(enclave, "impressions") == 70
    assert [u["upload_id"] for u in _listed(enclave)] == [replaced["upload_id"]]


def test_retry_of_a_committed_upload_returns_the_original_receipt(policy_bytes: bytes,
                                                                   parties: dict[str, PartyKeys]) -> None:
    enclave = EnclaveHarness(policy_bytes, ZeroNoise())
    publisher = parties["publisher"]
    columns = _impressions(120)
    key = b"k" * 16
    original = enclave.upload(publisher, "impressions", columns, mode="append", idempotency_key=key)
    # The host dropped that receipt; the client encrypts the same file again with the same key.
    retry = enclave.upload(publisher, "impressions", columns, mode="append", idempotency_key=key)
    assert {k: retry[k] for k in ("upload_id", "rows", "digest", "accepted_at")} == (
        {k: original[k] for k in ("upload_id", "rows", "digest", "accepted_at")})
    assert _rows(enclave, "impressions") == 120 and len(_listed(enclave)) == 1


@pytest.mark.slow
def test_a_retried_client_upload_is_not_stored_twice(fresh_deployment: HostDeployment, verify: Any,
                                                     marked: MarkedData, policy: Policy,
                                                     parties: dict[str, PartyKeys]) -> None:
    host = fresh_deployment
    enclave = verify(host)
    path = marked.impressions(policy)
    first = host.client.upload(enclave, parties["publisher"], policy, "impressions", path, mode="append")
    retry = host.client.upload(enclave, parties["publisher"], policy, "impressions", path, mode="append")
    assert (retry.upload_id, retry.rows, retry.digest) == (first.upload_id, first.rows, first.digest)
    assert [u["upload_id"] for u in host.client.uploads()] == [first.upload_id.hex()]
    assert_no_leak(host, marked)
    assert_still_serving(host)


# -- 11: a party crashes the enclave on demand ---------------------------------------------------


def test_empty_uploads_are_refused_in_the_enclave(policy_bytes: bytes, parties: dict[str, PartyKeys]) -> None:
    enclave = EnclaveHarness(policy_bytes, ZeroNoise())
    spec = enclave.policy.dataset("impressions")
    assert spec is not None
    empty = encode_batch(_impressions(0), spec.schema())
    from cleanroom.upload_crypto import UploadEncryptor

    encryptor = UploadEncryptor(parties["publisher"], enclave.policy, spec, enclave.ready["enc_pub"],
                                chunk_size=4096, mode="append")
    with pytest.raises(InvalidInput):
        enclave.send_records(list(encryptor.records([empty])))
    assert _listed(enclave) == []


def test_upload_cap_per_dataset_in_the_enclave(parties: dict[str, PartyKeys]) -> None:
    enclave = EnclaveHarness(_capped_policy(parties, 3), ZeroNoise())
    spec = enclave.policy.dataset("impressions")
    assert spec is not None and spec.max_uploads == 3
    publisher = parties["publisher"]
    for seed in range(3):
        enclave.upload(publisher, "impressions", _impressions(5, seed), mode="append")
    with pytest.raises(PolicyViolation) as refused:
        enclave.upload(publisher, "impressions", _impressions(5, 9), mode="append")
    assert "max_uploads" in refused.value.message
    assert len(_listed(enclave)) == 3
    enclave.upload(publisher, "impressions", _impressions(5, 10), mode="replace")  # still allowed
    assert len(_listed(enclave)) == 1


def test_oversized_reply_becomes_an_error_frame_and_the_enclave_survives(
        policy_bytes: bytes, parties: dict[str, PartyKeys], monkeypatch: pytest.MonkeyPatch) -> None:
    enclave = EnclaveHarness(policy_bytes, ZeroNoise())
    state = enclave.session._state
    assert state is not None
    # What 61k zero-row uploads left in the manifest before the cap: the listing is paged now.
    entry = {"party": "publisher", "dataset": "impressions", "rows": 0, "digest": bytes(32),
             "accepted_at": 0}
    state.manifest = [{**entry, "upload_id": i.to_bytes(16, "big")} for i in range(70_000)]
    host, child = socket.socketpair()
    host.settimeout(60)  # before the fix the loop died here and no reply ever came
    serving = threading.Thread(target=_serve, args=(child, enclave.session), daemon=True)
    serving.start()
    reader = host.makefile("rb")

    def call(type_: str, body: dict[str, Any]) -> Any:
        host.sendall(encode_frame(pack(type_, body)))
        return unpack(read_frame(lambda n: reader.read(n)))

    page = call("list_uploads", {})
    assert page.type == "uploads" and page.body["more"] is True
    assert len(encode_frame(pack(page.type, page.body))) < MAX_FRAME_BYTES
    following = call("list_uploads", {"after": page.body["uploads"][-1]["upload_id"], "limit": 10})
    assert [u["upload_id"] for u in following.body["uploads"]] == [
        i.to_bytes(16, "big") for i in range(len(page.body["uploads"]), len(page.body["uploads"]) + 10)]

    # Any reply too large for a frame, whatever produced it, is one error frame.
    monkeypatch.setitem(dispatch.HANDLERS, "health",
                        lambda session, body: ("query_result", {  # a schema-valid reply
                            "query_id": bytes(32), "results": {"p": bytes(MAX_FRAME_BYTES)},
                            "audit": []}))
    too_large = call("health", {})
    assert (too_large.type, too_large.body["code"]) == ("error", "message_too_large")
    monkeypatch.undo()
    assert call("health", {}).type == "status"  # the loop is alive and in step
    reader.close()
    host.close()
    serving.join(timeout=10)
    child.close()
    assert not serving.is_alive()


def test_upload_header_fields_travel_in_the_record_stream(policy_bytes: bytes,
                                                          parties: dict[str, PartyKeys]) -> None:
    """The mode and idempotency key are signed header fields, not host-side metadata."""
    import msgpack

    from protocol.wire import unpack_document

    enclave = EnclaveHarness(policy_bytes, ZeroNoise())
    _, records = enclave.encrypt(parties["publisher"], "impressions", _impressions(3),
                                 mode="replace", idempotency_key=b"i" * 16)
    header = unpack_document("upload_header", msgpack.unpackb(records[0][RECORD_HEADER.size:])["header"])
    assert (header["mode"], header["idempotency_key"]) == ("replace", b"i" * 16)


@pytest.mark.slow
def test_the_uploads_listing_is_paged_through_the_host(fresh_deployment: HostDeployment, verify: Any,
                                                       marked: MarkedData, policy: Policy,
                                                       parties: dict[str, PartyKeys]) -> None:
    host = fresh_deployment
    enclave = verify(host)
    ids = [host.client.upload(enclave, parties["publisher"], policy, "impressions",
                              marked.impressions(policy, rows=20), mode="append").upload_id.hex()
           for _ in range(3)]
    first = host.request("GET", "/v1/uploads?limit=2").json()
    assert [u["upload_id"] for u in first["uploads"]] == ids[:2] and first["more"] is True
    rest = host.request("GET", f"/v1/uploads?after={ids[1]}&limit=2").json()
    assert [u["upload_id"] for u in rest["uploads"]] == ids[2:] and rest["more"] is False
    assert [u["upload_id"] for u in host.client.uploads()] == ids  # the client follows the pages
    for bad in ("limit=0", "limit=1001", "limit=x", "after=zz"):
        assert host.request("GET", f"/v1/uploads?{bad}").status == 400
    assert host.request("GET", f"/v1/uploads?after={'00' * 16}").status == 404
    assert_no_leak(host, marked)
    assert_still_serving(host)


# -- the same through a real host that is not the attacker: a party is ---------------------------


@pytest.mark.slow
def test_reupload_without_replace_or_append_is_refused(capped: HostDeployment, marked: MarkedData,
                                                        parties: dict[str, PartyKeys]) -> None:
    host = capped
    policy = parse_policy(host.policy_bytes)
    enclave = host.client.verify(host.policy_bytes, ALLOW_SIMULATION)
    publisher = parties["publisher"]
    first = host.client.upload(enclave, publisher, policy, "impressions", marked.impressions(policy, rows=60))
    with pytest.raises(ConflictError) as refused:  # the same dataset again, no --append/--replace
        host.client.upload(enclave, publisher, policy, "impressions", marked.impressions(policy, rows=60))
    assert f"{first.upload_id.hex()} (60 rows)" in refused.value.message
    added = host.client.upload(enclave, publisher, policy, "impressions",
                               marked.impressions(policy, rows=10), mode="append")
    assert [u["rows"] for u in host.client.uploads() if u["dataset"] == "impressions"] == [60, 10]
    replaced = host.client.upload(enclave, publisher, policy, "impressions",
                                  marked.impressions(policy, rows=25), mode="replace")
    assert sorted(replaced.replaced) == sorted([first.upload_id, added.upload_id])
    assert [(u["upload_id"], u["rows"]) for u in host.client.uploads() if u["dataset"] == "impressions"] == [
        (replaced.upload_id.hex(), 25)]
    # The host deletes the replaced ciphertext at once, as for a deletion (not only at a restart).
    stored = {p.stem for p in (host.state / "uploads").glob("*.upload")}
    assert first.upload_id.hex() not in stored and added.upload_id.hex() not in stored
    assert replaced.upload_id.hex() in stored
    assert_no_leak(host, marked)
    assert_still_serving(host)


@pytest.mark.slow
def test_empty_uploads_are_refused(capped: HostDeployment, marked: MarkedData,
                                   parties: dict[str, PartyKeys]) -> None:
    from cleanroom.upload_crypto import UploadEncryptor

    host = capped
    policy = parse_policy(host.policy_bytes)
    enclave = host.client.verify(host.policy_bytes, ALLOW_SIMULATION)
    spec = policy.dataset("impressions")
    assert spec is not None
    before = host.client.uploads()
    for _ in range(3):  # the client refuses an empty file; a hostile party builds the stream itself
        encryptor = UploadEncryptor(parties["publisher"], policy, spec, enclave.enc_pub, chunk_size=4096,
                                    mode="append")
        body = b"".join(encryptor.records([encode_batch(_impressions(0), spec.schema())]))
        reply = host.request("POST", "/v1/uploads", body, OCTET)
        assert (reply.status, reply.code) == (422, "invalid_input")
    assert host.client.uploads() == before
    marked.impressions(policy, rows=1)  # assert_no_leak wants a marker to look for
    assert_no_leak(host, marked)
    assert_still_serving(host)


@pytest.mark.slow
def test_upload_cap_per_dataset(capped: HostDeployment, marked: MarkedData,
                                parties: dict[str, PartyKeys]) -> None:
    host = capped
    policy = parse_policy(host.policy_bytes)
    enclave = host.client.verify(host.policy_bytes, ALLOW_SIMULATION)
    publisher = parties["publisher"]
    host.client.upload(enclave, publisher, policy, "impressions", marked.impressions(policy, rows=5),
                       mode="replace")
    for _ in range(2):
        host.client.upload(enclave, publisher, policy, "impressions", marked.impressions(policy, rows=5),
                           mode="append")
    with pytest.raises(PolicyViolation, match="max_uploads"):
        host.client.upload(enclave, publisher, policy, "impressions", marked.impressions(policy, rows=5),
                           mode="append")
    assert len([u for u in host.client.uploads() if u["dataset"] == "impressions"]) == 3
    assert_no_leak(host, marked)
    assert_still_serving(host)
