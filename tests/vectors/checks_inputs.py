"""Checks of the session's fixed inputs: ``keys.json``, ``policy.json``, ``report_data.json`` and
``requests.json`` (the signed query and deletion requests).

Each check re-encodes the file's inputs and compares with the stored bytes, then decodes and
verifies the stored bytes and compares with the stored inputs.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.crypto import DELETE_LABEL, QUERY_LABEL
from protocol.report_data import DOMAIN, policy_hash, report_data
from tests.vectors.checks_common import Vectors, check_signed_document, enclave_of, party_of, policy_of
from tests.vectors.loader import h

__all__ = ["check_keys", "check_policy", "check_report_data", "check_requests"]


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
    policy = policy_of(v)
    assert policy.hash == h(v["policy"]["policy_hash"])
    assert [p.id for p in policy.parties] == list(v["keys"]["parties"])
    for party in policy.parties:
        keys = party_of(v, party.id)
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
        assert vec["enc_pub"] == enclave_of(v)["x25519_public"]
        assert vec["sig_pub"] == enclave_of(v)["ed25519_public"]
        assert vec["policy_hash"] == v["policy"]["policy_hash"]


def check_requests(v: Vectors) -> None:
    policy = policy_of(v)
    for kind, label in (("query_request", QUERY_LABEL), ("delete_request", DELETE_LABEL)):
        entry = v["requests"][kind]
        keys = party_of(v, entry["signer"])
        assert entry["signing_seed"] == keys["ed25519_seed"]
        assert entry["signing_public"] == keys["ed25519_public"]
        fields = check_signed_document(kind, entry, label, {"ed25519_seed": entry["signing_seed"],
                                                            "ed25519_public": entry["signing_public"]})
        assert fields["party"] == entry["signer"]
        assert fields["collaboration_id"] == policy.collaboration_id and fields["policy_hash"] == policy.hash
        assert hashlib.sha256(h(entry["bytes"])).digest() == h(entry["request_id"])
