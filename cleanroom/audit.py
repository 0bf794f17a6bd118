"""Party side of the audit log: verify a chain offline and detect rollback of the enclave.

The client remembers, per collaboration, the enclave signing key and the highest audit head it
has seen (``HeadStore``). A later receipt or result whose head is older (a lower sequence
number), or that disagrees at the same sequence number (a fork), or that comes from a different
enclave key for the same collaboration, means the host restored or replaced the enclave's
sealed state — which is how a privacy budget would be silently reset. All three are refused.
A whole downloaded log (``verify_complete_log``) must also reach the head this party last saw:
the log alone cannot show that entries were cut off its end.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.audit import GENESIS, AuditHead, entry_hash
from protocol.crypto import AUDIT_LABEL
from protocol.errors import AuthenticationFailed, ProtocolError, RollbackDetected, StateError
from protocol.wire import unpack_document

__all__ = [
    "AuditHead",
    "HeadStore",
    "check_on_chain",
    "default_head_store",
    "verify_audit_log",
    "verify_complete_log",
]


def verify_audit_log(entries: Iterable[bytes], sig_pub: bytes, collaboration_id: str,
                     start: AuditHead | None = None) -> tuple[AuditHead, list[dict[str, Any]]]:
    """Check every signature and link of a log (or of its part after ``start``).

    Returns the last head and the entries' bodies.

    :raise AuthenticationFailed: an entry not signed by the enclave, or a broken link (an
        entry dropped, inserted, reordered or altered by the host).
    """
    key = Ed25519PublicKey.from_public_bytes(sig_pub)
    head = start or AuditHead(0, GENESIS)
    bodies = []
    for raw in entries:
        signed = unpack_document("signed", raw)
        try:
            key.verify(signed["signature"], AUDIT_LABEL + signed["body"])
        except InvalidSignature:
            raise AuthenticationFailed(f"audit entry {head.seq + 1} is not signed by the enclave") from None
        body = unpack_document("audit_entry", signed["body"])
        if body["collaboration_id"] != collaboration_id:
            raise AuthenticationFailed(f"audit entry {body['seq']} belongs to another collaboration")
        if body["seq"] != head.seq + 1 or body["prev"] != head.hash:
            raise AuthenticationFailed(f"the audit chain breaks at entry {head.seq + 1}")
        head = AuditHead(body["seq"], entry_hash(signed["body"]))
        bodies.append(body)
    return head, bodies


def verify_complete_log(entries: list[bytes], sig_pub: bytes, collaboration_id: str,
                        seen: AuditHead | None) -> tuple[AuditHead, list[dict[str, Any]]]:
    """Check a whole log (``verify_audit_log``) and that it holds ``seen``, the head this party saw.

    Returns the last head and the entries' bodies. ``seen`` None (this party remembers no head
    for the collaboration) means a log cut short at its end cannot be detected.

    :raise AuthenticationFailed: as ``verify_audit_log``.
    :raise RollbackDetected: the log ends before ``seen`` (entries were cut off), or ``seen`` is
        not on its chain.
    """
    head, bodies = verify_audit_log(entries, sig_pub, collaboration_id)
    if seen is not None:
        if seen.seq > head.seq:
            raise RollbackDetected(f"the log ends at entry {head.seq} but this party has seen entry "
                                   f"{seen.seq}: entries were cut off")
        check_on_chain(entries, sig_pub, collaboration_id, seen, head)
    return head, bodies


class HeadStore:
    """The highest audit head seen per collaboration, in one small JSON file per collaboration."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, collaboration_id: str) -> Path:
        """The file that remembers ``collaboration_id``'s enclave key and audit head."""
        return self.directory / f"{collaboration_id}.json"

    def forget(self, collaboration_id: str) -> tuple[bytes, AuditHead] | None:
        """Delete what is remembered for ``collaboration_id`` (``cleanroom trust reset``).

        Returns what was forgotten, or None if nothing was. Under the same lock as ``observe``,
        so a concurrent client cannot write the old head back half-way through.
        """
        if not self.directory.is_dir():
            return None
        with open(self.directory / f"{collaboration_id}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                seen = self.load(collaboration_id)
            except StateError:
                seen = None  # unreadable: forgetting it is exactly what was asked
            self.path(collaboration_id).unlink(missing_ok=True)
            return seen

    def load(self, collaboration_id: str) -> tuple[bytes, AuditHead] | None:
        path = self.path(collaboration_id)
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text())
            return bytes.fromhex(doc["sig_pub"]), AuditHead(int(doc["seq"]), bytes.fromhex(doc["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{path} is not a valid audit head file") from exc

    def observe(self, collaboration_id: str, sig_pub: bytes, head: AuditHead,
                entries_after: Callable[[int], list[bytes]] | None = None) -> None:
        """Accept ``head`` if it is on the chain this party saw; remember it if it is newer.

        With ``entries_after(seq)`` (the host's ``GET /v1/audit?after=seq``) a newer head must
        continue the remembered one, so a host cannot restore old state and run it forward
        past the head a party saw; an older head (a reply overtaken by a later one) must be an
        ancestor of it. Without the log, an older head is refused outright. Safe for several
        clients sharing one store: the read-check-write runs under a file lock.

        :raise RollbackDetected: an older head off the chain, a fork, or another enclave key
            for this collaboration.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f"{collaboration_id}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            seen = self.load(collaboration_id)
            if seen is not None and not self._newer(collaboration_id, sig_pub, seen, head,
                                                    entries_after):
                return
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps({"sig_pub": sig_pub.hex(), "seq": head.seq,
                                      "hash": head.hash.hex()}))
            os.replace(tmp, self.path(collaboration_id))

    @staticmethod
    def _newer(collaboration_id: str, sig_pub: bytes, seen: tuple[bytes, AuditHead],
               head: AuditHead, entries_after: Callable[[int], list[bytes]] | None) -> bool:
        """Check ``head`` against the remembered one; True if it should replace it."""
        seen_key, seen_head = seen
        if seen_key != sig_pub:
            raise RollbackDetected(
                "the enclave's signing key changed for this collaboration: its sealed state "
                "was replaced or lost (`cleanroom trust reset` starts over, if all parties agree)")
        if head == seen_head:
            return False
        if head.seq == seen_head.seq:
            raise RollbackDetected(f"audit log forked at entry {head.seq}")
        older, newer = (head, seen_head) if head.seq < seen_head.seq else (seen_head, head)
        if entries_after is None:
            if head.seq < seen_head.seq:
                raise RollbackDetected(
                    f"audit head went back from {seen_head.seq} to {head.seq}: the host restored "
                    "older enclave state")
            return True
        # Entries from the older head's own entry onwards: it must be on the chain to the newer.
        check_on_chain(entries_after(max(older.seq - 1, 0)), sig_pub, collaboration_id, older, newer)
        return head is newer


def check_on_chain(entries: list[bytes], sig_pub: bytes, collaboration_id: str,
                    older: AuditHead, newer: AuditHead) -> None:
    """``older`` and ``newer`` are both heads of one signed, linked chain in ``entries``."""
    hashes = {0: GENESIS}
    try:
        key = Ed25519PublicKey.from_public_bytes(sig_pub)
        previous: AuditHead | None = None
        for raw in entries:
            signed = unpack_document("signed", raw)
            key.verify(signed["signature"], AUDIT_LABEL + signed["body"])
            body = unpack_document("audit_entry", signed["body"])
            if body["collaboration_id"] != collaboration_id:
                raise AuthenticationFailed("entry of another collaboration")
            if previous is not None and (body["seq"] != previous.seq + 1 or body["prev"] != previous.hash):
                raise AuthenticationFailed(f"the chain breaks at entry {previous.seq + 1}")
            previous = AuditHead(body["seq"], entry_hash(signed["body"]))
            hashes[previous.seq] = previous.hash
    except (InvalidSignature, AuthenticationFailed, ProtocolError) as exc:
        raise RollbackDetected(f"the audit log is not one chain from the head this party saw "
                               f"({type(exc).__name__})") from None
    if hashes.get(older.seq) != older.hash or hashes.get(newer.seq) != newer.hash:
        raise RollbackDetected(
            f"audit heads {older.seq} and {newer.seq} are not on one chain: the host restored "
            "or forked the enclave's state")


def default_head_store() -> HeadStore:
    """``$CLEANROOM_HOME/heads`` (default ``~/.cleanroom/heads``)."""
    home = os.environ.get("CLEANROOM_HOME") or Path.home() / ".cleanroom"
    return HeadStore(Path(home) / "heads")
