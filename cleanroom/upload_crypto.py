"""Encrypt one upload into the HTTP record stream of ``protocol/upload.py`` (docs/design.md).

A fresh 256-bit data key encrypts the plaintext batches as AES-256-GCM chunks; the key itself is
HPKE-wrapped to the enclave's attested ``enc_pub`` and travels in the signed upload header, so
only that enclave can read the data and the host cannot substitute or splice an upload.

``UploadEncryptor.records(batches)`` is a generator: it holds one batch of plaintext and one of
ciphertext at a time (one batch of look-ahead decides the last-chunk flag), so a large file never
sits in memory. The running upload digest is the one the enclave puts in its receipt.

Randomness and the clock are read only as defaults: ``upload_id``, ``data_key`` and ``now`` can
be passed in, so an upload can be reproduced. Chunk nonces are the chunk counter (no randomness).
The one value that cannot be reproduced is HPKE's ephemeral key: cryptography's HPKE
(``Suite.encrypt``) generates it internally and its public API takes no ephemeral key. It shows
as ``hpke_enc`` in the header, so with equal injected values two runs differ only there and in
what covers the header bytes: the header signature and each chunk's GCM tag (the chunk AAD
binds SHA-256 of the header). The chunk ciphertexts themselves are identical.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cleanroom.keys import PartyKeys
from protocol.crypto import DATA_KEY_BYTES, HPKE_SUITE, UPLOAD_HEADER_LABEL, upload_key_hpke_info
from protocol.errors import InvalidInput
from protocol.policy import Dataset, Policy
from protocol.upload import (
    CHUNK_MAX_PLAINTEXT,
    CHUNK_MIN_PLAINTEXT,
    UploadDigest,
    check_skipped,
    chunk_aad,
    chunk_nonce,
    encode_record,
)
from protocol.wire import canonical_packb, pack_document

__all__ = ["DEFAULT_CHUNK_SIZE", "IDEMPOTENCY_KEY_BYTES", "UPLOAD_ID_BYTES", "UPLOAD_MODES",
           "UploadEncryptor"]

DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
UPLOAD_ID_BYTES = 16  # the upload header's ``upload_id`` (protocol.wire)
IDEMPOTENCY_KEY_BYTES = 16  # the upload header's ``idempotency_key``
UPLOAD_MODES = ("create", "append", "replace")


class UploadEncryptor:
    """One upload: a fresh data key, its signed header, and the encrypted chunk records.

    Args:
        keys: the uploading party's keys (signs the header).
        policy: the agreed policy (collaboration id and hash go into the header and HPKE info).
        dataset: the policy dataset being uploaded; ``keys.party_id`` must own it.
        enc_pub: the enclave's X25519 key, pinned from a verified attestation.
        chunk_size: maximum plaintext bytes per chunk (``protocol.upload`` bounds; the CLI
            offers 1 to 8 MiB).
        now: unix time for ``created_at`` (default: the clock).
        rows_hint: about how many rows will follow, so the enclave sizes its columns once.
        upload_id: the 16-byte upload id (default: ``os.urandom``). Never reuse one.
        data_key: the 32-byte AES-256-GCM data key (default: ``os.urandom``). Never reuse one:
            it is what keeps two uploads' chunk nonces (the counter) apart.
        mode: ``create`` (refused if the dataset already has uploads), ``append`` or ``replace``
            (the dataset's earlier uploads are deleted when this one commits).
        idempotency_key: 16 bytes (default: the upload id, so no two uploads share one); a retry
            that sends the key of an upload the enclave already committed gets that upload's
            receipt, and stores nothing.
        skipped: rows the party left out as invalid, per schema column (``--skip-invalid``);
            signed into the header so that the enclave's receipt states them.
    """

    def __init__(
        self,
        keys: PartyKeys,
        policy: Policy,
        dataset: Dataset,
        enc_pub: bytes,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        now: int | None = None,
        rows_hint: int | None = None,
        upload_id: bytes | None = None,
        data_key: bytes | None = None,
        mode: str = "create",
        idempotency_key: bytes | None = None,
        skipped: dict[str, int] | None = None,
    ) -> None:
        if not CHUNK_MIN_PLAINTEXT <= chunk_size <= CHUNK_MAX_PLAINTEXT:
            raise InvalidInput(f"chunk size must be between {CHUNK_MIN_PLAINTEXT} and "
                               f"{CHUNK_MAX_PLAINTEXT} bytes")
        if dataset.owner != keys.party_id:
            raise InvalidInput(f"dataset {dataset.name!r} belongs to party {dataset.owner!r}, "
                               f"not {keys.party_id!r}")
        upload_id = os.urandom(UPLOAD_ID_BYTES) if upload_id is None else upload_id
        data_key = os.urandom(DATA_KEY_BYTES) if data_key is None else data_key
        if not isinstance(upload_id, bytes) or len(upload_id) != UPLOAD_ID_BYTES:
            raise InvalidInput(f"upload_id must be {UPLOAD_ID_BYTES} bytes")
        if not isinstance(data_key, bytes) or len(data_key) != DATA_KEY_BYTES:
            raise InvalidInput(f"data_key must be {DATA_KEY_BYTES} bytes")
        if mode not in UPLOAD_MODES:
            raise InvalidInput("the upload mode must be one of " + ", ".join(UPLOAD_MODES))
        idempotency_key = upload_id if idempotency_key is None else idempotency_key
        if not isinstance(idempotency_key, bytes) or len(idempotency_key) != IDEMPOTENCY_KEY_BYTES:
            raise InvalidInput(f"idempotency_key must be {IDEMPOTENCY_KEY_BYTES} bytes")
        self.mode = mode
        self.idempotency_key = idempotency_key
        self.chunk_size = chunk_size
        self.upload_id = upload_id
        # HPKE draws its own ephemeral key here (not injectable through cryptography's public
        # API), so ``hpke_enc`` differs between runs even with the same data key.
        wrapped = HPKE_SUITE.encrypt(
            data_key,
            x25519.X25519PublicKey.from_public_bytes(enc_pub),
            info=upload_key_hpke_info(policy.collaboration_id, policy.hash, keys.party_id, dataset.name),
        )
        self.header = {
            "collaboration_id": policy.collaboration_id,
            "policy_hash": policy.hash,
            "party": keys.party_id,
            "dataset": dataset.name,
            "upload_id": self.upload_id,
            "created_at": int(time.time()) if now is None else now,
            "hpke_enc": wrapped,
            "chunk_size": chunk_size,
            "schema": [[name, kind] for name, kind in dataset.schema()],
            "mode": mode,
            "idempotency_key": idempotency_key,
        }
        if rows_hint is not None:
            self.header["rows_hint"] = rows_hint
        if skipped is not None:
            self.header["skipped"] = check_skipped(skipped, dataset.schema())
        self.header_bytes = pack_document("upload_header", self.header)
        self.signature = keys.sign(UPLOAD_HEADER_LABEL, self.header_bytes)
        self._aead: AESGCM | None = AESGCM(data_key)
        self._digest = UploadDigest(self.header_bytes, self.signature)
        self.chunks = 0
        self.plaintext_bytes = 0
        self.sent_bytes = 0
        self.finished = False

    @property
    def digest(self) -> bytes:
        """The upload digest (as in the enclave's receipt); valid once ``records`` is exhausted."""
        if not self.finished:
            raise RuntimeError("the upload has not been fully produced yet")
        return self._digest.digest()

    def records(self, batches: Iterable[bytes]) -> Iterator[bytes]:
        """Yield the HTTP body: the header record, then one record per encrypted batch.

        :raise InvalidInput: no batch at all (an empty dataset), or a batch over ``chunk_size``.
        """
        if self._aead is None:
            raise RuntimeError("an UploadEncryptor produces its records only once")
        aead, self._aead = self._aead, None  # a data key must never encrypt two streams
        head = encode_record(canonical_packb({"header": self.header_bytes, "signature": self.signature}))
        self.sent_bytes += len(head)
        yield head
        iterator = iter(batches)
        pending = next(iterator, None)
        if pending is None:
            raise InvalidInput("the dataset has no rows; nothing to upload")
        index = 0
        while pending is not None:
            following = next(iterator, None)
            last = following is None
            if len(pending) > self.chunk_size:
                raise InvalidInput("a batch is larger than the upload's chunk size")
            ciphertext = aead.encrypt(chunk_nonce(index), pending,
                                      chunk_aad(self.header_bytes, index, last))
            self._digest.update(last, ciphertext)
            payload = (b"\x01" if last else b"\x00") + ciphertext
            self.plaintext_bytes += len(pending)
            record = encode_record(payload)
            self.sent_bytes += len(record)
            self.chunks = index + 1
            if last:
                self.finished = True
            yield record
            pending, index = following, index + 1

