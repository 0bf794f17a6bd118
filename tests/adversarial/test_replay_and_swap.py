"""The host replays, relabels and splices what parties sent it; the enclave must refuse each.

One real deployment for the module. Uploads are built with the client's own encryption code
but sent as raw record streams, as a hostile host holding a copy of them could.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from cleanroom.keys import PartyKeys
from cleanroom.receipts import verify_receipt
from protocol.crypto import QUERY_LABEL
from protocol.policy import Policy
from protocol.upload import RECORD_HEADER
from protocol.wire import pack_document, unpack_document
from tests.adversarial.kit import (
    ALLOW_SIMULATION,
    OCTET,
    MarkedData,
    SealedUpload,
    assert_no_leak,
    assert_still_serving,
    encrypt_csv,
    record,
)
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loaded(deployment: HostDeployment, marked: MarkedData, policy: Policy, policy_bytes: bytes,
           parties: dict[str, PartyKeys]) -> Any:
    """Both datasets uploaded through the real client, so queries can run; the pinned enclave."""
    enclave = deployment.client.verify(policy_bytes, ALLOW_SIMULATION)
    client = deployment.client
    client.upload(enclave, parties["publisher"], policy, "impressions", marked.impressions(policy))
    client.upload(enclave, parties["advertiser"], policy, "conversions", marked.conversions())
    return enclave


def _stored(deployment: HostDeployment) -> dict[str, bytes]:
    """Stored upload files (and leftovers of unfinished ones) by name."""
    directory = deployment.state / "uploads"
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and p.name != "index"}


def _post_upload(deployment: HostDeployment, body: bytes) -> Any:
    return deployment.request("POST", "/v1/uploads", body, OCTET)


def _signed_query(policy: Policy, keys: PartyKeys) -> bytes:
    request = pack_document("query_request", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": keys.party_id, "analysis": "overlap", "params": {"group_by": []},
        "nonce": os.urandom(16), "issued_at": int(time.time()),
    })
    return json.dumps({"request": base64.b64encode(request).decode(),
                       "signature": base64.b64encode(keys.sign(QUERY_LABEL, request)).decode()}).encode()


def test_replayed_upload_stream_is_a_conflict(deployment: HostDeployment, loaded: Any, marked: MarkedData,
                                              policy: Policy, parties: dict[str, PartyKeys]) -> None:
    upload = encrypt_csv(policy, parties["publisher"], "impressions", marked.impressions(policy),
                         loaded.enc_pub)
    first = _post_upload(deployment, upload.body)
    assert first.status == 201
    verify_receipt(first.json(), loaded.sig_pub, policy, upload_id=upload.upload_id,
                   party="publisher", dataset="impressions", rows=upload.rows,
                   digest=upload.encryptor.digest)
    name = f"{upload.upload_id.hex()}.upload"
    before = _stored(deployment)
    assert before[name] == upload.body  # the host stored exactly the stream it acknowledged

    again = _post_upload(deployment, upload.body)
    assert (again.status, again.code) == (409, "conflict")
    assert _stored(deployment) == before  # nothing overwritten, no stray partial file
    listed = [u["upload_id"] for u in deployment.client.uploads()]
    assert listed.count(upload.upload_id.hex()) == 1
    assert_no_leak(deployment, marked)
    assert_still_serving(deployment)


def test_replayed_query_is_refused_even_after_an_enclave_restart(
        deployment: HostDeployment, loaded: Any, marked: MarkedData, policy: Policy,
        parties: dict[str, PartyKeys]) -> None:
    body = _signed_query(policy, parties["advertiser"])
    first = deployment.request("POST", "/v1/queries", body)
    assert first.status == 200
    replay = deployment.request("POST", "/v1/queries", body)
    assert (replay.status, replay.code) == (409, "replay")

    # The nonce set is sealed: a restart (which a host can force at will) must not forget it.
    deployment.kill_enclave()
    deployment.wait_until_healthy()
    after_restart = deployment.request("POST", "/v1/queries", body)
    assert (after_restart.status, after_restart.code) == (409, "replay")

    # The stored answer is still there for the party, byte for byte the first response.
    stored = deployment.request("GET", f"/v1/results/{first.json()['query_id']}")
    assert stored.status == 200 and stored.json() == first.json()
    fresh = deployment.request("POST", "/v1/queries", _signed_query(policy, parties["advertiser"]))
    assert fresh.status == 200
    assert_no_leak(deployment, marked)
    assert_still_serving(deployment)


def _relabelled(upload: SealedUpload, **changes: Any) -> bytes:
    """The upload's header with fields changed but the original signature kept."""
    fields = upload.header_fields()
    header = unpack_document("upload_header", fields["header"])
    forged = pack_document("upload_header", {**header, **changes})
    head = record(msgpack.packb({"header": forged, "signature": fields["signature"]}))
    return head + b"".join(upload.chunk_records)


def _with_signature(upload: SealedUpload, signature: bytes) -> bytes:
    fields = upload.header_fields()
    head = record(msgpack.packb({"header": fields["header"], "signature": signature}))
    return head + b"".join(upload.chunk_records)


