"""Drive an in-process enclave ``Session`` through real frames, as the host would."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleanroom.keys import PartyKeys
from cleanroom.upload_crypto import UploadEncryptor
from enclave.requests.dispatch import handle_frame
from enclave.requests.session import Session
from protocol.batch import encode_batch, rows_per_batch
from protocol.crypto import QUERY_LABEL
from protocol.errors import error_from_wire
from protocol.policy import Policy, parse_policy
from protocol.upload import RECORD_HEADER
from protocol.wire import pack, pack_document, unpack, unpack_document


class EnclaveHarness:
    def __init__(self, policy_bytes: bytes, noise: Any, *, sealed: bytes | None = None,
                 sealing_key: bytes = b"k" * 32, clock: Any = time.time) -> None:
        self.policy: Policy = parse_policy(policy_bytes)
        self.sealed: list[bytes] = []
        self.published: list[bytes] = []
        self.session = Session(
            mode="simulation", quote=lambda report_data: None, sealing_key=sealing_key,
            load_sealed=lambda policy_hash: sealed, persist=lambda _, blob: self.sealed.append(blob),
            noise=noise, clock=clock, random_bytes=os.urandom,
            sleep=lambda seconds: None,  # no release padding in tests
        )
        self.ready = self.call("init", {"policy": policy_bytes})

    def call(self, type_: str, body: Mapping[str, Any]) -> dict[str, Any]:
        reply = unpack(handle_frame(self.session, pack(type_, body)))
        if reply.type == "error":
            raise error_from_wire(reply.body)
        self.published.extend(reply.body.get("audit", []))  # what the host would publish
        return reply.body

    def call_raw(self, frame: bytes) -> Any:
        return unpack(handle_frame(self.session, frame))

    # -- uploads -----------------------------------------------------------------------------

    def encrypt(self, keys: PartyKeys, dataset: str, columns: Mapping[str, np.ndarray],
                *, chunk_size: int = 4096, rows_hint: int | None = None, mode: str = "append",
                **header: Any) -> tuple[UploadEncryptor, list[bytes]]:
        """``header``: more ``UploadEncryptor`` arguments (``idempotency_key``, ``now``)."""
        spec = self.policy.dataset(dataset)
        assert spec is not None
        schema = spec.schema()
        n = len(columns["id"])
        step = rows_per_batch(schema, chunk_size)
        batches = [encode_batch({k: v[i:i + step] for k, v in columns.items()}, schema)
                   for i in range(0, n, step)]
        encryptor = UploadEncryptor(keys, self.policy, spec, self.ready["enc_pub"], chunk_size=chunk_size,
                                    rows_hint=rows_hint, mode=mode,
                                    **{"now": int(self.session._clock()), **header})
        return encryptor, list(encryptor.records(batches))

    def send_records(self, records: list[bytes]) -> dict[str, Any]:
        """Relay an HTTP record stream to the enclave, as the host does; returns the receipt."""
        payloads = [r[RECORD_HEADER.size:] for r in records]
        head = msgpack.unpackb(payloads[0], raw=False)
        started = self.call("upload_begin", head)
        stream = started["stream"]
        reply: dict[str, Any] = {}
        for index, payload in enumerate(payloads[1:]):
            reply = self.call("upload_chunk", {"stream": stream, "index": index,
                                               "last": payload[0] == 1, "data": payload[1:]})
        assert "digest" in reply, "stream ended without the last chunk"
        return self.call("upload_commit", {"stream": stream})

    def upload(self, keys: PartyKeys, dataset: str, columns: Mapping[str, np.ndarray],
               **kwargs: Any) -> dict[str, Any]:
        _, records = self.encrypt(keys, dataset, columns, **kwargs)
        receipt = self.send_records(records)
        self.verify_enclave_signature(b"cleanroom/v1/upload-receipt\x00", receipt["receipt"],
                                      receipt["signature"])
        return unpack_document("upload_receipt", receipt["receipt"])

    def verify_enclave_signature(self, label: bytes, body: bytes, signature: bytes) -> None:
        Ed25519PublicKey.from_public_bytes(self.ready["sig_pub"]).verify(signature, label + body)

    # -- queries -----------------------------------------------------------------------------

    def signed_query(self, keys: PartyKeys, analysis: str, params: dict[str, Any],
                     *, issued_at: int | None = None) -> dict[str, bytes]:
        request = pack_document("query_request", {
            "collaboration_id": self.policy.collaboration_id, "policy_hash": self.policy.hash,
            "party": keys.party_id, "analysis": analysis, "params": params,
            "nonce": os.urandom(16), "issued_at": int(time.time()) if issued_at is None else issued_at,
        })
        return {"request": request, "signature": keys.sign(QUERY_LABEL, request)}

    def query(self, keys: PartyKeys, analysis: str, params: dict[str, Any]) -> dict[str, Any]:
        from cleanroom.result_open import open_result  # the party's own opening code

        reply = self.call("query", self.signed_query(keys, analysis, params))
        return open_result(reply["results"][keys.party_id], keys=keys, policy=self.policy,
                           sig_pub=self.ready["sig_pub"], query_id=reply["query_id"])


def digests(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
