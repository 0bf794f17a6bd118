"""Checks of ``upload.json``: the HPKE-wrapped data key, the signed upload header, the columnar
batches, the encrypted chunks and their records, the upload digest and the HTTP record stream.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.batch import decode_batch, encode_batch
from protocol.crypto import UPLOAD_HEADER_LABEL, upload_key_hpke_info
from protocol.upload import UploadDigest, chunk_aad, chunk_nonce, encode_record
from protocol.wire import canonical_packb
from tests.support.records import split_records
from tests.vectors.checks_common import (
    Vectors,
    assert_same,
    check_decrypt_vector,
    check_signed_document,
    enclave_of,
    party_of,
    policy_of,
)
from tests.vectors.loader import h

__all__ = ["check_upload"]



def _batch_columns(dataset_schema: list[tuple[str, str]], columns: dict[str, list[Any]]) -> dict:
    out = {}
    for name, kind in dataset_schema:
        if kind == "id":
            out[name] = np.frombuffer(b"".join(h(x) for x in columns[name]), np.uint8).reshape(-1, 32)
        else:
            out[name] = np.array(columns[name], dtype=np.uint16 if kind == "dimension" else np.int64)
    assert list(columns) == [name for name, _ in dataset_schema]
    return out


def check_upload(v: Vectors) -> None:
    policy = policy_of(v)
    uploads = v["upload"]["uploads"]
    assert [u["dataset"] for u in uploads] == [d.name for d in policy.datasets]
    for up in uploads:
        dataset = policy.dataset(up["dataset"])
        assert dataset is not None and dataset.owner == up["party"]
        schema = list(dataset.schema())
        assert [tuple(c) for c in up["schema"]] == schema
        header_bytes, signature = h(up["header"]["bytes"]), h(up["header"]["signature"])
        header = check_signed_document("upload_header", up["header"], UPLOAD_HEADER_LABEL,
                                       party_of(v, up["party"]))
        assert (header["collaboration_id"], header["policy_hash"]) == (policy.collaboration_id, policy.hash)
        assert (header["party"], header["dataset"]) == (up["party"], up["dataset"])
        assert header["schema"] == up["schema"]
        assert header["rows_hint"] == sum(b["rows"] for b in up["batches"])

        # The data key, HPKE-wrapped to the enclave: a decrypt vector.
        data_key, wrap = h(up["data_key"]), up["data_key_wrap"]
        info = upload_key_hpke_info(policy.collaboration_id, policy.hash, up["party"], up["dataset"])
        check_decrypt_vector(wrap, enclave_of(v), info, data_key)
        assert header["hpke_enc"] == h(wrap["enc"]) + h(wrap["ciphertext"])

        # Batches: encode_batch(columns) is the stored plaintext, decode_batch gives the columns.
        sizes = {d.name: len(d.values) for d in dataset.dimensions}
        plaintexts = []
        for batch in up["batches"]:
            raw = h(batch["bytes"])
            assert encode_batch(_batch_columns(schema, batch["columns"]), schema) == raw
            decoded = decode_batch(raw, schema, sizes)
            for name, kind in schema:
                values = ([bytes(x).hex() for x in decoded[name]] if kind == "id"
                          else [int(x) for x in decoded[name]])
                assert_same(values, batch["columns"][name], name)
            assert len(decoded["id"]) == batch["rows"]
            plaintexts.append(raw)

        # Chunks: nonce, AAD and AES-256-GCM under the data key, both ways.
        aead = AESGCM(data_key)
        assert len(up["chunks"]) == len(plaintexts)
        digest = UploadDigest(header_bytes, signature)
        for index, (chunk, plaintext) in enumerate(zip(up["chunks"], plaintexts, strict=True)):
            last = index == len(plaintexts) - 1
            assert chunk["index"] == index and chunk["last"] is last
            nonce, aad, ciphertext = h(chunk["nonce"]), h(chunk["aad"]), h(chunk["ciphertext"])
            assert nonce == chunk_nonce(index) and aad == chunk_aad(header_bytes, index, last)
            assert aad == hashlib.sha256(header_bytes).digest() + index.to_bytes(8, "big") + bytes([last])
            assert aead.encrypt(nonce, plaintext, aad) == ciphertext
            assert aead.decrypt(nonce, ciphertext, aad) == plaintext
            payload = bytes([last]) + ciphertext
            assert h(chunk["record"]) == encode_record(payload)
            digest.add_chunk_hash(hashlib.sha256(payload).digest())
        assert digest.digest() == h(up["digest"])

        # The HTTP record stream, built and then split back.
        head = canonical_packb({"header": header_bytes, "signature": signature})
        assert h(up["head_record"]) == encode_record(head)
        stream = h(up["record_stream"])
        assert stream == h(up["head_record"]) + b"".join(h(c["record"]) for c in up["chunks"])
        payloads = split_records(stream)
        assert msgpack.unpackb(payloads[0], raw=False) == {"header": header_bytes, "signature": signature}
        assert [(p[0], p[1:]) for p in payloads[1:]] == [
            (int(c["last"]), h(c["ciphertext"])) for c in up["chunks"]]
