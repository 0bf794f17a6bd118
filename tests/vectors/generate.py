"""Regenerate the golden wire vectors: ``python -m tests.vectors.generate [--out DIR] [--check]``.

Every byte string comes from the project's own code: the enclave ``Session`` (driven through
real frames by ``enclave.requests.dispatch.handle_frame``, with its clock, randomness and noise
injected) makes the receipts, the result, the audit chain and REPORTDATA; ``protocol/`` builds
the documents, batches, chunk nonces, AAD, records and digests. Fixed keys come from SHA-256 of
fixed labels, the clock is ``NOW``.

Where a code path offers no way to inject a value, the generator stands in for it:

* ``enclave.requests.session.Session.init`` draws the enclave's keys with
  ``EnclaveKeys.generate()``: the fixed keys replace that class method while it runs;
* ``cleanroom.upload_crypto.UploadEncryptor`` wraps the data key with HPKE itself, whose
  ephemeral key cannot be injected: ``build_upload`` below does what it does with a given
  ``hpke_enc`` (``test_vectors.py`` checks that ``UploadEncryptor`` makes the same bytes);
* ``cleanroom.client.Client.query`` / ``.delete`` send their signed request over HTTP at once:
  the requests are built with ``pack_document`` exactly as they build them.

HPKE draws its ephemeral key inside ``cryptography``, so an HPKE ciphertext is a *decrypt*
vector: the generator keeps the stored ciphertext while it still decrypts to the same plaintext
under the same key and ``info``, and only otherwise stores a fresh one. Regenerating is
therefore a no-op unless the wire bytes really changed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cleanroom.keys import PartyKeys
from enclave.requests.dispatch import handle_frame
from enclave.requests.session import Session
from enclave.state.keys import EnclaveKeys
from protocol.audit import GENESIS, entry_hash
from protocol.batch import encode_batch
from protocol.crypto import (
    APPROVAL_LABEL,
    AUDIT_LABEL,
    BUDGET_LABEL,
    DATA_KEY_BYTES,
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
from protocol.errors import error_from_wire
from protocol.policy import Dataset, Policy, parse_policy
from protocol.report_data import DOMAIN, ZERO_NONCE, policy_hash, report_data
from protocol.templates import instantiate
from protocol.upload import UploadDigest, chunk_aad, chunk_nonce, encode_record
from protocol.wire import canonical_packb, encode_frame, pack, pack_document, unpack, unpack_document
from tests.vectors.checks_extra import http_vector
from tests.vectors.generate_extra import build_extra
from tests.vectors.loader import FILES, HPKE_SUITE_NAME, VECTOR_DIR, dump, h, load, to_json

__all__ = ["NOW", "build", "build_upload", "enclave_keys", "main", "party_keys"]

NOW = 1_800_000_000  # the enclave's clock and every document's time (2027-01-15 08:00 UTC)
UPLOADED_AT = NOW - 120  # the upload headers' created_at
CHUNK_SIZE = 4096  # protocol.upload.CHUNK_MIN_PLAINTEXT: the smallest chunk size allowed
# One upload left invalid rows out (--skip-invalid): its header and receipt carry the counts.
SKIPPED = {"conversions": {"id": 2, "value": 1}}
ATTEST_NONCE = bytes(range(32))
_ENC_BYTES = 32  # DHKEM(X25519) enc
PARTIES = ("publisher", "advertiser")

POLICY_TEMPLATE = """\
# The fixed policy of the wire test vectors (tests/vectors): small, so results are not suppressed.
format = 1
collaboration_id = "wire-test-vectors-v1"
description = "Golden wire vectors"
retention_days = 30

[[parties]]
id = "publisher"
display_name = "Publisher (test vectors)"
signing_key = "{publisher_signing}"
result_key = "{publisher_result}"

[[parties]]
id = "advertiser"
display_name = "Advertiser (test vectors)"
signing_key = "{advertiser_signing}"
result_key = "{advertiser_result}"

[[datasets]]
name = "impressions"
owner = "publisher"
id_column = "email"
id_normalization = "email"
max_rows = 1000

[[datasets.dimensions]]
name = "campaign"
values = ["spring", "summer", "autumn"]

[[datasets.metrics]]
name = "spend"
scale = 2
min = "0"
max = "100"

