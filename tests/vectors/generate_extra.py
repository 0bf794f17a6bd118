"""The generator's part for the files written with the wire specification (docs/wire.md).

``generate.build`` calls ``build_extra`` after the session of the other files: it writes
``msgpack.json`` and ``attestation.json``. The recipes and the checks are in ``checks_msgpack``
and ``checks_attestation``; what only a generator does (run the host's attestation service, keep
a stored bundle while it still verifies) is here.

The simulated quote is signed with ECDSA by a simulation PKI that is created fresh, so, like an
HPKE ciphertext, a bundle cannot be reproduced: a stored bundle is kept while it still verifies
for the same enclave keys, policy and nonce, and only otherwise replaced by a fresh one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from protocol.wire import canonical_packb, unpack_document
from tests.vectors.checks_attestation import attestation_refusals, verify_bundle
from tests.vectors.checks_http import b64
from tests.vectors.checks_msgpack import KEY_ORDER_IN as _KEY_ORDER_IN
from tests.vectors.checks_msgpack import accepted_documents, msgpack_values, rejected_documents
from tests.vectors.loader import h, to_json

__all__ = ["build_extra"]

Call = Callable[[str, Mapping[str, Any]], tuple[bytes, bytes, dict]]


def _msgpack(requests: Mapping[str, Any]) -> dict[str, Any]:
    delete, query = (h(requests[k]["bytes"]) for k in ("delete_request", "query_request"))
    return {
        "description": "Canonical msgpack (docs/wire.md#canonical-msgpack): each value and its only "
        "encoding; documents a receiver must refuse (one edit of a requests.json "
        "document each) or accept (at a limit).",
        "values": [
            {"description": d, "value": to_json(value), "bytes": canonical_packb(value).hex()}
            for d, value in msgpack_values()
        ],
        "key_order": {
            "keys_in": _KEY_ORDER_IN,
            "keys_sorted": sorted(_KEY_ORDER_IN),
            "bytes": canonical_packb({k: i for i, k in enumerate(_KEY_ORDER_IN)}).hex(),
        },
        "rejected": [
            {"description": d, "kind": kind, "bytes": data.hex(), "code": "bad_message"}
            for d, kind, data in rejected_documents(delete, query)
        ],
        "accepted": [
            {
                "description": d,
                "kind": kind,
                "bytes": data.hex(),
                "document": to_json(unpack_document(kind, data)),
            }
            for d, kind, data in accepted_documents(delete, query)
        ],
    }


class _Supervisor:
    """Just enough of ``EnclaveSupervisor`` for ``AttestationService``: one enclave, one call."""

    def __init__(self, call: Call) -> None:
        self._call = call

    def handle(self) -> SimpleNamespace:
        def call(type_: str, body: Mapping[str, Any], expect: str) -> SimpleNamespace:
            return SimpleNamespace(type=expect, body=self._call(type_, body)[2])

        return SimpleNamespace(info=SimpleNamespace(generation=1), call=call)


def _bundle(stored: Any, call: Call, policy_text: str, nonce: bytes, now: int) -> dict[str, Any]:
    """The stored bundle while it still verifies for this enclave, policy and nonce, else a fresh one
    from the host's own ``AttestationService`` (simulation PKI in a throwaway directory)."""
    from host.attestation import AttestationService

    bundle = (stored or {}).get("bundle")
    if isinstance(bundle, dict):
        try:
            fresh_body = call("attest", {"nonce": nonce})[2]
            same = (bundle.get("enc_pub"), bundle.get("sig_pub"), bundle.get("nonce")) == (
                fresh_body["enc_pub"].hex(),
                fresh_body["sig_pub"].hex(),
                nonce.hex(),
            )
            if same and verify_bundle(bundle, policy_text, now, nonce)[0]:
                return bundle
        except Exception:  # a malformed stored bundle is simply replaced
            pass
    with tempfile.TemporaryDirectory() as pki_dir:
        service = AttestationService(
            _Supervisor(call),
            Path(pki_dir),
            {},
            3600.0,  # type: ignore[arg-type]
            clock=lambda: float(now),
        )
        fresh = service.bundle(nonce)
    assert verify_bundle(fresh, policy_text, now, nonce)[0]
    return fresh


def _attestation(stored: Any, call: Call, out: Mapping[str, Any], nonce: bytes, now: int) -> dict[str, Any]:
    import base64

    policy_text = out["policy"]["text"]
    bundle = _bundle(stored, call, policy_text, nonce, now)
    quote = base64.b64decode(bundle["quote"])
    refusals = []
    for edit, (change, allow, same_nonce, suffix) in attestation_refusals().items():
        accepted, code, _ = verify_bundle(
            change(bundle), policy_text + suffix.decode(), now, nonce if same_nonce else bytes(32), allow
        )
        assert not accepted
        refusals.append({"edit": edit, "code": code})
    return {
        "description": "A simulation-mode attestation bundle as GET /v1/attestation?nonce= serves it "
        "(docs/wire.md#attestation). It verifies at `now` with simulation allowed and "
        "MRENCLAVE the simulation default; each refusal is one edit of it. "
        "saved_result is the file `cleanroom query --save` writes for result.json.",
        "now": now,
        "nonce": nonce.hex(),
        "report_data": out["report_data"]["vectors"][1]["report_data"],
        "quote_fields": {
            "version": 3,
            "report_data": [368, 64],
            "mr_enclave": quote[112:144].hex(),
            "mr_signer": quote[176:208].hex(),
            "debug": False,
        },
        "bundle": bundle,
        "refusals": refusals,
        "saved_result": {"format": 1, "signed": b64(h(out["result"]["signed"])), "attestation": bundle},
    }


def build_extra(
    out: dict[str, Any], existing: Mapping[str, Any], call: Call, *, nonce: bytes, now: int
) -> None:
    """Add msgpack and attestation (in that order) to ``out``."""
    out["msgpack"] = _msgpack(out["requests"])
    out["attestation"] = _attestation(existing.get("attestation"), call, out, nonce, now)
