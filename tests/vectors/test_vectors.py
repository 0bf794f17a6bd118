"""The golden wire vectors, checked in both directions.

Each ``check_*`` function re-encodes a file's inputs and compares with the stored bytes, then
decodes, verifies and decrypts the stored bytes and compares with the stored inputs, using only
``protocol/`` and plain ``cryptography`` primitives (what another implementation would use).
``test_the_generator_reproduces_the_files`` then checks that the project's real code paths (the
enclave ``Session``, ``protocol``) still make exactly these bytes, and the last tests check the
party-side code (``UploadEncryptor``, result, receipt and audit-log verification) against them.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import msgpack
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.audit import GENESIS, entry_hash
from protocol.batch import decode_batch, encode_batch
from protocol.crypto import (
    APPROVAL_LABEL,
    AUDIT_LABEL,
    BUDGET_LABEL,
    DELETE_LABEL,
    DELETION_RECEIPT_LABEL,
    HPKE_SUITE,
    PROPOSAL_LABEL,
    QUERY_LABEL,
    RECEIPT_LABEL,
    RESULT_LABEL,
    UPLOAD_HEADER_LABEL,
    result_hpke_info,
    upload_key_hpke_info,
)
from protocol.policy import Policy, parse_policy
from protocol.query_plan import check_plan, parse_plan
from protocol.report_data import DOMAIN, policy_hash, report_data
from protocol.upload import RECORD_HEADER, UploadDigest, chunk_aad, chunk_nonce, encode_record
from protocol.wire import (
    canonical_packb,
    encode_frame,
    pack,
    pack_document,
    read_frame,
    unpack,
    unpack_document,
)
from tests.vectors.checks_extra import CHECKS_EXTRA
from tests.vectors.loader import FILES, HPKE_SUITE_NAME, VECTOR_DIR, dump, from_json, h, load_all

Vectors = dict[str, dict[str, Any]]
DIRECTIONS = {"query": "host->enclave", "upload_receipt": "enclave->host"}


# --- helpers ------------------------------------------------------------------------------------


def assert_same(got: Any, want: Any, where: str = "value") -> None:
    """Equal with types and map order too (plain == lets True equal 1 and ignores key order)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@functools.lru_cache(maxsize=8)
def _parse(text: str) -> Policy:
    return parse_policy(text.encode("utf-8"))


def _policy(v: Vectors) -> Policy:
    return _parse(v["policy"]["text"])


def _enclave(v: Vectors) -> dict[str, str]:
    return v["keys"]["enclave"]


def _party(v: Vectors, party: str) -> dict[str, str]:
    assert party in v["keys"]["parties"], f"no fixed keys for party {party!r}"
    return v["keys"]["parties"][party]


def check_signed_document(kind: str, entry: dict[str, Any], label: bytes, signer: dict[str, str]
                          ) -> dict[str, Any]:
    """``{document, bytes, label, signature}``: canonical bytes both ways, Ed25519 both ways."""
    body, fields, signature = h(entry["bytes"]), from_json(entry["document"]), h(entry["signature"])
    assert pack_document(kind, fields) == body, f"{kind}: re-encoding the document differs"
    assert_same(unpack_document(kind, body), fields, kind)
    assert h(entry["label"]) == label
    # Ed25519 is deterministic: signing again gives the stored signature, which verifies.
    seed = Ed25519PrivateKey.from_private_bytes(h(signer["ed25519_seed"]))
    assert seed.sign(label + body) == signature, f"{kind}: signature differs"
    Ed25519PublicKey.from_public_bytes(h(signer["ed25519_public"])).verify(signature, label + body)
    return fields


def check_decrypt_vector(vector: dict[str, str], recipient: dict[str, str], info: bytes,
                         plaintext: bytes) -> None:
    """An HPKE decrypt vector: (recipient private key, enc, ciphertext, info) -> plaintext."""
    assert vector["suite"] == HPKE_SUITE_NAME
    assert vector["recipient_private"] == recipient["x25519_private"]
    assert vector["recipient_public"] == recipient["x25519_public"]
    assert h(vector["info"]) == info
    assert h(vector["plaintext"]) == plaintext
    enc, ciphertext = h(vector["enc"]), h(vector["ciphertext"])
    assert len(enc) == 32
    private = X25519PrivateKey.from_private_bytes(h(vector["recipient_private"]))
    assert HPKE_SUITE.decrypt(enc + ciphertext, private, info=info) == plaintext