[[datasets]]
name = "conversions"
owner = "advertiser"
id_column = "email"
id_normalization = "email"
max_rows = 1000

[[datasets.metrics]]
name = "value"
scale = 2
min = "0"
max = "500"

[join]
datasets = ["impressions", "conversions"]

[privacy]
mode = "pure"
min_cohort_size = 1
max_cohorts_per_user = 2
max_rows_per_user = 4
epsilon_per_query_max = "1.0"
delta = "1e-9"
refresh = "none"

[privacy.budget]
impressions = "2.0"
conversions = "2.0"

[[analyses]]
id = "overlap"
kind = "overlap"
requesters = ["publisher", "advertiser"]
recipients = ["advertiser", "publisher"]
epsilon = "0.5"
group_by = ["impressions.campaign"]
max_group_by = 1
"""


# The witness vectors' policy: the one above, in witness mode, with both owners' rules.
WITNESS_POLICY_EDITS = (
    ('collaboration_id = "wire-test-vectors-v1"', 'collaboration_id = "wire-test-vectors-witness-v1"'),
    ('refresh = "none"', 'refresh = "none"\nwitness = "owners"'),
    ('max = "100"\n', 'max = "100"\n\n[datasets.rules]\nrequesters = ["advertiser"]\n'
                     'recipients = ["advertiser"]\ngroup_by = ["campaign"]\nfilter_by = ["campaign"]\n'
                     'join_with = ["conversions"]\nmin_persons = 1\nepsilon = "0.5"\n'),
    ('max = "500"\n', 'max = "500"\n\n[datasets.rules]\nrequesters = ["advertiser"]\n'
                     'recipients = ["advertiser"]\nmetrics = { value = ["sum"] }\nmin_persons = 1\n'
                     'epsilon = "0.5"\n'),
)
PLAN = {"v": 1, "datasets": ["impressions", "conversions"],
        "where": [{"column": "impressions.campaign", "op": "not_in", "values": ["autumn"]}],
        "group_by": ["impressions.campaign"],
        "select": [{"fn": "count_distinct", "arg": "person", "as": "buyers"},
                   {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
PLAN_SQL = ("SELECT i.campaign, COUNT(DISTINCT person) AS buyers, SUM(c.value) AS revenue "
            "FROM impressions i JOIN conversions c WHERE i.campaign <> 'autumn' GROUP BY i.campaign")
PLAN_NONCE = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")

# The template vectors' policy: the fixed one with a template that has a WHERE parameter and a
# GROUP BY parameter, over a LEFT JOIN (its last row, the unexposed, has nil group keys).
TEMPLATE_POLICY_EDITS = (
    ('collaboration_id = "wire-test-vectors-v1"', 'collaboration_id = "wire-test-vectors-template-v1"'),
)
TEMPLATE_PLAN = (
    '{"v": 1, "datasets": ["conversions", "impressions"], "join": "left", '
    '"where": [{"column": "impressions.campaign", "op": "in", "values": {"param": "campaigns"}}], '
    '"group_by": [{"param": "by"}], '
    '"select": [{"fn": "count_distinct", "arg": "person", "as": "converters"}, '
    '{"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}'
)
TEMPLATE_TOML = "\n".join((
    "",
    "[[templates]]",
    'id = "converters_by_segment"',
    'description = "Converters and revenue per chosen grouping of the chosen campaigns, and the unexposed"',
    'requesters = ["advertiser"]',
    'recipients = ["advertiser"]',
    'epsilon = "0.5"',
    'sql = "SELECT :by, COUNT(DISTINCT person) AS converters, SUM(c.value) AS revenue FROM conversions c '
    'LEFT JOIN impressions i WHERE i.campaign IN (:campaigns) GROUP BY :by"',
    f"plan = '{TEMPLATE_PLAN}'",
    "",
    "[templates.params]",
    'campaigns = "impressions.campaign"',
    'by = { group_by = ["impressions.campaign"], max = 1 }',
    "",
))
TEMPLATE_QUERY = {"party": "advertiser", "analysis": "converters_by_segment",
                  "params": {"campaigns": ["spring", "summer"], "by": ["impressions.campaign"]},
                  "nonce": bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")}


def _person(i: int) -> bytes:
    """A row id: SHA-256 of a fixed (already normalised) e-mail address."""
    return hashlib.sha256(f"person{i}@example.com".encode()).digest()


# Each inner list is one batch, so one chunk; rows are (person, dimension codes..., metrics...).
IMPRESSIONS = [[(0, 0, 1250), (1, 1, 300), (2, 0, 9999)], [(3, 2, 0), (1, 0, 10000)], [(4, 1, 42)]]
CONVERSIONS = [[(1, 2500), (3, 12000), (5, 50000)]]
QUERY = {"party": "advertiser", "analysis": "overlap", "params": {"group_by": ["impressions.campaign"]},
         "nonce": bytes.fromhex("00112233445566778899aabbccddeeff")}
DELETE = {"party": "publisher", "dataset": "impressions",
          "nonce": bytes.fromhex("ffeeddccbbaa99887766554433221100")}


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"cleanroom/test-vectors/v1/" + label.encode()).digest()


def enclave_keys() -> EnclaveKeys:
    return EnclaveKeys(X25519PrivateKey.from_private_bytes(_seed("enclave/x25519")),
                       Ed25519PrivateKey.from_private_bytes(_seed("enclave/ed25519")),
                       _seed("enclave/join"), _seed("enclave/release-seed"))


def party_keys() -> dict[str, PartyKeys]:
    return {p: PartyKeys(p, Ed25519PrivateKey.from_private_bytes(_seed(f"{p}/ed25519")),
                         X25519PrivateKey.from_private_bytes(_seed(f"{p}/x25519"))) for p in PARTIES}


def _hex_keys(x25519_private: bytes, x25519_public: bytes, ed25519_seed: bytes,
              ed25519_public: bytes) -> dict[str, str]:
    return {"x25519_private": x25519_private.hex(), "x25519_public": x25519_public.hex(),
            "ed25519_seed": ed25519_seed.hex(), "ed25519_public": ed25519_public.hex()}


# --- HPKE decrypt vectors ---------------------------------------------------------------------


def _opens(vector: Any, private: X25519PrivateKey, info: bytes, plaintext: bytes) -> bool:
    """Whether a stored decrypt vector still opens to ``plaintext`` under this key and info."""
    try:
        sealed = h(vector["enc"]) + h(vector["ciphertext"])
        return HPKE_SUITE.decrypt(sealed, private, info=info) == plaintext
    except Exception:  # a missing, malformed or stale vector is simply replaced
        return False


def _decrypt_vector(stored: Any, fresh: bytes, private: X25519PrivateKey, public: bytes,
                    info: bytes, plaintext: bytes) -> dict[str, str]:
    """The stored ciphertext if it still opens, else the fresh one (``enc || ciphertext``)."""
    if not _opens(stored, private, info, plaintext):
        assert HPKE_SUITE.decrypt(fresh, private, info=info) == plaintext
        stored = {"enc": fresh[:_ENC_BYTES].hex(), "ciphertext": fresh[_ENC_BYTES:].hex()}
    return {"suite": HPKE_SUITE_NAME, "recipient_private": private.private_bytes_raw().hex(),
            "recipient_public": public.hex(), "info": info.hex(), "enc": stored["enc"],
            "ciphertext": stored["ciphertext"], "plaintext": plaintext.hex()}


# --- uploads ------------------------------------------------------------------------------------


def _columns(dataset: Dataset, rows: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
    schema = dataset.schema()
    out: dict[str, np.ndarray] = {}
    for i, (name, kind) in enumerate(schema):
        values = [row[i] for row in rows]
        if kind == "id":
            out[name] = np.frombuffer(b"".join(_person(v) for v in values), np.uint8).reshape(-1, 32)
        else:
            out[name] = np.array(values, dtype=np.uint16 if kind == "dimension" else np.int64)
    return out


def _columns_json(dataset: Dataset, columns: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    return {name: [bytes(v).hex() for v in columns[name]] if kind == "id"
            else [int(v) for v in columns[name]] for name, kind in dataset.schema()}


def build_upload(keys: PartyKeys, policy: Policy, dataset: Dataset, *, upload_id: bytes,
                 data_key: bytes, hpke_enc: bytes, created_at: int, chunk_size: int,
                 rows_hint: int | None, batches: Sequence[bytes],
                 skipped: dict[str, int] | None = None) -> dict[str, Any]:
    """One upload exactly as ``UploadEncryptor`` makes it, with its random values given."""
    header: dict[str, Any] = {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": keys.party_id, "dataset": dataset.name, "upload_id": upload_id,
        "created_at": created_at, "hpke_enc": hpke_enc, "chunk_size": chunk_size,
        "schema": [[name, kind] for name, kind in dataset.schema()],
        "mode": "create", "idempotency_key": upload_id,  # UploadEncryptor's defaults
    }
    if rows_hint is not None:
        header["rows_hint"] = rows_hint
    if skipped is not None:
        header["skipped"] = skipped
    header_bytes = pack_document("upload_header", header)
    signature = keys.sign(UPLOAD_HEADER_LABEL, header_bytes)
    aead = AESGCM(data_key)
    digest = UploadDigest(header_bytes, signature)
    head_record = encode_record(canonical_packb({"header": header_bytes, "signature": signature}))
    chunks = []
    for index, batch in enumerate(batches):
        last = index == len(batches) - 1
        nonce, aad = chunk_nonce(index), chunk_aad(header_bytes, index, last)
        ciphertext = aead.encrypt(nonce, batch, aad)
        payload = (b"\x01" if last else b"\x00") + ciphertext
        digest.add_chunk_hash(hashlib.sha256(payload).digest())
        chunks.append({"index": index, "last": last, "nonce": nonce, "aad": aad,
                       "ciphertext": ciphertext, "record": encode_record(payload)})
    return {"header_bytes": header_bytes, "signature": signature, "head_record": head_record,
            "chunks": chunks, "record_stream": head_record + b"".join(c["record"] for c in chunks),
            "digest": digest.digest()}


def _upload_vector(stored: Any, keys: PartyKeys, policy: Policy, dataset: Dataset,
                   enclave: EnclaveKeys, rows: Sequence[Sequence[tuple[int, ...]]]) -> dict[str, Any]:
    upload_id = _seed(f"upload/{dataset.name}/id")[:16]
    data_key = _seed(f"upload/{dataset.name}/data-key")[:DATA_KEY_BYTES]
    info = upload_key_hpke_info(policy.collaboration_id, policy.hash, keys.party_id, dataset.name)
    fresh = HPKE_SUITE.encrypt(data_key, X25519PublicKey.from_public_bytes(enclave.enc_pub), info=info)
    wrap = _decrypt_vector((stored or {}).get("data_key_wrap"), fresh, enclave.encryption,
                           enclave.enc_pub, info, data_key)
    columns = [_columns(dataset, batch_rows) for batch_rows in rows]
    batches = [encode_batch(c, dataset.schema()) for c in columns]
    built = build_upload(keys, policy, dataset, upload_id=upload_id, data_key=data_key,
                         hpke_enc=h(wrap["enc"]) + h(wrap["ciphertext"]), created_at=UPLOADED_AT,
                         chunk_size=CHUNK_SIZE, rows_hint=sum(len(r) for r in rows), batches=batches,
                         skipped=SKIPPED.get(dataset.name))
    return {
        "party": keys.party_id,
        "dataset": dataset.name,
        "schema": [[name, kind] for name, kind in dataset.schema()],
        "data_key": data_key.hex(),
        "data_key_wrap": wrap,
        "header": _signed_document("upload_header", built["header_bytes"], UPLOAD_HEADER_LABEL,
                                   built["signature"]),
        "batches": [{"rows": len(r), "columns": _columns_json(dataset, c), "bytes": b.hex()}
                    for r, c, b in zip(rows, columns, batches, strict=True)],
        "chunks": [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in c.items()}
                   for c in built["chunks"]],
        "head_record": built["head_record"].hex(),
        "record_stream": built["record_stream"].hex(),
        "digest": built["digest"].hex(),
    }


# --- the enclave session ----------------------------------------------------------------------


class ZeroNoise:
    """Noise that is always zero, so released numbers are exact and the result is reproducible."""

    mechanism = "none (wire test vectors)"

    def laplace(self, scale: Fraction, count: int) -> list[int]:
        return [0] * count

    def gaussian(self, sigma2: Fraction, count: int) -> list[int]:
        return [0] * count


def _counter_stream(label: bytes) -> Callable[[int], bytes]:
    """A deterministic stand-in for ``os.urandom``: SHA-256 in counter mode."""
    counter = 0

    def random_bytes(n: int) -> bytes:
        nonlocal counter
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(label + counter.to_bytes(8, "big")).digest()
            counter += 1
        return bytes(out[:n])

    return random_bytes


class _Enclave:
    """A simulation-mode ``Session`` holding the fixed enclave keys, driven through frames."""

    def __init__(self, policy_bytes: bytes, keys: EnclaveKeys) -> None:
        # Session.init draws the enclave's keys with EnclaveKeys.generate (no injection point):
        # the fixed keys stand in for it while the session initialises.
        self.session = Session(mode="simulation", quote=lambda _: None, sealing_key=_seed("sealing-key"),
                               load_sealed=lambda _: None, persist=lambda _, blob: None,
                               noise=ZeroNoise(), clock=lambda: float(NOW),
                               random_bytes=_counter_stream(b"cleanroom/test-vectors/v1/enclave-random"),
                               sleep=lambda _: None)
        self.audit: list[bytes] = []
        with mock.patch.object(EnclaveKeys, "generate", classmethod(lambda cls: keys)):
            self.ready = self.call("init", {"policy": policy_bytes})[2]
        assert (self.ready["enc_pub"], self.ready["sig_pub"]) == (keys.enc_pub, keys.sig_pub)

    def call(self, type_: str, body: Mapping[str, Any]) -> tuple[bytes, bytes, dict]:
        """Request message bytes, reply message bytes, reply body; collects audit entries."""
        request = pack(type_, body)
        reply_bytes = handle_frame(self.session, request)
        reply = unpack(reply_bytes)
        if reply.type == "error":
            raise error_from_wire(reply.body)
        self.audit.extend(reply.body.get("audit", []))
        return request, reply_bytes, reply.body

    def upload(self, upload: Mapping[str, Any]) -> tuple[bytes, dict]:
        """Relay an upload's records as the host does; return the commit reply."""
        header = upload["header"]
        stream = self.call("upload_begin", {"header": h(header["bytes"]),
                                            "signature": h(header["signature"])})[2]["stream"]
        for chunk in upload["chunks"]:
            self.call("upload_chunk", {"stream": stream, "index": chunk["index"], "last": chunk["last"],
                                       "data": h(chunk["ciphertext"])})
        _, reply_bytes, reply = self.call("upload_commit", {"stream": stream})
        return reply_bytes, reply


