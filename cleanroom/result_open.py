"""Open a query result encrypted to this party and check the enclave's signature on it.

A result is HPKE-encrypted to its recipient's result key (``DecryptionFailed`` when it does not
open), then its Ed25519 signature over ``RESULT_LABEL || body`` is checked against the pinned
enclave key (``AuthenticationFailed``), then the body must name this collaboration, policy and
query. ``Result`` keeps the exact signed bytes, so a result can be saved and re-checked offline.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from cleanroom.enclave_signatures import check_bound_to_policy, check_enclave_signature
from cleanroom.keys import PartyKeys
from protocol.crypto import HPKE_SUITE, RESULT_LABEL, result_hpke_info
from protocol.errors import AuthenticationFailed, DecryptionFailed
from protocol.policy import Policy
from protocol.wire import unpack_document

__all__ = ["Result", "open_result", "verify_signed_result"]


@dataclass(frozen=True)
class Result:
    """A verified result: the parsed ``result`` document plus the exact signed bytes."""

    body: dict[str, Any]
    signed: bytes  # the ``signed`` document, kept verbatim for saving and offline checks

    @property
    def query_id(self) -> bytes:
        return self.body["query_id"]

    @property
    def analysis(self) -> str:
        return self.body["analysis"]

    @property
    def columns(self) -> list[str]:
        return self.body["columns"]

    @property
    def rows(self) -> list[list[Any]]:
        return self.body["rows"]

    @property
    def privacy(self) -> dict[str, Any]:
        return self.body["privacy"]

    @property
    def simulated(self) -> bool:
        return self.body["simulated"]


def verify_signed_result(signed: bytes, sig_pub: bytes, policy: Policy,
                         query_id: bytes | None = None) -> Result:
    """Check a ``signed`` result document against the pinned enclave key and the policy.

    :raise AuthenticationFailed: bad signature, or the body names another collaboration, policy
        or query. :raise ProtocolError: the bytes are not a well-formed document.
    """
    envelope = unpack_document("signed", signed)
    check_enclave_signature(sig_pub, RESULT_LABEL, envelope["body"], envelope["signature"], "the result")
    body = unpack_document("result", envelope["body"])
    check_bound_to_policy(body, policy, "the result")
    if query_id is not None and not hmac.compare_digest(body["query_id"], query_id):
        raise AuthenticationFailed("the result answers a different query")
    return Result(body, signed)


def open_result(ciphertext: bytes, keys: PartyKeys, sig_pub: bytes, policy: Policy,
                query_id: bytes) -> Result:
    """Decrypt a result encrypted to ``keys`` and verify it (see ``verify_signed_result``).

    :raise DecryptionFailed: the ciphertext does not open with this party's result key for
        this collaboration and query (tampered, or encrypted to someone else).
    """
    info = result_hpke_info(policy.collaboration_id, query_id, keys.party_id)
    try:
        signed = HPKE_SUITE.decrypt(ciphertext, keys.result_key, info=info)
    except Exception:  # every way of not opening is the same answer
        raise DecryptionFailed() from None
    return verify_signed_result(signed, sig_pub, policy, query_id)
