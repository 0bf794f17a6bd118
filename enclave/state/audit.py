"""The audit log: a hash chain of enclave-signed entries (docs/design.md).

The enclave keeps only the head (sequence number and hash, sealed with its state); the entries
themselves leave with the reply that caused them and the untrusted host stores and serves them.
The host cannot forge an entry (each is signed) nor drop or reorder one unnoticed (each names
its predecessor's hash). Every receipt and result carries the head, so a party that remembers
the highest head it has seen detects a host that rolled the sealed state back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.audit import GENESIS, AuditHead, entry_hash
from protocol.crypto import AUDIT_LABEL
from protocol.wire import pack_document

__all__ = ["AuditLog"]


class AuditLog:
    def __init__(self, collaboration_id: str, sign: Callable[[bytes, bytes], bytes],
                 head: AuditHead | None = None) -> None:
        self._collaboration_id = collaboration_id
        self._sign = sign
        self.head = head or AuditHead(0, GENESIS)

    def append(self, kind: str, at: int, details: dict[str, Any]) -> bytes:
        """Add an entry; return the signed document (``signed {body, signature}``) to publish."""
        body = pack_document("audit_entry", {
            "collaboration_id": self._collaboration_id, "seq": self.head.seq + 1,
            "prev": self.head.hash, "kind": kind, "at": at, "details": details,
        })
        self.head = AuditHead(self.head.seq + 1, entry_hash(body))
        return pack_document("signed", {"body": body, "signature": self._sign(AUDIT_LABEL, body)})
