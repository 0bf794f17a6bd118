"""Regenerate the golden wire vectors: ``python -m tests.vectors.generate [--out DIR] [--check]``.

Every byte string comes from the project's own code: the enclave ``Session`` (driven through
real frames by ``enclave.requests.dispatch.handle_frame``, with its clock, randomness and noise
injected) makes the receipts, the result, the audit chain and REPORTDATA; ``protocol/`` builds
the documents, batches, chunk nonces, AAD, records and digests. Fixed keys come from SHA-256 of
fixed labels, the clock is ``NOW``.

Where a code path offers no way to inject a value, the generator stands in for it:

* ``enclave.requests.session.Session.init`` draws the enclave's keys with
  ``EnclaveKeys.generate()``: the fixed keys replace that class method while it runs
  (``generate_enclave``);
* ``cleanroom.upload_crypto.UploadEncryptor`` wraps the data key with HPKE itself, whose
  ephemeral key cannot be injected: ``generate_upload.build_upload`` does what it does with a
  given ``hpke_enc`` (``test_vectors.py`` checks that ``UploadEncryptor`` makes the same bytes);
* ``cleanroom.client.Client.query`` / ``.delete`` send their signed request over HTTP at once:
  the requests are built with ``pack_document`` exactly as they build them
  (``generate_documents.signed_request``).

HPKE draws its ephemeral key inside ``cryptography``, so an HPKE ciphertext is a *decrypt*
vector: the generator keeps the stored ciphertext while it still decrypts to the same plaintext
under the same key and ``info``, and only otherwise stores a fresh one. Regenerating is
therefore a no-op unless the wire bytes really changed.

This module runs the session and writes the files; its parts are ``generate_fixtures`` (the
fixed inputs), ``generate_documents`` (decrypt vectors, signed documents and requests),
``generate_upload``, ``generate_enclave``, ``generate_witness``, ``generate_template`` and
``generate_extra`` (msgpack and attestation); ``checks_http.http_vector`` makes http.json.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protocol.audit import GENESIS, entry_hash
from protocol.crypto import (
    AUDIT_LABEL,
    DELETE_LABEL,
    DELETION_RECEIPT_LABEL,
    HPKE_SUITE,
    QUERY_LABEL,
    RECEIPT_LABEL,
    RESULT_LABEL,
    result_hpke_info,
)
from protocol.policy import parse_policy
from protocol.report_data import DOMAIN, ZERO_NONCE, policy_hash, report_data
from protocol.wire import encode_frame, unpack, unpack_document
from tests.vectors.checks_http import http_vector
from tests.vectors.generate_documents import decrypt_vector, signed_document, signed_request
from tests.vectors.generate_enclave import VectorEnclave
from tests.vectors.generate_extra import build_extra
from tests.vectors.generate_fixtures import (
    ATTEST_NONCE,
    CONVERSIONS,
    DELETE,
    IMPRESSIONS,
    NOW,
    POLICY_TEMPLATE,
    QUERY,
    enclave_keys,
    hex_keys,
    party_keys,
)
from tests.vectors.generate_template import template_vectors
from tests.vectors.generate_upload import build_upload, upload_vector
from tests.vectors.generate_witness import witness_vectors
from tests.vectors.loader import FILES, VECTOR_DIR, dump, h, load, to_json

__all__ = ["NOW", "build", "build_upload", "enclave_keys", "main", "party_keys"]


def build(existing: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every vector file's content; ``existing`` (the stored files) supplies HPKE ciphertexts."""
    existing = existing or {}
    enclave, parties = enclave_keys(), party_keys()
    out: dict[str, dict[str, Any]] = {}

    out["keys"] = {
        "description": "The fixed test keys (never use them for anything else).",
        "enclave": hex_keys(enclave.encryption.private_bytes_raw(), enclave.enc_pub,
                            enclave.signing.private_bytes_raw(), enclave.sig_pub),
        "parties": {p: hex_keys(k.result_key.private_bytes_raw(), k.result_public,
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

    node = VectorEnclave(policy_bytes, enclave)
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

    query_bytes, query_sig = signed_request("query_request", QUERY, parties[QUERY["party"]],
                                            QUERY_LABEL, policy)
    delete_bytes, delete_sig = signed_request("delete_request", DELETE, parties[DELETE["party"]],
                                              DELETE_LABEL, policy)
    requests = {}
    for kind, party, body, sig in (("query_request", QUERY["party"], query_bytes, query_sig),
                                   ("delete_request", DELETE["party"], delete_bytes, delete_sig)):
        keys = parties[party]
        requests[kind] = {"signer": party, "signing_seed": keys.signing_key.private_bytes_raw().hex(),
                          "signing_public": keys.signing_public.hex(),
                          **signed_document(kind, body, QUERY_LABEL if kind == "query_request"
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
        uploads.append(upload_vector(stored_uploads.get(name), parties[dataset.owner], policy,
                                     dataset, enclave, rows))
    out["upload"] = {"description": "Encrypted uploads: header, batches, chunks, records, digest.",
                     "uploads": uploads}

    receipts, receipt_reply = [], b""
    for upload in uploads:
        reply_bytes, reply = node.upload(upload)
        receipt_reply = receipt_reply or reply_bytes
        receipts.append(signed_document("upload_receipt", reply["receipt"], RECEIPT_LABEL,
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
        sealed.append({"recipient": recipient, **decrypt_vector(
            stored_sealed.get(recipient), ciphertext, keys.result_key, keys.result_public, info, opened)})
    assert signed is not None
    envelope = unpack_document("signed", signed)
    out["result"] = {"description": "A result: signed document, sealed with HPKE to each recipient.",
                     "query_id": query_id.hex(),
                     **signed_document("result", envelope["body"], RESULT_LABEL, envelope["signature"]),
                     "signed": signed.hex(), "sealed": sealed}

    deleted = node.call("delete", {"request": delete_bytes, "signature": delete_sig})[2]
    out["receipts"] = {"description": "Enclave-signed receipts.", "upload_receipts": receipts,
                       "deletion_receipt": signed_document("deletion_receipt", deleted["receipt"],
                                                           DELETION_RECEIPT_LABEL, deleted["signature"])}
    assert node.call("audit_flush", {})[2]["audit"] == []

    entries = []
    for raw in node.audit:
        doc = unpack_document("signed", raw)
        entries.append({**signed_document("audit_entry", doc["body"], AUDIT_LABEL, doc["signature"]),
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
    out["witness"] = witness_vectors(policy_bytes, enclave, parties, uploads, existing)
    build_extra(out, existing, node.call, nonce=ATTEST_NONCE, now=NOW)
    out["template"] = template_vectors(policy_bytes, enclave, parties, existing)
    out["http"] = http_vector(out)
    assert tuple(out) == FILES
    return out


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
