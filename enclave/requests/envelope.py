"""Open a party's encrypted upload (docs/design.md): signed header, HPKE-wrapped key, GCM chunks.

Every way a ciphertext can fail to authenticate (wrong enclave key, bad tag, a chunk dropped,
reordered, spliced from another upload, or the stream cut short) surfaces as the single
``DecryptionFailed``; callers learn nothing about which check failed.

The upload digest (``protocol.upload.UploadDigest``) is built from one SHA-256 per chunk. Those
are computed on a hashing thread (hashlib releases the GIL), so hashing chunk ``i`` runs on
another core while chunk ``i + 1`` is decrypted and appended: SHA-256 is the slowest step of
ingest, and in line with decryption it alone bounded it.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave.state.keys import EnclaveKeys
from protocol.crypto import DATA_KEY_BYTES, HPKE_SUITE, UPLOAD_HEADER_LABEL, upload_key_hpke_info
from protocol.errors import (
    AuthenticationFailed,
    DecryptionFailed,
    InvalidInput,
    PolicyViolation,
    ProtocolError,
)
from protocol.policy import Dataset, Policy
from protocol.upload import (
    CHUNK_MAX_PLAINTEXT,
    CHUNK_MIN_PLAINTEXT,
    UploadDigest,
    check_skipped,
    chunk_aad,
    chunk_hash,
    chunk_nonce,
)
from protocol.wire import unpack_document

__all__ = ["UploadOpener", "verify_party_signature"]

_TAG_BYTES = 16
# One hashing thread: with the frame loop it keeps two cores busy, and it fits the manifest's
# thread budget (sgx.max_threads = 8: frame loop, the join's sort thread, this one, BLAS and
# Gramine's four helpers; an idle pool thread still holds a TCS). Two would need max_threads 9+.
_HASH_THREADS = 1
_MAX_PENDING = 4  # chunks hashed ahead: bounds the ciphertext held to 4 chunks (<= 32 MiB)
_hashers: ThreadPoolExecutor | None = None
_hashers_lock = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    """One pool for the enclave process, started on the first upload."""
    global _hashers
    with _hashers_lock:
        if _hashers is None:
            _hashers = ThreadPoolExecutor(max_workers=_HASH_THREADS, thread_name_prefix="chunk-hash")
        return _hashers


def verify_party_signature(policy: Policy, party_id: str, label: bytes, body: bytes,
                           signature: bytes) -> None:
    party = policy.party(party_id)
    if party is None:
        raise AuthenticationFailed("the request names a party the policy does not know")
    try:
        Ed25519PublicKey.from_public_bytes(party.signing_key).verify(signature, label + body)
    except InvalidSignature:
        raise AuthenticationFailed() from None


class UploadOpener:
    """Checks an upload header, unwraps its data key, then decrypts chunks strictly in order."""

    def __init__(self, header_bytes: bytes, signature: bytes, *, policy: Policy,
                 keys: EnclaveKeys) -> None:
        header = unpack_document("upload_header", header_bytes)
        verify_party_signature(policy, header["party"], UPLOAD_HEADER_LABEL, header_bytes, signature)
        self.header: dict[str, Any] = header
        self.upload_id: bytes = header["upload_id"]
        self.dataset: Dataset = _dataset_for(policy, header)
        self._chunk_size = header["chunk_size"]
        self._header_bytes = header_bytes
        info = upload_key_hpke_info(policy.collaboration_id, policy.hash, header["party"], header["dataset"])
        try:
            data_key = HPKE_SUITE.decrypt(header["hpke_enc"], keys.encryption, info=info)
        except Exception:  # every unwrap failure is the same answer, whatever its cause
            raise DecryptionFailed() from None
        if len(data_key) != DATA_KEY_BYTES:
            raise DecryptionFailed()
        self._aead = AESGCM(data_key)
        self._buffer = bytearray(self._chunk_size)
        self._next_index = 0
        self.finished = False
        self._digest = UploadDigest(header_bytes, signature)
        self._pending: deque[Future[bytes]] = deque()

    def open_chunk(self, last: bool, ciphertext: bytes) -> memoryview:
        """Decrypt the next chunk into the upload's reused buffer and return a view of it.

        The enclave's own counter, not the host's, picks the nonce. The view is valid until the
        next call: callers copy what they keep (``ColumnarTable.append`` does), so one upload
        holds one chunk of plaintext at a time and never allocates per chunk.
        """
        if self.finished or not _TAG_BYTES <= len(ciphertext) <= self._chunk_size + _TAG_BYTES:
            raise DecryptionFailed()
        index = self._next_index
        # Hashed on the pool while this thread decrypts; ``ciphertext`` is immutable bytes.
        self._pending.append(_hash_pool().submit(chunk_hash, last, ciphertext))
        while len(self._pending) > _MAX_PENDING:
            self._digest.add_chunk_hash(self._pending.popleft().result())
        plaintext = memoryview(self._buffer)[: len(ciphertext) - _TAG_BYTES]
        try:
            self._aead.decrypt_into(
                chunk_nonce(index), ciphertext, chunk_aad(self._header_bytes, index, last), plaintext
            )
        except InvalidTag:
            raise DecryptionFailed() from None
        self._next_index += 1
        self.finished = last
        return plaintext

    def digest(self) -> bytes:
        """The upload digest over every chunk opened so far (waits for their hashes)."""
        while self._pending:
            self._digest.add_chunk_hash(self._pending.popleft().result())
        return self._digest.digest()


def _dataset_for(policy: Policy, header: dict[str, Any]) -> Dataset:
    if header["collaboration_id"] != policy.collaboration_id or header["policy_hash"] != policy.hash:
        raise PolicyViolation("the upload was made for another collaboration or policy")
    dataset = policy.dataset(header["dataset"])
    if dataset is None or dataset.owner != header["party"]:
        raise PolicyViolation("the party may not upload to this dataset")
    schema = header["schema"]
    if not all(isinstance(c, list) and len(c) == 2 for c in schema):
        raise ProtocolError("upload_header: schema must be a list of [name, kind] pairs")
    if [tuple(c) for c in schema] != list(dataset.schema()):
        raise InvalidInput(f"the upload's columns do not match dataset {dataset.name!r} of the policy")
    if not CHUNK_MIN_PLAINTEXT <= header["chunk_size"] <= CHUNK_MAX_PLAINTEXT:
        raise ProtocolError("upload_header: chunk_size out of range")
    if "skipped" in header:
        check_skipped(header["skipped"], dataset.schema())
    return dataset