def _head_on_chain(head: dict[str, Any], v: Vectors) -> None:
    entries = v["audit"]["entries"]
    assert set(head) == {"seq", "hash"} and 1 <= head["seq"] <= len(entries)
    assert head["hash"] == h(entries[head["seq"] - 1]["entry_hash"])


def _split_records(stream: bytes) -> list[bytes]:
    payloads, offset = [], 0
    while offset < len(stream):
        (length,) = RECORD_HEADER.unpack_from(stream, offset)
        offset += RECORD_HEADER.size
        payloads.append(stream[offset:offset + length])
        offset += length
    assert offset == len(stream)
    return payloads


# --- one check per file ---------------------------------------------------------------------------


def check_keys(v: Vectors) -> None:
    keys = v["keys"]
    for where, k in [("enclave", keys["enclave"]), *keys["parties"].items()]:
        x25519 = X25519PrivateKey.from_private_bytes(h(k["x25519_private"]))
        assert x25519.public_key().public_bytes_raw() == h(k["x25519_public"]), where
        ed25519 = Ed25519PrivateKey.from_private_bytes(h(k["ed25519_seed"]))
        assert ed25519.public_key().public_bytes_raw() == h(k["ed25519_public"]), where


def check_policy(v: Vectors) -> None:
    raw = v["policy"]["text"].encode("utf-8")
    assert policy_hash(raw) == h(v["policy"]["policy_hash"]) == hashlib.sha256(raw).digest()
    policy = _policy(v)
    assert policy.hash == h(v["policy"]["policy_hash"])
    assert [p.id for p in policy.parties] == list(v["keys"]["parties"])
    for party in policy.parties:
        keys = _party(v, party.id)
        assert party.signing_key == h(keys["ed25519_public"])
        assert party.result_key == h(keys["x25519_public"])


def check_report_data(v: Vectors) -> None:
    doc = v["report_data"]
    assert h(doc["domain"]) == DOMAIN
    assert doc["vectors"]
    for vec in doc["vectors"]:
        parts = [h(vec[k]) for k in ("enc_pub", "sig_pub", "policy_hash", "nonce")]
        assert report_data(*parts) == h(vec["report_data"])
        assert hashlib.sha512(DOMAIN + b"".join(parts)).digest() == h(vec["report_data"])
        assert vec["enc_pub"] == _enclave(v)["x25519_public"]
        assert vec["sig_pub"] == _enclave(v)["ed25519_public"]
        assert vec["policy_hash"] == v["policy"]["policy_hash"]


def check_requests(v: Vectors) -> None:
    policy = _policy(v)
    for kind, label in (("query_request", QUERY_LABEL), ("delete_request", DELETE_LABEL)):
        entry = v["requests"][kind]
        keys = _party(v, entry["signer"])
        assert entry["signing_seed"] == keys["ed25519_seed"]
        assert entry["signing_public"] == keys["ed25519_public"]
        fields = check_signed_document(kind, entry, label, {"ed25519_seed": entry["signing_seed"],
                                                            "ed25519_public": entry["signing_public"]})
        assert fields["party"] == entry["signer"]
        assert fields["collaboration_id"] == policy.collaboration_id and fields["policy_hash"] == policy.hash
        assert hashlib.sha256(h(entry["bytes"])).digest() == h(entry["request_id"])


def _batch_columns(dataset_schema: list[tuple[str, str]], columns: dict[str, list[Any]]) -> dict:
    out = {}
    for name, kind in dataset_schema:
        if kind == "id":
            out[name] = np.frombuffer(b"".join(h(x) for x in columns[name]), np.uint8).reshape(-1, 32)
        else:
            out[name] = np.array(columns[name], dtype=np.uint16 if kind == "dimension" else np.int64)
    assert list(columns) == [name for name, _ in dataset_schema]
    return out


