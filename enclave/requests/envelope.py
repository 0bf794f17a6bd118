"""Open a party's encrypted upload (docs/design.md): signed header, HPKE-wrapped key, GCM chunks.

Every way a ciphertext can fail to authenticate (wrong enclave key, bad tag, a chunk dropped,
reordered, spliced from another upload, or the stream cut short) surfaces as the single
``DecryptionFailed``; callers learn nothing about which check failed.
"""

from __future__ import annotations

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
    chunk_aad,
    chunk_nonce,
    upload_digest_init,
)
from protocol.wire import unpack_document

__all__ = ["UploadOpener", "verify_party_signature"]

_TAG_BYTES = 16


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
        self._digest = upload_digest_init(header_bytes, signature)

    def open_chunk(self, last: bool, ciphertext: bytes) -> memoryview:
        """Decrypt the next chunk into the upload's reused buffer and return a view of it.

        The enclave's own counter, not the host's, picks the nonce. The view is valid until the
        next call: callers copy what they keep (``ColumnarTable.append`` does), so one upload
        holds one chunk of plaintext at a time and never allocates per chunk.
        """
        if self.finished or not _TAG_BYTES <= len(ciphertext) <= self._chunk_size + _TAG_BYTES:
            raise DecryptionFailed()
        index = self._next_index
        plaintext = memoryview(self._buffer)[: len(ciphertext) - _TAG_BYTES]
        try:
            self._aead.decrypt_into(
                chunk_nonce(index), ciphertext, chunk_aad(self._header_bytes, index, last), plaintext
            )
        except InvalidTag:
            raise DecryptionFailed() from None
        self._next_index += 1
        self.finished = last
        self._digest.update(b"\x01" if last else b"\x00")
        self._digest.update(ciphertext)
        return plaintext

    def digest(self) -> bytes:
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
    return dataset
