"""``attestation.json``: a simulated attestation bundle exactly as ``GET /v1/attestation`` serves
it, the REPORTDATA its quote must carry, the refusals one edit causes, and a saved-result file.

``attestation_refusals`` is the recipe of the refusals (the generator, ``generate_extra``, writes
what it gives); ``verify_bundle`` runs the project's verifier (cached: dcap-qvl is slow).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any

from protocol.report_data import report_data
from tests.vectors.checks_common import Vectors
from tests.vectors.checks_http import b64
from tests.vectors.loader import from_json, h

__all__ = ["Refusal", "attestation_refusals", "check_attestation", "verify_bundle"]


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _flip_hex(text: str) -> str:
    return text[:-1] + format(int(text[-1], 16) ^ 1, "x")


Refusal = tuple[Callable[[dict[str, Any]], dict[str, Any]], bool, bool, bytes]


def attestation_refusals() -> dict[str, Refusal]:
    """edit -> (bundle edit, allow simulation, request the bundle's nonce, appended to the
    verifier's own policy copy): one refusal each."""

    def field(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda b: {**b, name: _flip_hex(b[name])}

    same: Callable[[dict[str, Any]], dict[str, Any]] = dict
    return {
        "flip the last bit of enc_pub": (field("enc_pub"), True, True, b""),
        "flip the last bit of sig_pub": (field("sig_pub"), True, True, b""),
        "flip the last bit of nonce": (field("nonce"), True, False, b""),
        "flip the last bit of policy_hash": (field("policy_hash"), True, True, b""),
        "append a newline to the bundle's policy (and fix its policy_hash)": (
            lambda b: {
                **b,
                "policy": b64(_unb64(b["policy"]) + b"\n"),
                "policy_hash": hashlib.sha256(_unb64(b["policy"]) + b"\n").hexdigest(),
            },
            True,
            True,
            b"",
        ),
        "verify against another policy copy (a newline appended)": (same, True, True, b"\n"),
        "verify without allowing simulation": (same, False, True, b""),
        "request another nonce than the bundle's": (same, True, False, b""),
    }


@functools.lru_cache(maxsize=64)
def _verify(
    bundle_json: str,
    policy_text: str,
    now: int,
    nonce: bytes,
    allow_simulation: bool,
) -> tuple[bool, str | None, tuple[bytes, bytes, bytes] | None]:
    """(accepted, refusal code, bound keys); cached because dcap-qvl is the slow part."""
    from attestation.verifier.verify import VerifierPolicy, evaluate_bundle

    report = evaluate_bundle(
        json.loads(bundle_json),
        agreed_policy=policy_text.encode(),
        now=now,
        policy=VerifierPolicy(allow_simulation=allow_simulation),
        nonce=nonce,
    )
    return (
        report.accepted,
        None if report.error is None else report.error[0],
        None if report.bound_keys is None else tuple(report.bound_keys),
    )


def verify_bundle(
    bundle: dict[str, Any], policy_text: str, now: int, nonce: bytes, allow_simulation: bool = True
) -> tuple[bool, str | None, tuple[bytes, bytes, bytes] | None]:
    return _verify(json.dumps(bundle, sort_keys=True), policy_text, now, nonce, allow_simulation)


def check_attestation(v: Vectors) -> None:
    doc, keys, policy = v["attestation"], v["keys"]["enclave"], v["policy"]
    bundle, nonce = doc["bundle"], h(doc["nonce"])
    assert doc["now"] == from_json(v["result"]["document"])["created_at"]  # the session's clock
    assert bundle["format"] == 1 and bundle["mode"] == "simulation" and bundle["simulated"] is True
    assert (bundle["enc_pub"], bundle["sig_pub"]) == (keys["x25519_public"], keys["ed25519_public"])
    assert (
        _unb64(bundle["policy"]) == policy["text"].encode() and bundle["policy_hash"] == policy["policy_hash"]
    )
    assert bundle["nonce"] == doc["nonce"]
    expected = report_data(h(bundle["enc_pub"]), h(bundle["sig_pub"]), h(bundle["policy_hash"]), nonce)
    assert h(doc["report_data"]) == expected
    quote, fields = _unb64(bundle["quote"]), doc["quote_fields"]
    assert quote[368:432] == expected and fields["report_data"] == [368, 64]
    assert struct.unpack_from("<H", quote, 0)[0] == fields["version"] == 3
    assert quote[112:144].hex() == fields["mr_enclave"] and quote[176:208].hex() == fields["mr_signer"]
    assert (quote[96] & 0x02 != 0) is fields["debug"] is False
    accepted, code, bound = verify_bundle(bundle, policy["text"], doc["now"], nonce)
    assert accepted and code is None, code
    assert bound == (h(bundle["enc_pub"]), h(bundle["sig_pub"]), h(bundle["policy_hash"]))
    edits = attestation_refusals()
    assert [r["edit"] for r in doc["refusals"]] == list(edits)
    for refusal in doc["refusals"]:
        edit, allow, same_nonce, suffix = edits[refusal["edit"]]
        asked = nonce if same_nonce else bytes(32)
        accepted, code, _ = verify_bundle(
            edit(bundle), policy["text"] + suffix.decode(), doc["now"], asked, allow
        )
        assert not accepted and code == refusal["code"], (refusal["edit"], code)
    saved = doc["saved_result"]
    assert set(saved) == {"format", "signed", "attestation"} and saved["format"] == 1
    assert saved["attestation"] == bundle and _unb64(saved["signed"]) == h(v["result"]["signed"])
