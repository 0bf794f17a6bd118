"""The uploads of ``upload.json`` (and of the witness and template families): the columnar
batches of the fixed rows, and each upload exactly as ``UploadEncryptor`` makes it.

``cleanroom.upload_crypto.UploadEncryptor`` wraps the data key with HPKE itself, whose ephemeral
key cannot be injected: ``build_upload`` does what it does with a given ``hpke_enc``
(``test_vectors.py`` checks that ``UploadEncryptor`` makes the same bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cleanroom.keys import PartyKeys
from enclave.state.keys import EnclaveKeys
from protocol.batch import encode_batch
from protocol.crypto import DATA_KEY_BYTES, HPKE_SUITE, UPLOAD_HEADER_LABEL, upload_key_hpke_info
from protocol.policy import Dataset, Policy
from protocol.upload import UploadDigest, chunk_aad, chunk_nonce, encode_record
from protocol.wire import canonical_packb, pack_document
from tests.vectors.generate_documents import decrypt_vector, signed_document
from tests.vectors.generate_fixtures import CHUNK_SIZE, SKIPPED, UPLOADED_AT, fixed_seed, person_id
from tests.vectors.loader import h

__all__ = ["build_upload", "upload_vector"]


def _columns(dataset: Dataset, rows: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
    schema = dataset.schema()
    out: dict[str, np.ndarray] = {}
    for i, (name, kind) in enumerate(schema):
        values = [row[i] for row in rows]
        if kind == "id":
            out[name] = np.frombuffer(b"".join(person_id(v) for v in values), np.uint8).reshape(-1, 32)
        else:
            out[name] = np.array(values, dtype=np.uint16 if kind == "dimension" else np.int64)
    return out


def _columns_json(dataset: Dataset, columns: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    return {name: [bytes(v).hex() for v in columns[name]] if kind == "id"
            else [int(v) for v in columns[name]] for name, kind in dataset.schema()}


def build_upload(keys: PartyKeys, policy: Policy, dataset: Dataset, *, upload_id: bytes,
                 data_key: bytes, hpke_enc: bytes, created_at: int, chunk_size: int,
                 rows_hint: int | None, batches: Sequence[bytes],
                 skipped: dict[str, int] | None = None) -> dict[str, Any]:
    """One upload exactly as ``UploadEncryptor`` makes it, with its random values given."""
    header: dict[str, Any] = {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": keys.party_id, "dataset": dataset.name, "upload_id": upload_id,
        "created_at": created_at, "hpke_enc": hpke_enc, "chunk_size": chunk_size,
        "schema": [[name, kind] for name, kind in dataset.schema()],
        "mode": "create", "idempotency_key": upload_id,  # UploadEncryptor's defaults
    }
    if rows_hint is not None:
        header["rows_hint"] = rows_hint
    if skipped is not None:
        header["skipped"] = skipped
    header_bytes = pack_document("upload_header", header)
    signature = keys.sign(UPLOAD_HEADER_LABEL, header_bytes)
    aead = AESGCM(data_key)
    digest = UploadDigest(header_bytes, signature)
    head_record = encode_record(canonical_packb({"header": header_bytes, "signature": signature}))
    chunks = []
    for index, batch in enumerate(batches):
        last = index == len(batches) - 1
        nonce, aad = chunk_nonce(index), chunk_aad(header_bytes, index, last)
        ciphertext = aead.encrypt(nonce, batch, aad)
        payload = (b"\x01" if last else b"\x00") + ciphertext
        digest.add_chunk_hash(hashlib.sha256(payload).digest())
        chunks.append({"index": index, "last": last, "nonce": nonce, "aad": aad,
                       "ciphertext": ciphertext, "record": encode_record(payload)})
    return {"header_bytes": header_bytes, "signature": signature, "head_record": head_record,
            "chunks": chunks, "record_stream": head_record + b"".join(c["record"] for c in chunks),
            "digest": digest.digest()}


def upload_vector(stored: Any, keys: PartyKeys, policy: Policy, dataset: Dataset,
                  enclave: EnclaveKeys, rows: Sequence[Sequence[tuple[int, ...]]]) -> dict[str, Any]:
    upload_id = fixed_seed(f"upload/{dataset.name}/id")[:16]
    data_key = fixed_seed(f"upload/{dataset.name}/data-key")[:DATA_KEY_BYTES]
    info = upload_key_hpke_info(policy.collaboration_id, policy.hash, keys.party_id, dataset.name)
    fresh = HPKE_SUITE.encrypt(data_key, X25519PublicKey.from_public_bytes(enclave.enc_pub), info=info)
    wrap = decrypt_vector((stored or {}).get("data_key_wrap"), fresh, enclave.encryption,
                          enclave.enc_pub, info, data_key)
    columns = [_columns(dataset, batch_rows) for batch_rows in rows]
    batches = [encode_batch(c, dataset.schema()) for c in columns]
    built = build_upload(keys, policy, dataset, upload_id=upload_id, data_key=data_key,
                         hpke_enc=h(wrap["enc"]) + h(wrap["ciphertext"]), created_at=UPLOADED_AT,
                         chunk_size=CHUNK_SIZE, rows_hint=sum(len(r) for r in rows), batches=batches,
                         skipped=SKIPPED.get(dataset.name))
    return {
        "party": keys.party_id,
        "dataset": dataset.name,
        "schema": [[name, kind] for name, kind in dataset.schema()],
        "data_key": data_key.hex(),
        "data_key_wrap": wrap,
        "header": signed_document("upload_header", built["header_bytes"], UPLOAD_HEADER_LABEL,
                                  built["signature"]),
        "batches": [{"rows": len(r), "columns": _columns_json(dataset, c), "bytes": b.hex()}
                    for r, c, b in zip(rows, columns, batches, strict=True)],
        "chunks": [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in c.items()}
                   for c in built["chunks"]],
        "head_record": built["head_record"].hex(),
        "record_stream": built["record_stream"].hex(),
        "digest": built["digest"].hex(),
    }
