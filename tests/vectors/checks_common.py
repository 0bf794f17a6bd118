"""What the checks of every vector file share: strict comparison, the fixed keys and policy, and
the two shapes that recur in the files, a signed document and an HPKE decrypt vector.

Only ``protocol/`` and plain ``cryptography`` primitives (what another implementation would use).
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.crypto import HPKE_SUITE
from protocol.policy import Policy, parse_policy
from protocol.wire import pack_document, unpack_document
from tests.vectors.loader import HPKE_SUITE_NAME, from_json, h

__all__ = [
    "Vectors",
    "assert_same",
    "check_decrypt_vector",
    "check_signed_document",
    "enclave_of",
    "head_on_chain",
    "parsed_policy",
    "party_of",
    "policy_of",
]

Vectors = dict[str, dict[str, Any]]


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
def parsed_policy(text: str) -> Policy:
    return parse_policy(text.encode("utf-8"))


def policy_of(v: Vectors) -> Policy:
    return parsed_policy(v["policy"]["text"])


def enclave_of(v: Vectors) -> dict[str, str]:
    return v["keys"]["enclave"]


def party_of(v: Vectors, party: str) -> dict[str, str]:
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


def head_on_chain(head: dict[str, Any], v: Vectors) -> None:
    """An ``audit_head`` names an entry of audit.json: its seq and its entry_hash."""
    entries = v["audit"]["entries"]
    assert set(head) == {"seq", "hash"} and 1 <= head["seq"] <= len(entries)
    assert head["hash"] == h(entries[head["seq"] - 1]["entry_hash"])