def check_upload(v: Vectors) -> None:
    policy = _policy(v)
    uploads = v["upload"]["uploads"]
    assert [u["dataset"] for u in uploads] == [d.name for d in policy.datasets]
    for up in uploads:
        dataset = policy.dataset(up["dataset"])
        assert dataset is not None and dataset.owner == up["party"]
        schema = list(dataset.schema())
        assert [tuple(c) for c in up["schema"]] == schema
        header_bytes, signature = h(up["header"]["bytes"]), h(up["header"]["signature"])
        header = check_signed_document("upload_header", up["header"], UPLOAD_HEADER_LABEL,
                                       _party(v, up["party"]))
        assert (header["collaboration_id"], header["policy_hash"]) == (policy.collaboration_id, policy.hash)
        assert (header["party"], header["dataset"]) == (up["party"], up["dataset"])
        assert header["schema"] == up["schema"]
        assert header["rows_hint"] == sum(b["rows"] for b in up["batches"])

        # The data key, HPKE-wrapped to the enclave: a decrypt vector.
        data_key, wrap = h(up["data_key"]), up["data_key_wrap"]
        info = upload_key_hpke_info(policy.collaboration_id, policy.hash, up["party"], up["dataset"])
        check_decrypt_vector(wrap, _enclave(v), info, data_key)
        assert header["hpke_enc"] == h(wrap["enc"]) + h(wrap["ciphertext"])

        # Batches: encode_batch(columns) is the stored plaintext, decode_batch gives the columns.
        sizes = {d.name: len(d.values) for d in dataset.dimensions}
        plaintexts = []
        for batch in up["batches"]:
            raw = h(batch["bytes"])
            assert encode_batch(_batch_columns(schema, batch["columns"]), schema) == raw
            decoded = decode_batch(raw, schema, sizes)
            for name, kind in schema:
                values = ([bytes(x).hex() for x in decoded[name]] if kind == "id"
                          else [int(x) for x in decoded[name]])
                assert_same(values, batch["columns"][name], name)
            assert len(decoded["id"]) == batch["rows"]
            plaintexts.append(raw)

        # Chunks: nonce, AAD and AES-256-GCM under the data key, both ways.
        aead = AESGCM(data_key)
        assert len(up["chunks"]) == len(plaintexts)
        digest = UploadDigest(header_bytes, signature)
        for index, (chunk, plaintext) in enumerate(zip(up["chunks"], plaintexts, strict=True)):
            last = index == len(plaintexts) - 1
            assert chunk["index"] == index and chunk["last"] is last
            nonce, aad, ciphertext = h(chunk["nonce"]), h(chunk["aad"]), h(chunk["ciphertext"])
            assert nonce == chunk_nonce(index) and aad == chunk_aad(header_bytes, index, last)
            assert aad == hashlib.sha256(header_bytes).digest() + index.to_bytes(8, "big") + bytes([last])
            assert aead.encrypt(nonce, plaintext, aad) == ciphertext
            assert aead.decrypt(nonce, ciphertext, aad) == plaintext
            payload = bytes([last]) + ciphertext
            assert h(chunk["record"]) == encode_record(payload)
            digest.add_chunk_hash(hashlib.sha256(payload).digest())
        assert digest.digest() == h(up["digest"])

        # The HTTP record stream, built and then split back.
        head = canonical_packb({"header": header_bytes, "signature": signature})
        assert h(up["head_record"]) == encode_record(head)
        stream = h(up["record_stream"])
        assert stream == h(up["head_record"]) + b"".join(h(c["record"]) for c in up["chunks"])
        payloads = _split_records(stream)
        assert msgpack.unpackb(payloads[0], raw=False) == {"header": header_bytes, "signature": signature}
        assert [(p[0], p[1:]) for p in payloads[1:]] == [
            (int(c["last"]), h(c["ciphertext"])) for c in up["chunks"]]


def check_result(v: Vectors) -> None:
    policy, doc = _policy(v), v["result"]
    query = v["requests"]["query_request"]
    query_id = h(doc["query_id"])
    assert query_id == h(query["request_id"])
    fields = check_signed_document("result", doc, RESULT_LABEL, _enclave(v))
    request = from_json(query["document"])
    assert fields["query_id"] == query_id and fields["requested_by"] == request["party"]
    assert (fields["analysis"], fields["params"]) == (request["analysis"], request["params"])
    assert (fields["collaboration_id"], fields["policy_hash"]) == (policy.collaboration_id, policy.hash)
    _head_on_chain(fields["audit_head"], v)
    signed = h(doc["signed"])
    envelope = {"body": h(doc["bytes"]), "signature": h(doc["signature"])}
    assert pack_document("signed", envelope) == signed
    assert_same(unpack_document("signed", signed), envelope)
    assert [s["recipient"] for s in doc["sealed"]] == fields["recipients"]
    for sealed in doc["sealed"]:
        info = result_hpke_info(policy.collaboration_id, query_id, sealed["recipient"])
        check_decrypt_vector({k: x for k, x in sealed.items() if k != "recipient"},
                             _party(v, sealed["recipient"]), info, signed)


