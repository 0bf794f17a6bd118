"""The audit chain's shared vocabulary: heads, entry hashes (docs/design.md).

The enclave appends entries (``enclave/state/audit.py``); parties verify them and track heads
(``cleanroom/audit.py``). Both hash an entry the same way, here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from protocol.crypto import AUDIT_LABEL
from protocol.errors import ProtocolError

__all__ = ["GENESIS", "AuditHead", "entry_hash"]

GENESIS = bytes(32)  # the "previous hash" of the first entry


def entry_hash(entry_body: bytes) -> bytes:
    """Hash of one entry's signed body: what the next entry names as ``prev``."""
    return hashlib.sha256(AUDIT_LABEL + entry_body).digest()


@dataclass(frozen=True)
class AuditHead:
    seq: int  # entries so far; 0 before the first one
    hash: bytes  # hash of the last entry, GENESIS before the first one

    def to_wire(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}

    @classmethod
    def from_wire(cls, value: Any) -> AuditHead:
        if (not isinstance(value, dict) or set(value) != {"seq", "hash"}
                or not isinstance(value["seq"], int) or isinstance(value["seq"], bool)
                or not isinstance(value["hash"], bytes) or len(value["hash"]) != 32):
            raise ProtocolError("audit head must be {seq: int, hash: 32 bytes}")
        return cls(value["seq"], value["hash"])
