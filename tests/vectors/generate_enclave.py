"""The enclave of the vector session: a simulation-mode ``Session`` holding the fixed enclave
keys, driven through real frames by ``enclave.requests.dispatch.handle_frame``, with its clock,
randomness and noise injected (zero noise, so released numbers are exact and reproducible).

``enclave.requests.session.Session.init`` draws the enclave's keys with
``EnclaveKeys.generate()``: the fixed keys replace that class method while it runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any
from unittest import mock

from enclave.requests.dispatch import handle_frame
from enclave.requests.session import Session
from enclave.state.keys import EnclaveKeys
from protocol.errors import error_from_wire
from protocol.wire import pack, unpack
from tests.vectors.generate_fixtures import NOW, fixed_seed
from tests.vectors.loader import h

__all__ = ["VectorEnclave", "ZeroNoise"]




class ZeroNoise:
    """Noise that is always zero, so released numbers are exact and the result is reproducible."""

    mechanism = "none (wire test vectors)"

    def laplace(self, scale: Fraction, count: int) -> list[int]:
        return [0] * count

    def gaussian(self, sigma2: Fraction, count: int) -> list[int]:
        return [0] * count


def _counter_stream(label: bytes) -> Callable[[int], bytes]:
    """A deterministic stand-in for ``os.urandom``: SHA-256 in counter mode."""
    counter = 0

    def random_bytes(n: int) -> bytes:
        nonlocal counter
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(label + counter.to_bytes(8, "big")).digest()
            counter += 1
        return bytes(out[:n])

    return random_bytes


class VectorEnclave:
    """A simulation-mode ``Session`` holding the fixed enclave keys, driven through frames."""

    def __init__(self, policy_bytes: bytes, keys: EnclaveKeys) -> None:
        # Session.init draws the enclave's keys with EnclaveKeys.generate (no injection point):
        # the fixed keys stand in for it while the session initialises.
        self.session = Session(mode="simulation", quote=lambda _: None,
                               sealing_key=fixed_seed("sealing-key"),
                               load_sealed=lambda _: None, persist=lambda _, blob: None,
                               noise=ZeroNoise(), clock=lambda: float(NOW),
                               random_bytes=_counter_stream(b"cleanroom/test-vectors/v1/enclave-random"),
                               sleep=lambda _: None)
        self.audit: list[bytes] = []
        with mock.patch.object(EnclaveKeys, "generate", classmethod(lambda cls: keys)):
            self.ready = self.call("init", {"policy": policy_bytes})[2]
        assert (self.ready["enc_pub"], self.ready["sig_pub"]) == (keys.enc_pub, keys.sig_pub)

    def call(self, type_: str, body: Mapping[str, Any]) -> tuple[bytes, bytes, dict]:
        """Request message bytes, reply message bytes, reply body; collects audit entries."""
        request = pack(type_, body)
        reply_bytes = handle_frame(self.session, request)
        reply = unpack(reply_bytes)
        if reply.type == "error":
            raise error_from_wire(reply.body)
        self.audit.extend(reply.body.get("audit", []))
        return request, reply_bytes, reply.body

    def upload(self, upload: Mapping[str, Any]) -> tuple[bytes, dict]:
        """Relay an upload's records as the host does; return the commit reply."""
        header = upload["header"]
        stream = self.call("upload_begin", {"header": h(header["bytes"]),
                                            "signature": h(header["signature"])})[2]["stream"]
        for chunk in upload["chunks"]:
            self.call("upload_chunk", {"stream": stream, "index": chunk["index"], "last": chunk["last"],
                                       "data": h(chunk["ciphertext"])})
        _, reply_bytes, reply = self.call("upload_commit", {"stream": stream})
        return reply_bytes, reply