def check_receipts(v: Vectors) -> None:
    policy, doc = _policy(v), v["receipts"]
    uploads = v["upload"]["uploads"]
    assert len(doc["upload_receipts"]) == len(uploads)
    for receipt, up in zip(doc["upload_receipts"], uploads, strict=True):
        fields = check_signed_document("upload_receipt", receipt, RECEIPT_LABEL, _enclave(v))
        header = from_json(up["header"]["document"])
        assert (fields["collaboration_id"], fields["policy_hash"]) == (policy.collaboration_id, policy.hash)
        assert fields["upload_id"] == header["upload_id"] and fields["digest"] == h(up["digest"])
        assert (fields["party"], fields["dataset"]) == (header["party"], header["dataset"])
        assert fields["rows"] == sum(b["rows"] for b in up["batches"])
        assert fields.get("skipped") == header.get("skipped")  # the receipt repeats the header
        _head_on_chain(fields["audit_head"], v)
    fields = check_signed_document("deletion_receipt", doc["deletion_receipt"], DELETION_RECEIPT_LABEL,
                                   _enclave(v))
    request = v["requests"]["delete_request"]
    assert fields["request_id"] == h(request["request_id"])
    asked = from_json(request["document"])
    assert (fields["party"], fields["dataset"]) == (asked["party"], asked["dataset"])
    deleted = [from_json(u["header"]["document"])["upload_id"] for u in uploads
               if u["dataset"] == asked["dataset"]]
    assert fields["upload_ids"] == deleted
    _head_on_chain(fields["audit_head"], v)


def check_audit(v: Vectors) -> None:
    policy, doc = _policy(v), v["audit"]
    assert h(doc["genesis"]) == GENESIS
    assert doc["entries"]
    prev = GENESIS
    for seq, entry in enumerate(doc["entries"], start=1):
        fields = check_signed_document("audit_entry", entry, AUDIT_LABEL, _enclave(v))
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


def check_witness(v: Vectors) -> None:
    """A plan query under witness mode: what an integrator's client must produce and verify."""
    doc = v["witness"]
    policy = _parse(doc["policy"]["text"])
    assert policy.hash.hex() == doc["policy"]["policy_hash"] and policy.privacy.witness == "owners"
    assert [(u["party"], u["dataset"]) for u in doc["uploads"]] == [
        (d.owner, d.name) for d in policy.datasets]
    for upload in doc["uploads"]:
        info = upload_key_hpke_info(policy.collaboration_id, policy.hash, upload["party"], upload["dataset"])
        check_decrypt_vector(upload["data_key_wrap"], _enclave(v), info, h(upload["data_key"]))
    request = check_signed_document("query_request", doc["query_request"], QUERY_LABEL,
                                    _party(v, "advertiser"))
    plan = parse_plan(request["plan"])
    check = check_plan(policy, plan, request["party"])
    assert (request["analysis"], request["params"]) == ("", {}) and isinstance(request["sql"], str)
    request_bytes = h(doc["query_request"]["bytes"])
    proposal = check_signed_document("charge_proposal", doc["proposal"], PROPOSAL_LABEL, _enclave(v))
    assert proposal["query_id"] == hashlib.sha256(request_bytes).digest()
    assert proposal["request"] == request_bytes
    assert proposal["request_signature"] == h(doc["query_request"]["signature"])
    assert proposal["approvers"] == {"advertiser": ["witness"], "publisher": ["witness"]}
    assert (proposal["amount"], proposal["unit"], proposal["delta"]) == (str(check.cost), "epsilon", "0")
    assert proposal["datasets"] == sorted(policy.join)
    proposal_bytes = h(doc["proposal"]["bytes"])
    for party, signature in doc["approvals"].items():
        keys = _party(v, party)
        seed = Ed25519PrivateKey.from_private_bytes(h(keys["ed25519_seed"]))
        assert seed.sign(APPROVAL_LABEL + proposal_bytes) == h(signature)
    result = check_signed_document("result", doc["result"], RESULT_LABEL, _enclave(v))
    assert result["query_id"] == proposal["query_id"] and result["kind"] == "plan"
    assert result["params"] == {"plan": plan.to_wire(), "sql": request["sql"]}
    assert result["columns"] == ["campaign", "buyers", "revenue"]
    budget = check_signed_document("budget_status", doc["budget_status"], BUDGET_LABEL, _enclave(v))
    assert {name: d["spent"] for name, d in budget["datasets"].items()} == {
        name: str(check.cost) for name in policy.join}


