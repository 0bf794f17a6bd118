"""Byte layouts of an encrypted upload (docs/design.md), shared by the client and the enclave.

An upload is a signed header followed by AES-256-GCM chunks under a fresh 256-bit data key:

* the data key is wrapped with HPKE (``protocol/crypto.py``'s suite) to the enclave's attested
  ``enc_pub``; ``upload_key_hpke_info`` binds it to the collaboration, policy, party and dataset;
* the header (``protocol.wire`` document ``upload_header``) is signed by the party's Ed25519 key
  over ``UPLOAD_HEADER_LABEL || header_bytes``;
* chunk ``i`` uses nonce ``chunk_nonce(i)`` and AAD ``chunk_aad(header_bytes, i, last)``, so
  dropping, reordering, splicing chunks from another upload or cutting the stream short fails.

Over HTTP the whole upload is one body of records, each a 4-byte big-endian length then payload:
record 0 is ``msgpack {header: bytes, signature: bytes}``; every later record is one flag byte
(``1`` for the last chunk, else ``0``) followed by the chunk ciphertext. Nothing may follow the
last chunk. The host parses records one at a time and never holds a whole upload.

Plaintext chunks are columnar batches, laid out in ``protocol/batch.py``.
"""

from __future__ import annotations

import hashlib
import struct

__all__ = [
    "CHUNK_MAX_PLAINTEXT",
    "CHUNK_MIN_PLAINTEXT",
    "RECORD_HEADER",
    "chunk_aad",
    "chunk_nonce",
    "encode_record",
    "upload_digest_init",
]

CHUNK_MIN_PLAINTEXT = 4096  # small chunks only make tests and tiny uploads cheaper
CHUNK_MAX_PLAINTEXT = 8 * 1024 * 1024
RECORD_HEADER = struct.Struct(">I")

def encode_record(payload: bytes) -> bytes:
    """One record of the HTTP upload body: u32 big-endian length, then the payload."""
    return RECORD_HEADER.pack(len(payload)) + payload


def chunk_nonce(index: int) -> bytes:
    """96-bit GCM nonce: the chunk counter. Unique because every upload has a fresh key."""
    if not 0 <= index < 2**64:
        raise ValueError("chunk index out of range")
    return b"\x00\x00\x00\x00" + index.to_bytes(8, "big")


def chunk_aad(header_bytes: bytes, index: int, last: bool) -> bytes:
    """AAD = SHA-256(header) || u64 index || last flag."""
    return hashlib.sha256(header_bytes).digest() + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def upload_digest_init(header_bytes: bytes, signature: bytes) -> hashlib._Hash:
    """Running digest of an upload: header and signature; then feed it each chunk record's
    payload (flag byte + ciphertext) in order.

    Both the enclave (for its receipt) and the host (for its stored copy) compute it, so a
    stored ciphertext can later be matched to the receipt that acknowledged it.
    """
    digest = hashlib.sha256(b"cleanroom/v1/upload-digest\x00")
    digest.update(len(header_bytes).to_bytes(4, "big") + header_bytes + signature)
    return digest
