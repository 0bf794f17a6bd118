"""Open and check what the enclave signs: sealed query results and upload receipts.

Every enclave output is checked against the enclave key pinned from a verified attestation
(``VerifiedEnclave.sig_pub``), never against a key the host hands over alongside the output. A
result is HPKE-sealed to the recipient (``DecryptionFailed`` when it does not open), then its
Ed25519 signature over ``RESULT_LABEL || body`` is checked (``AuthenticationFailed``), then the
body must name this collaboration, policy and query.

A saved result (``cleanroom query --save``) keeps the signed bytes next to the attestation
bundle that pins the signing key, so ``check_saved_result`` can re-verify both offline.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleanroom.keys import PartyKeys
from protocol.crypto import DELETION_RECEIPT_LABEL, HPKE_SUITE, RECEIPT_LABEL, RESULT_LABEL, result_hpke_info
from protocol.errors import AuthenticationFailed, DecryptionFailed, InvalidInput, ProtocolError
from protocol.policy import Policy, parse_policy
from protocol.wire import unpack_document

__all__ = [
    "SAVED_RESULT_FORMAT",
    "Receipt",
    "Result",
    "check_saved_result",
    "load_saved_result",
    "open_result",
    "render_table",
    "save_result",
    "verify_deletion_receipt",
    "verify_receipt",
    "verify_signed_result",
]

SAVED_RESULT_FORMAT = 1


@dataclass(frozen=True)
class Result:
    """A verified result: the parsed ``result`` document plus the exact signed bytes."""

    body: dict[str, Any]
    signed: bytes  # the ``signed`` document, kept verbatim for saving and offline checks

    @property
    def query_id(self) -> bytes:
        return self.body["query_id"]

    @property
    def analysis(self) -> str:
        return self.body["analysis"]

    @property
    def columns(self) -> list[str]:
        return self.body["columns"]

    @property
    def rows(self) -> list[list[Any]]:
        return self.body["rows"]

    @property
    def privacy(self) -> dict[str, Any]:
        return self.body["privacy"]

    @property
    def simulated(self) -> bool:
        return self.body["simulated"]


@dataclass(frozen=True)
class Receipt:
    """A verified upload receipt: the enclave acknowledged exactly the bytes that were sent."""

    upload_id: bytes
    party: str
    dataset: str
    rows: int
    digest: bytes
    accepted_at: int
    simulated: bool
    receipt: bytes  # the signed document bytes
    signature: bytes
    audit_head: dict[str, Any]

    def summary_lines(self) -> list[str]:
        lines = [
            f"upload accepted: {self.upload_id.hex()}",
            f"  party:    {self.party}",
            f"  dataset:  {self.dataset}",
            f"  rows:     {self.rows:,}",
            f"  digest:   {self.digest.hex()} (matches the bytes sent)",
            f"  accepted: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self.accepted_at))}",
        ]
        if self.simulated:
            lines.append("  SIMULATED enclave: no SGX hardware protected this upload")
        return lines


def _verify(sig_pub: bytes, label: bytes, body: bytes, signature: bytes, what: str) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(sig_pub).verify(signature, label + body)
    except InvalidSignature:
        raise AuthenticationFailed(f"{what} is not signed by the attested enclave") from None


def _bound(body: dict[str, Any], policy: Policy, what: str) -> None:
    if body["collaboration_id"] != policy.collaboration_id:
        raise AuthenticationFailed(f"{what} belongs to another collaboration")
    if not hmac.compare_digest(body["policy_hash"], policy.hash):
        raise AuthenticationFailed(f"{what} was made under another policy")


def verify_signed_result(signed: bytes, sig_pub: bytes, policy: Policy,
                         query_id: bytes | None = None) -> Result:
    """Check a ``signed`` result document against the pinned enclave key and the policy.

    :raise AuthenticationFailed: bad signature, or the body names another collaboration, policy
        or query. :raise ProtocolError: the bytes are not a well-formed document.
    """
    envelope = unpack_document("signed", signed)
    _verify(sig_pub, RESULT_LABEL, envelope["body"], envelope["signature"], "the result")
    body = unpack_document("result", envelope["body"])
    _bound(body, policy, "the result")
    if query_id is not None and not hmac.compare_digest(body["query_id"], query_id):
        raise AuthenticationFailed("the result answers a different query")
    return Result(body, signed)


def open_result(sealed: bytes, keys: PartyKeys, sig_pub: bytes, policy: Policy,
                query_id: bytes) -> Result:
    """HPKE-open a result sealed to ``keys`` and verify it (see ``verify_signed_result``).

    :raise DecryptionFailed: the ciphertext does not open with this party's result key for
        this collaboration and query (tampered, or sealed to someone else).
    """
    info = result_hpke_info(policy.collaboration_id, query_id, keys.party_id)
    try:
        signed = HPKE_SUITE.decrypt(sealed, keys.result_key, info=info)
    except Exception:  # every way of not opening is the same answer
        raise DecryptionFailed() from None
    return verify_signed_result(signed, sig_pub, policy, query_id)


def verify_receipt(response: dict[str, Any], sig_pub: bytes, policy: Policy, *, upload_id: bytes,
                   party: str, dataset: str, rows: int, digest: bytes) -> Receipt:
    """Check the host's upload response: the enclave-signed receipt must match what was sent.

    :raise AuthenticationFailed: bad signature, or the receipt acknowledges different bytes
        (another upload, party, dataset, row count or digest).
    """
    try:
        receipt = base64.b64decode(response["receipt"], validate=True)
        signature = base64.b64decode(response["signature"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise ProtocolError("upload response lacks a base64 receipt and signature") from None
    if len(signature) != 64:
        raise ProtocolError("upload receipt signature has the wrong length")
    _verify(sig_pub, RECEIPT_LABEL, receipt, signature, "the upload receipt")
    body = unpack_document("upload_receipt", receipt)
    _bound(body, policy, "the upload receipt")
    expected = {"upload_id": upload_id, "party": party, "dataset": dataset, "rows": rows}
    for field, value in expected.items():
        if body[field] != value:
            raise AuthenticationFailed(f"the receipt does not match the upload sent ({field})")
    if not hmac.compare_digest(body["digest"], digest):
        raise AuthenticationFailed("the receipt's digest does not match the bytes sent")
    return Receipt(body["upload_id"], body["party"], body["dataset"], body["rows"], body["digest"],
                   body["accepted_at"], body["simulated"], receipt, signature, body["audit_head"])


def verify_deletion_receipt(response: dict[str, Any], sig_pub: bytes, policy: Policy, *,
                            request_id: bytes, party: str, dataset: str) -> dict[str, Any]:
    """Check the enclave-signed deletion receipt; return its body.

    :raise AuthenticationFailed: bad signature, or it confirms another request or dataset.
    """
    try:
        receipt = base64.b64decode(response["receipt"], validate=True)
        signature = base64.b64decode(response["signature"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise ProtocolError("deletion response lacks a base64 receipt and signature") from None
    _verify(sig_pub, DELETION_RECEIPT_LABEL, receipt, signature, "the deletion receipt")
    body = unpack_document("deletion_receipt", receipt)
    _bound(body, policy, "the deletion receipt")
    if (body["request_id"], body["party"], body["dataset"]) != (request_id, party, dataset):
        raise AuthenticationFailed("the deletion receipt confirms a different request")
    return body


# --- saved results ------------------------------------------------------------------------------


def save_result(path: str | os.PathLike[str], result: Result, bundle: dict[str, Any]) -> None:
    """Write ``{"format": 1, "signed": b64, "attestation": bundle}`` (never overwrites)."""
    doc = {"format": SAVED_RESULT_FORMAT, "signed": base64.b64encode(result.signed).decode(),
           "attestation": bundle}
    with open(path, "x", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def load_saved_result(path: str | os.PathLike[str]) -> tuple[bytes, dict[str, Any]]:
    """The signed result bytes and the attestation bundle of a saved-result file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{path}: not a saved-result JSON file") from None
    if not isinstance(doc, dict) or doc.get("format") != SAVED_RESULT_FORMAT:
        raise InvalidInput(f"{path}: not a format-{SAVED_RESULT_FORMAT} saved result")
    if set(doc) != {"format", "signed", "attestation"} or not isinstance(doc["attestation"], dict):
        raise InvalidInput(f"{path}: expected exactly the fields format, signed, attestation")
    try:
        signed = base64.b64decode(doc["signed"], validate=True)
    except (TypeError, binascii.Error, ValueError):
        raise InvalidInput(f"{path}: field 'signed' is not base64") from None
    return signed, doc["attestation"]