CHECKS: dict[str, Callable[[Vectors], None]] = {
    "keys": check_keys, "policy": check_policy, "report_data": check_report_data,
    "requests": check_requests, "upload": check_upload, "result": check_result,
    "receipts": check_receipts, "audit": check_audit, "frames": check_frames,
    "witness": check_witness, **CHECKS_EXTRA,
}


def check_all(v: Vectors) -> None:
    for check in CHECKS.values():
        check(v)


# --- tests ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored() -> Vectors:
    return load_all()


@pytest.fixture
def vectors(stored: Vectors) -> Vectors:
    return copy.deepcopy(stored)


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    """The generator, imported only by the tests that run the project's code (the checks above
    need ``protocol`` alone)."""
    from tests.vectors import generate

    return generate


def test_every_file_has_a_check() -> None:
    assert tuple(CHECKS) == FILES
    # normalisation.json is the party-side identifier rules, checked by test_normalisation.py.
    assert sorted(p.stem for p in VECTOR_DIR.glob("*.json")) == sorted([*FILES, "normalisation"])


@pytest.mark.parametrize("name", FILES)
def test_vector_file(vectors: Vectors, name: str) -> None:
    CHECKS[name](vectors)


def _flip_middle_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def test_a_one_byte_edit_of_a_signed_request_fails(vectors: Vectors) -> None:
    entry = vectors["requests"]["query_request"]
    entry["bytes"] = _flip_middle_byte(h(entry["bytes"])).hex()
    with pytest.raises(AssertionError, match="re-encoding the document differs"):
        check_requests(vectors)


def test_a_one_byte_edit_of_a_result_ciphertext_fails(vectors: Vectors) -> None:
    sealed = vectors["result"]["sealed"][0]
    sealed["ciphertext"] = _flip_middle_byte(h(sealed["ciphertext"])).hex()
    with pytest.raises(Exception):  # noqa: B017 - cryptography raises its own opaque error
        check_result(vectors)


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "description":  # free text, not a vector
                yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path