# --- the vector files ---------------------------------------------------------------------------


def _signed_document(kind: str, body: bytes, label: bytes, signature: bytes) -> dict[str, Any]:
    return {"document": to_json(unpack_document(kind, body)), "bytes": body.hex(),
            "label": label.hex(), "signature": signature.hex()}


def _request(kind: str, fields: Mapping[str, Any], keys: PartyKeys, label: bytes,
             policy: Policy) -> tuple[bytes, bytes]:
    """A signed party request, built as ``cleanroom.client.Client`` builds it (nonce given)."""
    body = pack_document(kind, {"collaboration_id": policy.collaboration_id,
                                "policy_hash": policy.hash, **fields, "issued_at": NOW})
    return body, keys.sign(label, body)


def build(existing: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every vector file's content; ``existing`` (the stored files) supplies HPKE ciphertexts."""
    existing = existing or {}
    enclave, parties = enclave_keys(), party_keys()
    out: dict[str, dict[str, Any]] = {}

    out["keys"] = {
        "description": "The fixed test keys (never use them for anything else).",
        "enclave": _hex_keys(enclave.encryption.private_bytes_raw(), enclave.enc_pub,
                             enclave.signing.private_bytes_raw(), enclave.sig_pub),
        "parties": {p: _hex_keys(k.result_key.private_bytes_raw(), k.result_public,
                                 k.signing_key.private_bytes_raw(), k.signing_public)
                    for p, k in parties.items()},
    }

    policy_bytes = POLICY_TEMPLATE.format(**{
        f"{p}_{role}": getattr(k, f"{role}_public").hex() for p, k in parties.items()
        for role in ("signing", "result")}).encode()
    policy = parse_policy(policy_bytes)
    assert policy.hash == policy_hash(policy_bytes)
    out["policy"] = {"description": "The policy document is the UTF-8 bytes of text.",
                     "text": policy_bytes.decode(), "policy_hash": policy.hash.hex()}

    node = _Enclave(policy_bytes, enclave)
    report_vectors = []
    for nonce in (ZERO_NONCE, ATTEST_NONCE):
        attestation = node.call("attest", {"nonce": nonce})[2]
        value = report_data(enclave.enc_pub, enclave.sig_pub, policy.hash, nonce)
        assert attestation["report_data"] == value
        report_vectors.append({"enc_pub": enclave.enc_pub.hex(), "sig_pub": enclave.sig_pub.hex(),
                               "policy_hash": policy.hash.hex(), "nonce": nonce.hex(),
                               "report_data": value.hex()})
    out["report_data"] = {"description": "SHA-512(domain || enc_pub || sig_pub || policy_hash || nonce)",
                          "domain": DOMAIN.hex(), "vectors": report_vectors}

    query_bytes, query_sig = _request("query_request", QUERY, parties[QUERY["party"]], QUERY_LABEL, policy)
    delete_bytes, delete_sig = _request("delete_request", DELETE, parties[DELETE["party"]],
                                        DELETE_LABEL, policy)
    requests = {}
    for kind, party, body, sig in (("query_request", QUERY["party"], query_bytes, query_sig),
                                   ("delete_request", DELETE["party"], delete_bytes, delete_sig)):
        keys = parties[party]
        requests[kind] = {"signer": party, "signing_seed": keys.signing_key.private_bytes_raw().hex(),
                          "signing_public": keys.signing_public.hex(),
                          **_signed_document(kind, body, QUERY_LABEL if kind == "query_request"
                                             else DELETE_LABEL, sig),
                          "request_id": hashlib.sha256(body).hexdigest()}
    out["requests"] = {"description": "Signed party requests; request_id = SHA-256(bytes) "
                                      "(the query_id of a query).", **requests}

    stored_uploads = {u.get("dataset"): u for u in existing.get("upload", {}).get("uploads", [])
                      if isinstance(u, dict)}
    uploads = []
    for name, rows in (("impressions", IMPRESSIONS), ("conversions", CONVERSIONS)):
        dataset = policy.dataset(name)
        assert dataset is not None
        uploads.append(_upload_vector(stored_uploads.get(name), parties[dataset.owner], policy,
                                      dataset, enclave, rows))
    out["upload"] = {"description": "Encrypted uploads: header, batches, chunks, records, digest.",
                     "uploads": uploads}

    receipts, receipt_reply = [], b""
    for upload in uploads:
        reply_bytes, reply = node.upload(upload)
        receipt_reply = receipt_reply or reply_bytes
        receipts.append(_signed_document("upload_receipt", reply["receipt"], RECEIPT_LABEL,
                                         reply["signature"]))
        assert unpack_document("upload_receipt", reply["receipt"])["digest"] == h(upload["digest"])

    query_message, _, answer = node.call("query", {"request": query_bytes, "signature": query_sig})
    query_id = answer["query_id"]
    assert query_id == hashlib.sha256(query_bytes).digest()
    stored_sealed = {s.get("recipient"): s for s in existing.get("result", {}).get("sealed", [])
                     if isinstance(s, dict)}
    signed: bytes | None = None
    sealed = []
    for recipient, ciphertext in answer["results"].items():
        keys = parties[recipient]
        info = result_hpke_info(policy.collaboration_id, query_id, recipient)
        opened = HPKE_SUITE.decrypt(ciphertext, keys.result_key, info=info)
        assert signed is None or opened == signed
        signed = opened
        sealed.append({"recipient": recipient, **_decrypt_vector(
            stored_sealed.get(recipient), ciphertext, keys.result_key, keys.result_public, info, opened)})
    assert signed is not None
    envelope = unpack_document("signed", signed)
    out["result"] = {"description": "A result: signed document, sealed with HPKE to each recipient.",
                     "query_id": query_id.hex(),
                     **_signed_document("result", envelope["body"], RESULT_LABEL, envelope["signature"]),
                     "signed": signed.hex(), "sealed": sealed}

    deleted = node.call("delete", {"request": delete_bytes, "signature": delete_sig})[2]
    out["receipts"] = {"description": "Enclave-signed receipts.", "upload_receipts": receipts,
                       "deletion_receipt": _signed_document("deletion_receipt", deleted["receipt"],
                                                            DELETION_RECEIPT_LABEL, deleted["signature"])}
    assert node.call("audit_flush", {})[2]["audit"] == []

    entries = []
    for raw in node.audit:
        doc = unpack_document("signed", raw)
        entries.append({**_signed_document("audit_entry", doc["body"], AUDIT_LABEL, doc["signature"]),
                        "signed": raw.hex(), "entry_hash": entry_hash(doc["body"]).hex()})
    out["audit"] = {"description": "The audit chain of the session above, from GENESIS; "
                                   "entry_hash = SHA-256(label || bytes).",
                    "genesis": GENESIS.hex(), "entries": entries}

    messages = []
    for direction, raw in (("host->enclave", query_message), ("enclave->host", receipt_reply)):
        message = unpack(raw)
        messages.append({"direction": direction, "type": message.type, "body": to_json(message.body),
                         "message": raw.hex(), "frame": encode_frame(raw).hex()})
    out["frames"] = {"description": "Host <-> enclave messages {v, type, body} and their frames "
                                    "(u32 big-endian length || message).", "messages": messages}
    out["witness"] = _witness_vectors(policy_bytes, enclave, parties, uploads, existing)
    build_extra(out, existing, node.call, nonce=ATTEST_NONCE, now=NOW)
    out["template"] = _template_vectors(policy_bytes, enclave, parties, existing)
    out["http"] = http_vector(out)
    assert tuple(out) == FILES
    return out


def _witness_vectors(policy_bytes: bytes, enclave: EnclaveKeys, parties: Mapping[str, PartyKeys],
                     uploads: Sequence[Mapping[str, Any]], existing: Mapping[str, Any]) -> dict[str, Any]:
    """A free-form plan query under witness mode: request, proposal, approvals, rows, budget."""
    text = policy_bytes.decode()
    for old, new in WITNESS_POLICY_EDITS:
        assert old in text
        text = text.replace(old, new, 1)
    witness_bytes = text.encode()
    policy = parse_policy(witness_bytes)
    node = _Enclave(witness_bytes, enclave)
    stored = {u.get("dataset"): u for u in existing.get("witness", {}).get("uploads", [])
              if isinstance(u, dict)}
    witness_uploads = []
    for upload in uploads:  # the same rows, uploaded again under this policy's hash
        dataset = policy.dataset(upload["dataset"])
        assert dataset is not None
        rows = IMPRESSIONS if dataset.name == "impressions" else CONVERSIONS
        witness_uploads.append(_upload_vector(stored.get(dataset.name), parties[dataset.owner], policy,
                                              dataset, enclave, rows))
        node.upload(witness_uploads[-1])
    fields = {"party": "advertiser", "analysis": "", "params": {}, "nonce": PLAN_NONCE,
              "plan": PLAN, "sql": PLAN_SQL}
    request, signature = _request("query_request", fields, parties["advertiser"], QUERY_LABEL, policy)
    proposed = node.call("query", {"request": request, "signature": signature})[2]
    proposal = proposed["proposal"]
    approvals = {p: parties[p].sign(APPROVAL_LABEL, proposal) for p in PARTIES}
    answer = node.call("query", {"request": request, "signature": signature, "approvals": approvals})[2]
    sealed = answer["results"]["advertiser"]
    info = result_hpke_info(policy.collaboration_id, answer["query_id"], "advertiser")
    opened = HPKE_SUITE.decrypt(sealed, parties["advertiser"].result_key, info=info)
    result = unpack_document("signed", opened)
    budget = node.call("budget", {})[2]
    return {
        "description": "Witness mode and a free-form plan: the advertiser's signed plan query, the "
                       "enclave-signed charge_proposal (label charge-proposal), each owner's approval "
                       "(Ed25519 over APPROVAL_LABEL || proposal), the released rows (randomness "
                       "seeded by the proposal, so they are reproducible) and the budget_status.",
        "policy": {"text": text, "policy_hash": policy.hash.hex()},
        # Only what reproduces the uploads (their HPKE wraps); their layout is that of upload.json.
        "uploads": [{k: u[k] for k in ("party", "dataset", "data_key", "data_key_wrap")}
                    for u in witness_uploads],
        "query_request": _signed_document("query_request", request, QUERY_LABEL, signature),
        "proposal": _signed_document("charge_proposal", proposal, PROPOSAL_LABEL, proposed["signature"]),
        "approvals": {p: sig.hex() for p, sig in approvals.items()},
        "result": _signed_document("result", result["body"], RESULT_LABEL, result["signature"]),
        "budget_status": _signed_document("budget_status", budget["status"], BUDGET_LABEL,
                                          budget["signature"]),
    }


def _template_vectors(policy_bytes: bytes, enclave: EnclaveKeys, parties: Mapping[str, PartyKeys],
                      existing: Mapping[str, Any]) -> dict[str, Any]:
    """A query naming a policy template: its request, the plan the enclave makes of it, the result."""
    text = policy_bytes.decode()
    for old, new in TEMPLATE_POLICY_EDITS:
        assert old in text
        text = text.replace(old, new, 1)
    text += TEMPLATE_TOML
    template_bytes = text.encode()
    policy = parse_policy(template_bytes)
    node = _Enclave(template_bytes, enclave)
    stored = existing.get("template", {})
    stored_uploads = {u.get("dataset"): u for u in stored.get("uploads", []) if isinstance(u, dict)}
    uploads = []
    for dataset in policy.datasets:
        rows = IMPRESSIONS if dataset.name == "impressions" else CONVERSIONS
        uploads.append(_upload_vector(stored_uploads.get(dataset.name), parties[dataset.owner], policy,
                                      dataset, enclave, rows))
        node.upload(uploads[-1])
    keys = parties[TEMPLATE_QUERY["party"]]
    request, signature = _request("query_request", TEMPLATE_QUERY, keys, QUERY_LABEL, policy)
    answer = node.call("query", {"request": request, "signature": signature})[2]
    template = policy.template(TEMPLATE_QUERY["analysis"])
    assert template is not None
    recipient = template.recipients[0]
    sealed = answer["results"][recipient]
    info = result_hpke_info(policy.collaboration_id, answer["query_id"], recipient)
    opened = HPKE_SUITE.decrypt(sealed, parties[recipient].result_key, info=info)
    result = unpack_document("signed", opened)
    return {
        "description": "A query naming a policy template (analysis = the template id, params = its "
                       "parameters' values): the plan the enclave instantiates from it, and the signed "
                       "result, whose last row (nil group keys) is the converters with no impression.",
        "policy": {"text": text, "policy_hash": policy.hash.hex()},
        "uploads": [{k: u[k] for k in ("party", "dataset", "data_key", "data_key_wrap")} for u in uploads],
        "query_request": {"signer": keys.party_id,
                          **_signed_document("query_request", request, QUERY_LABEL, signature)},
        "instantiated_plan": to_json(instantiate(template, TEMPLATE_QUERY["params"])),
        "result": _signed_document("result", result["body"], RESULT_LABEL, result["signature"]),
        "sealed": {"recipient": recipient, **_decrypt_vector(
            stored.get("sealed"), sealed, parties[recipient].result_key, parties[recipient].result_public,
            info, opened)},
    }


def _existing(directory: Path) -> dict[str, Any]:
    found = {}
    for name in FILES:
        try:
            found[name] = load(name, directory)
        except (OSError, ValueError):
            continue
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vectors.generate",
                                     description="Regenerate the golden wire vectors.")
    parser.add_argument("--out", type=Path, default=VECTOR_DIR,
                        help="directory to read the stored vectors from and write them to")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    files = {f"{name}.json": dump(doc) for name, doc in build(_existing(args.out)).items()}
    changed = [name for name, text in files.items()
               if not (args.out / name).exists() or (args.out / name).read_text(encoding="utf-8") != text]
    if args.check:
        for name in changed:
            print(f"would change: {args.out / name}", file=sys.stderr)
        return 1 if changed else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in changed:
        (args.out / name).write_text(files[name], encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
