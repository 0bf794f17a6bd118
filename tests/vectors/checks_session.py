"""Checks of the enclave's outputs in the vector session: ``result.json`` (the signed result and
its HPKE seals), ``receipts.json``, ``audit.json`` (the chain from GENESIS) and ``frames.json``
(host <-> enclave messages and their frames).
"""

from __future__ import annotations

import hashlib
import io

from protocol.audit import GENESIS, entry_hash
from protocol.crypto import AUDIT_LABEL, DELETION_RECEIPT_LABEL, RECEIPT_LABEL, RESULT_LABEL, result_hpke_info
from protocol.wire import encode_frame, pack, pack_document, read_frame, unpack, unpack_document
from tests.vectors.checks_common import (
    Vectors,
    assert_same,
    check_decrypt_vector,
    check_signed_document,
    enclave_of,
    head_on_chain,
    party_of,
    policy_of,
)
from tests.vectors.loader import from_json, h

__all__ = ["DIRECTIONS", "check_audit", "check_frames", "check_receipts", "check_result"]

DIRECTIONS = {"query": "host->enclave", "upload_receipt": "enclave->host"}


def check_result(v: Vectors) -> None:
    policy, doc = policy_of(v), v["result"]
    query = v["requests"]["query_request"]
    query_id = h(doc["query_id"])
    assert query_id == h(query["request_id"])
    fields = check_signed_document("result", doc, RESULT_LABEL, enclave_of(v))
    request = from_json(query["document"])
    assert fields["query_id"] == query_id and fields["requested_by"] == request["party"]
    assert (fields["analysis"], fields["params"]) == (request["analysis"], request["params"])
    assert (fields["collaboration_id"], fields["policy_hash"]) == (policy.collaboration_id, policy.hash)
    head_on_chain(fields["audit_head"], v)
    signed = h(doc["signed"])
    envelope = {"body": h(doc["bytes"]), "signature": h(doc["signature"])}
    assert pack_document("signed", envelope) == signed
    assert_same(unpack_document("signed", signed), envelope)
    assert [s["recipient"] for s in doc["sealed"]] == fields["recipients"]
    for sealed in doc["sealed"]:
        info = result_hpke_info(policy.collaboration_id, query_id, sealed["recipient"])
        check_decrypt_vector({k: x for k, x in sealed.items() if k != "recipient"},
                             party_of(v, sealed["recipient"]), info, signed)


def check_receipts(v: Vectors) -> None:
    policy, doc = policy_of(v), v["receipts"]
    uploads = v["upload"]["uploads"]
    assert len(doc["upload_receipts"]) == len(uploads)
    for receipt, up in zip(doc["upload_receipts"], uploads, strict=True):
        fields = check_signed_document("upload_receipt", receipt, RECEIPT_LABEL, enclave_of(v))
        header = from_json(up["header"]["document"])
        assert (fields["collaboration_id"], fields["policy_hash"]) == (policy.collaboration_id, policy.hash)
        assert fields["upload_id"] == header["upload_id"] and fields["digest"] == h(up["digest"])
        assert (fields["party"], fields["dataset"]) == (header["party"], header["dataset"])
        assert fields["rows"] == sum(b["rows"] for b in up["batches"])
        assert fields.get("skipped") == header.get("skipped")  # the receipt repeats the header
        head_on_chain(fields["audit_head"], v)
    fields = check_signed_document("deletion_receipt", doc["deletion_receipt"], DELETION_RECEIPT_LABEL,
                                   enclave_of(v))
    request = v["requests"]["delete_request"]
    assert fields["request_id"] == h(request["request_id"])
    asked = from_json(request["document"])
    assert (fields["party"], fields["dataset"]) == (asked["party"], asked["dataset"])
    deleted = [from_json(u["header"]["document"])["upload_id"] for u in uploads
               if u["dataset"] == asked["dataset"]]
    assert fields["upload_ids"] == deleted
    head_on_chain(fields["audit_head"], v)


def check_audit(v: Vectors) -> None:
    policy, doc = policy_of(v), v["audit"]
    assert h(doc["genesis"]) == GENESIS
    assert doc["entries"]
    prev = GENESIS
    for seq, entry in enumerate(doc["entries"], start=1):
        fields = check_signed_document("audit_entry", entry, AUDIT_LABEL, enclave_of(v))
        assert (fields["seq"], fields["prev"]) == (seq, prev), f"the chain breaks at entry {seq}"
        assert fields["collaboration_id"] == policy.collaboration_id
        body = h(entry["bytes"])
        prev = entry_hash(body)
        assert prev == h(entry["entry_hash"]) == hashlib.sha256(AUDIT_LABEL + body).digest()
        envelope = {"body": body, "signature": h(entry["signature"])}
        assert pack_document("signed", envelope) == h(entry["signed"])
        assert_same(unpack_document("signed", h(entry["signed"])), envelope)


def check_frames(v: Vectors) -> None:
    messages = v["frames"]["messages"]
    assert [m["type"] for m in messages] == list(DIRECTIONS)
    for m in messages:
        assert m["direction"] == DIRECTIONS[m["type"]]
        body, raw, frame = from_json(m["body"]), h(m["message"]), h(m["frame"])
        assert pack(m["type"], body) == raw, f"{m['type']}: re-encoding the message differs"
        message = unpack(raw)
        assert message.type == m["type"]
        assert_same(message.body, body, m["type"])
        assert encode_frame(raw) == frame and frame[:4] == len(raw).to_bytes(4, "big")
        assert read_frame(io.BytesIO(frame).read) == raw
    query, receipt = (from_json(m["body"]) for m in messages)
    assert query == {"request": h(v["requests"]["query_request"]["bytes"]),
                     "signature": h(v["requests"]["query_request"]["signature"])}
    first = v["receipts"]["upload_receipts"][0]
    assert receipt == {"receipt": h(first["bytes"]), "signature": h(first["signature"]),
                       "audit": [h(v["audit"]["entries"][0]["signed"])]}
