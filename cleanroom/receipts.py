"""Check the enclave-signed receipts for an upload and for a deletion against what was sent.

The host relays each receipt with its signature; both are checked against the pinned enclave
key (``cleanroom.enclave_signatures``) and must acknowledge exactly this party's request.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

from cleanroom.enclave_signatures import check_bound_to_policy, check_enclave_signature
from cleanroom.formatting import iso_utc
from protocol.crypto import DELETION_RECEIPT_LABEL, RECEIPT_LABEL
from protocol.errors import AuthenticationFailed, ProtocolError
from protocol.policy import Policy
from protocol.wire import unpack_document

__all__ = ["Receipt", "verify_deletion_receipt", "verify_receipt"]


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
    replaced: tuple[bytes, ...] = ()  # uploads a ``replace`` deleted
    retried: bool = False  # the receipt of an earlier upload with the same idempotency key
    skipped: tuple[tuple[str, int], ...] = ()  # rows left out as invalid, per column (signed)

    def summary_lines(self) -> list[str]:
        lines = [
            f"upload accepted: {self.upload_id.hex()}"
            + (" (committed earlier with this idempotency key: no rows stored twice)"
               if self.retried else ""),
            f"  party:    {self.party}",
            f"  dataset:  {self.dataset}",
            f"  rows:     {self.rows:,}",
            f"  digest:   {self.digest.hex()} (matches the bytes sent)",
            f"  accepted: {iso_utc(self.accepted_at)}",
        ]
        if self.replaced:
            lines.append(f"  replaced: {', '.join(u.hex() for u in self.replaced)} (deleted)")
        if self.skipped:
            total = sum(count for _, count in self.skipped)
            lines.append(f"  skipped:  {total:,} invalid rows left out ("
                         + ", ".join(f"{name} {count:,}" for name, count in self.skipped) + ")")
        if self.simulated:
            lines.append("  SIMULATED enclave: no SGX hardware protected this upload")
        return lines


def _receipt_and_signature(response: dict[str, Any], what: str) -> tuple[bytes, bytes]:
    try:
        receipt = base64.b64decode(response["receipt"], validate=True)
        signature = base64.b64decode(response["signature"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise ProtocolError(f"{what} response lacks a base64 receipt and signature") from None
    return receipt, signature


def verify_receipt(response: dict[str, Any], sig_pub: bytes, policy: Policy, *, upload_id: bytes,
                   party: str, dataset: str, rows: int, digest: bytes,
                   idempotency_key: bytes | None = None,
                   skipped: dict[str, int] | None = None) -> Receipt:
    """Check the host's upload response: the enclave-signed receipt must match what was sent.

    With ``idempotency_key``, the receipt may instead be the one of the upload the enclave
    committed earlier with that key (a retry): then only party, dataset and key must match.

    :raise AuthenticationFailed: bad signature, or the receipt acknowledges different bytes
        (another upload, party, dataset, row count or digest).
    """
    receipt, signature = _receipt_and_signature(response, "upload")
    if len(signature) != 64:
        raise ProtocolError("upload receipt signature has the wrong length")
    check_enclave_signature(sig_pub, RECEIPT_LABEL, receipt, signature, "the upload receipt")
    body = unpack_document("upload_receipt", receipt)
    check_bound_to_policy(body, policy, "the upload receipt")
    retried = (idempotency_key is not None and body["upload_id"] != upload_id
               and body.get("idempotency_key") == idempotency_key)
    expected = {"party": party, "dataset": dataset}
    if not retried:
        expected.update(upload_id=upload_id, rows=rows)
    for field, value in expected.items():
        if body[field] != value:
            raise AuthenticationFailed(f"the receipt does not match the upload sent ({field})")
    if not retried and not hmac.compare_digest(body["digest"], digest):
        raise AuthenticationFailed("the receipt's digest does not match the bytes sent")
    if not retried and body.get("skipped") != skipped:
        raise AuthenticationFailed("the receipt does not match the upload sent (skipped)")
    return Receipt(body["upload_id"], body["party"], body["dataset"], body["rows"], body["digest"],
                   body["accepted_at"], body["simulated"], receipt, signature, body["audit_head"],
                   tuple(body.get("replaced", ())), retried,
                   tuple(sorted(body.get("skipped", {}).items())))


def verify_deletion_receipt(response: dict[str, Any], sig_pub: bytes, policy: Policy, *,
                            request_id: bytes, party: str, dataset: str) -> dict[str, Any]:
    """Check the enclave-signed deletion receipt; return its body.

    :raise AuthenticationFailed: bad signature, or it confirms another request or dataset.
    """
    receipt, signature = _receipt_and_signature(response, "deletion")
    check_enclave_signature(sig_pub, DELETION_RECEIPT_LABEL, receipt, signature, "the deletion receipt")
    body = unpack_document("deletion_receipt", receipt)
    check_bound_to_policy(body, policy, "the deletion receipt")
    if (body["request_id"], body["party"], body["dataset"]) != (request_id, party, dataset):
        raise AuthenticationFailed("the deletion receipt confirms a different request")
    return body
