"""The JSON forms every vector family writes: an HPKE decrypt vector, a signed document, and a
signed party request.

HPKE draws its ephemeral key inside ``cryptography``, so an HPKE ciphertext is a *decrypt*
vector: ``decrypt_vector`` keeps the stored ciphertext while it still decrypts to the same
plaintext under the same key and ``info``, and only otherwise stores the fresh one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cleanroom.keys import PartyKeys
from protocol.crypto import HPKE_SUITE
from protocol.policy import Policy
from protocol.wire import pack_document, unpack_document
from tests.vectors.generate_fixtures import NOW
from tests.vectors.loader import HPKE_SUITE_NAME, h, to_json

__all__ = ["decrypt_vector", "signed_document", "signed_request"]

_ENC_BYTES = 32  # DHKEM(X25519) enc


def _opens(vector: Any, private: X25519PrivateKey, info: bytes, plaintext: bytes) -> bool:
    """Whether a stored decrypt vector still opens to ``plaintext`` under this key and info."""
    try:
        sealed = h(vector["enc"]) + h(vector["ciphertext"])
        return HPKE_SUITE.decrypt(sealed, private, info=info) == plaintext
    except Exception:  # a missing, malformed or stale vector is simply replaced
        return False


def decrypt_vector(stored: Any, fresh: bytes, private: X25519PrivateKey, public: bytes,
                   info: bytes, plaintext: bytes) -> dict[str, str]:
    """The stored ciphertext if it still opens, else the fresh one (``enc || ciphertext``)."""
    if not _opens(stored, private, info, plaintext):
        assert HPKE_SUITE.decrypt(fresh, private, info=info) == plaintext
        stored = {"enc": fresh[:_ENC_BYTES].hex(), "ciphertext": fresh[_ENC_BYTES:].hex()}
    return {"suite": HPKE_SUITE_NAME, "recipient_private": private.private_bytes_raw().hex(),
            "recipient_public": public.hex(), "info": info.hex(), "enc": stored["enc"],
            "ciphertext": stored["ciphertext"], "plaintext": plaintext.hex()}


def signed_document(kind: str, body: bytes, label: bytes, signature: bytes) -> dict[str, Any]:
    return {"document": to_json(unpack_document(kind, body)), "bytes": body.hex(),
            "label": label.hex(), "signature": signature.hex()}


def signed_request(kind: str, fields: Mapping[str, Any], keys: PartyKeys, label: bytes,
                   policy: Policy) -> tuple[bytes, bytes]:
    """A signed party request, built as ``cleanroom.client.Client`` builds it (nonce given)."""
    body = pack_document(kind, {"collaboration_id": policy.collaboration_id,
                                "policy_hash": policy.hash, **fields, "issued_at": NOW})
    return body, keys.sign(label, body)
