"""The one cryptographic suite and every domain-separation label of the protocol, defined once.

* HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM: a party wraps
  an upload's data key to the enclave's attested X25519 key; the enclave encrypts each result to
  its recipient's X25519 key. ``info`` binds each use to its collaboration and purpose.
* Ed25519 signatures are always made over ``LABEL || document_bytes``: a signature made for one
  purpose never verifies for another.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from protocol.wire import canonical_packb

__all__ = [
    "APPROVAL_LABEL", "AUDIT_LABEL", "BUDGET_LABEL", "DATA_KEY_BYTES", "DELETE_LABEL",
    "DELETION_RECEIPT_LABEL", "HPKE_SUITE", "PROPOSAL_LABEL", "QUERY_LABEL", "RECEIPT_LABEL",
    "RESULT_LABEL", "UPLOAD_HEADER_LABEL", "result_hpke_info", "upload_key_hpke_info",
]

HPKE_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
DATA_KEY_BYTES = 32  # an upload's AES-256-GCM key

# Domain-separation labels: a signature made for one purpose never verifies for another.
UPLOAD_HEADER_LABEL = b"cleanroom/v1/upload-header\x00"
QUERY_LABEL = b"cleanroom/v1/query-request\x00"
RECEIPT_LABEL = b"cleanroom/v1/upload-receipt\x00"
RESULT_LABEL = b"cleanroom/v1/result\x00"
AUDIT_LABEL = b"cleanroom/v1/audit-entry\x00"
DELETE_LABEL = b"cleanroom/v1/delete-request\x00"
DELETION_RECEIPT_LABEL = b"cleanroom/v1/deletion-receipt\x00"
PROPOSAL_LABEL = b"cleanroom/v1/charge-proposal\x00"  # the enclave proposes a charge ...
APPROVAL_LABEL = b"cleanroom/v1/charge-approval\x00"  # ... and each approver co-signs it
BUDGET_LABEL = b"cleanroom/v1/budget-status\x00"


def upload_key_hpke_info(collaboration_id: str, policy_hash: bytes, party: str, dataset: str) -> bytes:
    """HPKE ``info`` for wrapping an upload's data key to the enclave."""
    return canonical_packb(["cleanroom/v1/upload-key", collaboration_id, policy_hash, party, dataset])


def result_hpke_info(collaboration_id: str, query_id: bytes, recipient: str) -> bytes:
    """HPKE ``info`` for a result encrypted to one recipient."""
    return canonical_packb(["cleanroom/v1/result", collaboration_id, query_id, recipient])
