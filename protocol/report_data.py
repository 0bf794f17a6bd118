"""REPORTDATA: the 64 bytes an enclave quote carries to bind its keys and policy (docs/design.md).

``SHA-512("cleanroom/report-data/v1" || enc_pub || sig_pub || policy_hash || nonce32)``

Every input has a fixed length, so plain concatenation is unambiguous. Stdlib only: this module
runs inside the enclave and in every verifier.
"""

from __future__ import annotations

import hashlib

__all__ = ["DOMAIN", "NONCE_SIZE", "REPORT_DATA_SIZE", "ZERO_NONCE", "policy_hash", "report_data"]

DOMAIN = b"cleanroom/report-data/v1"
REPORT_DATA_SIZE = 64
NONCE_SIZE = 32
ZERO_NONCE = bytes(NONCE_SIZE)  # the long-lived quote; a verifier's fresh nonce replaces it


def _check(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes")
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")


def policy_hash(policy_bytes: bytes) -> bytes:
    """SHA-256 of the exact policy document bytes, as every party computes it."""
    if not isinstance(policy_bytes, bytes | bytearray | memoryview):
        raise TypeError("policy_bytes must be bytes")
    return hashlib.sha256(policy_bytes).digest()


def report_data(enc_pub: bytes, sig_pub: bytes, policy_hash: bytes, nonce: bytes = ZERO_NONCE) -> bytes:
    """The 64-byte REPORTDATA for an enclave's X25519 and Ed25519 public keys.

    :raise ValueError: an input has the wrong length (keys, hash and nonce are 32 bytes each).
    """
    _check("enc_pub", enc_pub, 32)
    _check("sig_pub", sig_pub, 32)
    _check("policy_hash", policy_hash, 32)
    _check("nonce", nonce, NONCE_SIZE)
    h = hashlib.sha512(DOMAIN)
    for part in (enc_pub, sig_pub, policy_hash, nonce):
        h.update(part)
    return h.digest()