def test_an_upload_cannot_be_relabelled_as_another_partys(
        deployment: HostDeployment, loaded: Any, marked: MarkedData, policy: Policy,
        parties: dict[str, PartyKeys]) -> None:
    publisher = encrypt_csv(policy, parties["publisher"], "impressions", marked.impressions(policy),
                            loaded.enc_pub)
    advertiser = encrypt_csv(policy, parties["advertiser"], "conversions", marked.conversions(),
                             loaded.enc_pub)
    before = _stored(deployment)
    attacks = {
        # The host cannot re-sign: the changed header no longer matches the publisher's signature,
        # and it is not the advertiser's either.
        "party relabelled": _relabelled(publisher, party="advertiser"),
        "party and dataset relabelled": _relabelled(publisher, party="advertiser", dataset="conversions"),
        "another party's valid signature": _with_signature(
            publisher, advertiser.header_fields()["signature"]),
        "zero signature": _with_signature(publisher, bytes(64)),
    }
    for what, body in attacks.items():
        reply = _post_upload(deployment, body)
        assert (reply.status, reply.code) == (403, "bad_signature"), what
    assert _stored(deployment) == before, "a refused upload left a file behind"

    # Neither upload id was burned by the forgeries: the genuine uploads are accepted.
    for upload in (publisher, advertiser):
        assert _post_upload(deployment, upload.body).status == 201
    assert_no_leak(deployment, marked)
    assert_still_serving(deployment)


def _flagged(chunk_record: bytes, last: bool) -> bytes:
    payload = chunk_record[RECORD_HEADER.size:]
    return record((b"\x01" if last else b"\x00") + payload[1:])


_SPLICES: dict[str, Callable[[SealedUpload, SealedUpload], bytes]] = {
    "advertiser header, publisher chunks": lambda a, p: a.header_record + b"".join(p.chunk_records),
    "publisher header, advertiser chunks": lambda a, p: p.header_record + b"".join(a.chunk_records),
    "first chunk from the other upload": lambda a, p: (
        a.header_record + p.chunk_records[0] + b"".join(a.chunk_records[1:])),
    "chunks reordered": lambda a, p: (
        a.header_record + a.chunk_records[1] + a.chunk_records[0] + b"".join(a.chunk_records[2:])),
    "cut short, last flag forged": lambda a, p: (
        a.header_record + b"".join(a.chunk_records[:-2]) + _flagged(a.chunk_records[-2], True)),
    "last flag removed, chunk repeated": lambda a, p: (
        a.header_record + b"".join(a.chunk_records[:-1]) + _flagged(a.chunk_records[-1], False)
        + a.chunk_records[-1]),
}


@pytest.mark.parametrize("splice", sorted(_SPLICES))
def test_spliced_uploads_fail_as_one_decrypt_error(
        deployment: HostDeployment, loaded: Any, marked: MarkedData, policy: Policy,
        parties: dict[str, PartyKeys], splice: str) -> None:
    advertiser = encrypt_csv(policy, parties["advertiser"], "conversions", marked.conversions(),
                             loaded.enc_pub)
    publisher = encrypt_csv(policy, parties["publisher"], "impressions", marked.impressions(policy),
                            loaded.enc_pub)
    assert len(advertiser.chunk_records) >= 3 and len(publisher.chunk_records) >= 3
    before = _stored(deployment)

    reply = _post_upload(deployment, _SPLICES[splice](advertiser, publisher))
    assert (reply.status, reply.code) == (400, "decrypt_failed")
    assert _stored(deployment) == before, "a refused upload left a file behind"
    # The genuine streams still go through: a failed splice burns no upload id.
    assert _post_upload(deployment, advertiser.body).status == 201
    assert _post_upload(deployment, publisher.body).status == 201
    assert_no_leak(deployment, marked)
    assert_still_serving(deployment)



def _map(pairs: list[tuple[str, Any]], raw: dict[str, bytes] | None = None) -> bytes:
    """A msgpack map written pair by pair, so a key can appear twice (msgpack.packb cannot);
    ``raw`` gives some values' exact bytes."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(
        msgpack.packb(k) + ((raw or {}).get(k) or msgpack.packb(v, use_bin_type=True)) for k, v in pairs)


@pytest.mark.parametrize("form", ["duplicate_key", "long_integer", "unsorted_keys"])
def test_a_signed_request_two_parsers_could_read_two_ways_is_refused(
        deployment: HostDeployment, loaded: Any, marked: MarkedData, policy: Policy,
        parties: dict[str, PartyKeys], form: str) -> None:
    """A party signs request bytes that are not canonical msgpack: a key given twice (this parser
    took the last, others take the first, so a witness in another language would co-sign one
    query while the enclave ran another), an integer in a longer form than it needs, or keys
    out of order. Validly signed, yet refused as bad_message before anything is charged."""
    advertiser = parties["advertiser"]
    fields = sorted({
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": advertiser.party_id, "analysis": "overlap", "params": {"group_by": []},
        "nonce": os.urandom(16), "issued_at": int(time.time()),
    }.items())
    if form == "duplicate_key":
        at = [k for k, _ in fields].index("params")
        request = _map([*fields[:at], ("params", {"group_by": ["impressions.campaign"]}), *fields[at:]])
    elif form == "long_integer":  # uint64 for a value that fits in 32 bits
        request = _map(fields, {"issued_at": b"\xcf" + dict(fields)["issued_at"].to_bytes(8, "big")})
    else:
        request = _map(list(reversed(fields)))
    spent = deployment.client.budget_status(loaded, policy)["datasets"]
    signature = advertiser.sign(QUERY_LABEL, request)
    body = json.dumps({"request": base64.b64encode(request).decode(),
                       "signature": base64.b64encode(signature).decode()}).encode()
    reply = deployment.request("POST", "/v1/queries", body)
    assert (reply.status, reply.code) == (400, "bad_message"), reply.body[:300]
    assert deployment.client.budget_status(loaded, policy)["datasets"] == spent
    assert_no_leak(deployment, marked)
    assert_still_serving(deployment)
