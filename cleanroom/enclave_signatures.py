"""The two checks every enclave-signed document gets: the pinned key signed it, and it is ours.

Every enclave output is checked against the enclave key pinned from a verified attestation
(``VerifiedEnclave.sig_pub``), never against a key the host hands over alongside the output.
The signature is Ed25519 over ``LABEL || body`` (``protocol.crypto``), so a signature made for
one purpose never verifies for another; the body must then name this collaboration and policy.
"""

from __future__ import annotations

import hmac
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.errors import AuthenticationFailed
from protocol.policy import Policy

__all__ = ["check_bound_to_policy", "check_enclave_signature"]


def check_enclave_signature(sig_pub: bytes, label: bytes, body: bytes, signature: bytes,
                            what: str) -> None:
    """:raise AuthenticationFailed: ``signature`` is not the pinned enclave key's over ``label || body``."""
    try:
        Ed25519PublicKey.from_public_bytes(sig_pub).verify(signature, label + body)
    except InvalidSignature:
        raise AuthenticationFailed(f"{what} is not signed by the attested enclave") from None


def check_bound_to_policy(body: dict[str, Any], policy: Policy, what: str) -> None:
    """:raise AuthenticationFailed: the signed body names another collaboration or policy."""
    if body["collaboration_id"] != policy.collaboration_id:
        raise AuthenticationFailed(f"{what} belongs to another collaboration")
    if not hmac.compare_digest(body["policy_hash"], policy.hash):
        raise AuthenticationFailed(f"{what} was made under another policy")