def check_saved_result(path: str | os.PathLike[str], agreed_policy: bytes, verifier_policy: Any,
                       now: int, collateral_for: Any = None) -> tuple[Result, Any]:
    """Re-verify a saved result offline; return it and the ``VerifiedEnclave``.

    The attestation bundle is verified first (as of ``now``): it binds the enclave's signing key
    and the policy hash into the quote. Only then is the result's signature checked with that
    key, and its body against ``agreed_policy``. No network access, unless
    ``collateral_for(quote)`` fetches collateral the saved bundle lacks or that has expired.

    :raise CleanroomError: an ``AttestationError`` subclass, ``AuthenticationFailed``,
        ``ProtocolError`` or ``InvalidInput``.
    """
    from attestation.verifier.verify import verify_bundle  # party-side only; pulls in dcap-qvl

    signed, bundle = load_saved_result(path)
    policy = parse_policy(agreed_policy)
    # No nonce: freshness means nothing offline; the bundle's own nonce is still bound in the quote.
    from cleanroom.client import own_collateral

    enclave = verify_bundle(bundle, agreed_policy=agreed_policy, now=now, policy=verifier_policy,
                            collateral=own_collateral(bundle, collateral_for))
    return verify_signed_result(signed, enclave.sig_pub, policy), enclave


