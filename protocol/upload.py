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

The upload digest (v2) is SHA-256 over the header, its signature and the SHA-256 of each chunk
record's payload in order (``UploadDigest``). Hashing each chunk on its own lets the enclave hash
chunks on its other cores while it decrypts the next one: with one running SHA-256 over every
ciphertext byte, the digest alone bounded ingest at SHA-256's single-core speed.

An upload that skipped invalid rows says how many, per schema column, in the signed header's
``skipped`` map (``check_skipped``); the enclave copies it into the receipt.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any

from protocol.errors import ProtocolError

__all__ = [
    "CHUNK_MAX_PLAINTEXT",
    "CHUNK_MIN_PLAINTEXT",
    "DIGEST_DOMAIN",
    "RECORD_HEADER",
    "UploadDigest",
    "check_skipped",
    "chunk_aad",
    "chunk_hash",
    "chunk_nonce",
    "encode_record",
]

DIGEST_DOMAIN = b"cleanroom/v2/upload-digest\x00"

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


def chunk_hash(last: bool, ciphertext: bytes | memoryview) -> bytes:
    """SHA-256 of one chunk record's payload: the flag byte, then the ciphertext (with its tag).

    hashlib releases the GIL for large inputs, so callers may compute this on several threads.
    """
    digest = hashlib.sha256(b"\x01" if last else b"\x00")
    digest.update(ciphertext)
    return digest.digest()


class UploadDigest:
    """The upload digest: SHA-256(domain || u32 len(header) || header || signature || h_0 || h_1 ...)
    where ``h_i = chunk_hash(last_i, ciphertext_i)``, in chunk order.

    Both the enclave (for its receipt) and the host (for its stored copy) compute it, so a
    stored ciphertext can later be matched to the receipt that acknowledged it. Every h_i is a
    full SHA-256 of its chunk, so the digest still binds every ciphertext byte.
    """

    def __init__(self, header_bytes: bytes, signature: bytes) -> None:
        self._digest = hashlib.sha256(DIGEST_DOMAIN)
        self._digest.update(len(header_bytes).to_bytes(4, "big") + header_bytes + signature)
        self.chunks = 0

    def add_chunk_hash(self, hashed: bytes) -> None:
        """Add the next chunk's ``chunk_hash`` (computed wherever the caller likes)."""
        if len(hashed) != 32:
            raise ValueError("a chunk hash is 32 bytes")
        self._digest.update(hashed)
        self.chunks += 1

    def update(self, last: bool, ciphertext: bytes | memoryview) -> None:
        """Hash the next chunk here and add it."""
        self.add_chunk_hash(chunk_hash(last, ciphertext))

    def digest(self) -> bytes:
        return self._digest.digest()


def check_skipped(skipped: Any, schema: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The header's ``skipped`` map: schema column name -> rows the party left out for that column.

    :raise ProtocolError: not a map of known column names to non-negative counts.
    """
    if not isinstance(skipped, dict):
        raise ProtocolError("upload_header: skipped must be a map")
    names = {name for name, _ in schema}
    for name, count in skipped.items():
        if name not in names or type(count) is not int or not 0 <= count < 2**63:
            raise ProtocolError("upload_header: skipped must map schema columns to row counts")
    return dict(skipped)
