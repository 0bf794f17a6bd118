"""Seal the enclave's small state (keys, accepted uploads, ledger, seen requests) to bytes.

Pure crypto: ``enclave/__main__.py`` reads the key and writes the bytes. The sealing key is
derived with HKDF from a 16-byte root: under SGX the MRENCLAVE-bound key Gramine exposes at
``/dev/attestation/keys/_sgx_mrenclave``; in simulation and gramine-direct a random key file
that is plainly marked insecure (anyone with the host's disk can read it). The root key is never
used directly, as Gramine advises, so the encrypted mount and this envelope use different keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.errors import StateError

__all__ = ["SEALED_STATE_VERSION", "derive_sealing_key", "seal", "unseal"]

SEALED_STATE_VERSION = 1
_AAD = b"cleanroom/v1/sealed-state"
_NONCE_BYTES = 12


def derive_sealing_key(root_key: bytes) -> bytes:
    if len(root_key) < 16:
        raise StateError("sealing root key is too short")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cleanroom/v1/state-seal")
    return hkdf.derive(root_key)


def seal(state: dict[str, Any], key: bytes, *, random_bytes: Callable[[int], bytes]) -> bytes:
    """Encrypt ``state`` under ``key``; ``random_bytes`` (the session's CSPRNG) picks the nonce."""
    body = msgpack.packb({"version": SEALED_STATE_VERSION, "state": state}, use_bin_type=True)
    nonce = random_bytes(_NONCE_BYTES)
    if len(nonce) != _NONCE_BYTES:
        raise StateError("random source returned the wrong number of bytes")
    return nonce + AESGCM(key).encrypt(nonce, body, _AAD)


def unseal(blob: bytes, key: bytes) -> dict[str, Any]:
    try:
        body = AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _AAD)
        doc = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (InvalidTag, ValueError, msgpack.UnpackException) as exc:
        raise StateError("sealed state did not authenticate") from exc
    if not isinstance(doc, dict) or doc.get("version") != SEALED_STATE_VERSION:
        raise StateError("sealed state has an unsupported version")
    state = doc.get("state")
    if not isinstance(state, dict):
        raise StateError("sealed state is malformed")
    return state