# --- display ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()  # activated identifiers: the party's own SHA-256 digests
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_table(result: Result) -> str:
    """An aligned text table of the released rows, with a footer saying how to read them."""
    body = result.body
    header = [str(c) for c in body["columns"]]
    cells = [[_text(v) for v in (row if isinstance(row, list) else [row])] for row in body["rows"]]
    widths = [len(h) for h in header]
    for row in cells:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(cell))

    def line(values: list[str]) -> str:
        # Numbers right-aligned, labels left-aligned: the usual way to read a table.
        parts = [v.rjust(w) if v[:1].isdigit() or v[:1] == "-" else v.ljust(w)
                 for v, w in zip(values, widths, strict=False)]
        return "  ".join(parts).rstrip()

    out = [f"{body['analysis']} ({body['kind']}), query {body['query_id'].hex()[:16]}",
           line(header), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    if not cells:
        out.append("(no cohort passed the minimum cohort size)")
    privacy = dict(body["privacy"])
    out.append("")
    out.append(f"privacy: mechanism {privacy.pop('mechanism', '?')}, "
               f"epsilon charged {privacy.pop('epsilon_charged', '?')}, "
               f"budget remaining {_text(privacy.pop('budget_remaining', '?'))}")
    out.append(f"         suppressed cohorts {_text(privacy.pop('suppressed_cohorts', '?'))}"
               f" of {_text(privacy.pop('cohorts_total', '?'))}"
               f" (minimum cohort size {_text(privacy.pop('min_cohort_size', '?'))})")
    out.append("         counts and sums carry calibrated noise; they are not exact values")
    out.append(f"simulated: {'true - NO SGX HARDWARE; for testing only' if body['simulated'] else 'false'}")
    return "\n".join(out)