def _mutated(value: Any) -> Any:
    """The value with one byte changed: a byte of hex data, a character, a number, a flag."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return 0
    assert isinstance(value, str)
    if not value:
        return "x"
    try:
        return _flip_middle_byte(h(value)).hex()
    except ValueError:  # text, not hex
        i = len(value) // 2
        return value[:i] + chr(ord(value[i]) ^ 0x01) + value[i + 1:]


def test_any_one_byte_edit_of_any_vector_fails(stored: Vectors) -> None:
    """Every leaf of every file is covered by some check: editing it makes ``check_all`` fail."""
    survived, leaves = [], 0
    for name in FILES:
        for path in _leaves(stored[name]):
            leaves += 1
            edited = copy.deepcopy(stored)
            parent = edited[name]
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = _mutated(parent[path[-1]])
            try:
                CHECKS[name](edited)  # the file's own check first: it notices almost every edit
                check_all(edited)
            except Exception:  # any failure is the expected outcome
                continue
            survived.append(f"{name}:{'.'.join(map(str, path))}")
    assert leaves > 100
    assert not survived, f"edits no check noticed: {survived}"


def test_the_generator_reproduces_the_files(stored: Vectors, generate: ModuleType) -> None:
    """The real code paths (enclave Session, protocol) still make exactly the stored bytes.

    A failure here means the wire bytes changed: if that is intended, run
    ``python -m tests.vectors.generate`` and review the diff of tests/vectors/*.json.
    """
    for name, doc in generate.build(stored).items():
        assert dump(doc) == (VECTOR_DIR / f"{name}.json").read_text(encoding="utf-8"), (
            f"{name}.json is stale: the code now makes other bytes (see this test's docstring)")


def test_fresh_hpke_ciphertexts_give_valid_vectors(stored: Vectors, generate: ModuleType) -> None:
    """From nothing, the generator draws fresh HPKE ciphertexts; everything still checks."""
    fresh = generate.build({})
    check_all(fresh)
    for name in ("keys", "policy", "report_data", "requests"):  # nothing here depends on HPKE
        assert fresh[name] == stored[name]
    assert fresh["result"]["sealed"] != stored["result"]["sealed"]
    # Once stored, the fresh ciphertexts are kept: regenerating is a no-op.
    assert generate.build(fresh) == fresh


def test_upload_encryptor_agrees_with_the_vector_construction(vectors: Vectors,
                                                              generate: ModuleType) -> None:
    """``UploadEncryptor`` wraps its data key with HPKE itself (a fresh ephemeral key each time);
    with its random values put into ``generate.build_upload`` (what made the vector) the bytes
    are the same, so the vector construction is the client's."""
    from cleanroom.upload_crypto import UploadEncryptor

    policy, parties, enclave = _policy(vectors), generate.party_keys(), generate.enclave_keys()
    for up in vectors["upload"]["uploads"]:
        dataset = policy.dataset(up["dataset"])
        assert dataset is not None
        stored_header = from_json(up["header"]["document"])
        batches = [h(b["bytes"]) for b in up["batches"]]
        encryptor = UploadEncryptor(parties[up["party"]], policy, dataset, enclave.enc_pub,
                                    chunk_size=stored_header["chunk_size"],
                                    now=stored_header["created_at"], rows_hint=stored_header["rows_hint"],
                                    skipped=stored_header.get("skipped"))
        stream = b"".join(encryptor.records(batches))
        header = unpack_document("upload_header", encryptor.header_bytes)
        info = h(up["data_key_wrap"]["info"])
        data_key = HPKE_SUITE.decrypt(header["hpke_enc"], enclave.encryption, info=info)
        rebuilt = generate.build_upload(
            parties[up["party"]], policy, dataset, upload_id=header["upload_id"], data_key=data_key,
            hpke_enc=header["hpke_enc"], created_at=stored_header["created_at"],
            chunk_size=stored_header["chunk_size"], rows_hint=stored_header["rows_hint"], batches=batches,
            skipped=stored_header.get("skipped"))
        assert rebuilt["header_bytes"] == encryptor.header_bytes
        assert rebuilt["signature"] == encryptor.signature
        assert rebuilt["record_stream"] == stream
        assert rebuilt["digest"] == encryptor.digest
        # Only the random values differ from the stored header (the idempotency key defaults to
        # the upload id).
        assert header["idempotency_key"] == header["upload_id"]
        random = ("upload_id", "hpke_enc", "idempotency_key")
        assert {k: x for k, x in header.items() if k not in random} == {
            k: x for k, x in stored_header.items() if k not in random}


def test_party_side_verification_accepts_the_vectors(vectors: Vectors, generate: ModuleType) -> None:
    """The client's own opening and verification code accepts the enclave's stored outputs."""
    import base64

    from cleanroom.audit import verify_audit_log
    from cleanroom.receipts import verify_deletion_receipt, verify_receipt
    from cleanroom.result_open import open_result

    policy, parties = _policy(vectors), generate.party_keys()
    sig_pub = h(_enclave(vectors)["ed25519_public"])
    result = vectors["result"]
    for sealed in result["sealed"]:
        opened = open_result(h(sealed["enc"]) + h(sealed["ciphertext"]), parties[sealed["recipient"]],
                             sig_pub, policy, h(result["query_id"]))
        assert_same(opened.body, from_json(result["document"]))
    for receipt, up in zip(vectors["receipts"]["upload_receipts"], vectors["upload"]["uploads"], strict=True):
        header = from_json(up["header"]["document"])
        response = {"receipt": base64.b64encode(h(receipt["bytes"])).decode(),
                    "signature": base64.b64encode(h(receipt["signature"])).decode()}
        verify_receipt(response, sig_pub, policy, upload_id=header["upload_id"], party=up["party"],
                       dataset=up["dataset"], rows=sum(b["rows"] for b in up["batches"]),
                       digest=h(up["digest"]), skipped=header.get("skipped"))
    deletion, request = vectors["receipts"]["deletion_receipt"], vectors["requests"]["delete_request"]
    verify_deletion_receipt({"receipt": base64.b64encode(h(deletion["bytes"])).decode(),
                             "signature": base64.b64encode(h(deletion["signature"])).decode()},
                            sig_pub, policy, request_id=h(request["request_id"]),
                            party=request["signer"], dataset=from_json(request["document"])["dataset"])
    entries = vectors["audit"]["entries"]
    head, _ = verify_audit_log([h(e["signed"]) for e in entries], sig_pub, policy.collaboration_id)
    assert (head.seq, head.hash) == (len(entries), h(entries[-1]["entry_hash"]))
