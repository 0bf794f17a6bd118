"""The published audit log: enclave-signed entries, stored in order and served to parties.

The host only stores what the enclave hands it; it cannot forge, drop or reorder an entry
without parties noticing (each entry is signed and names its predecessor's hash). Entries are
appended to ``<state>/audit/log`` as length-prefixed records and fsynced before the reply that
carried them reaches the client. The enclave may hand over an entry twice (after a crash it
republishes what it had not confirmed); duplicates are dropped by sequence number.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from pathlib import Path

from protocol.errors import CleanroomError, InternalError
from protocol.wire import unpack_document

__all__ = ["AuditStore"]

log = logging.getLogger(__name__)
_LENGTH = struct.Struct(">I")


def _seq(entry: bytes) -> int:
    try:
        return unpack_document("audit_entry", unpack_document("signed", entry)["body"])["seq"]
    except CleanroomError as exc:
        raise InternalError("the enclave sent a malformed audit entry") from exc


class AuditStore:
    def __init__(self, state_dir: Path) -> None:
        directory = Path(state_dir) / "audit"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._path = directory / "log"
        self._lock = threading.Lock()
        self._entries: list[tuple[int, bytes]] = []  # (seq, signed entry), in order
        self._load()

    def _load(self) -> None:
        data = self._path.read_bytes() if self._path.exists() else b""
        offset = 0
        while offset + _LENGTH.size <= len(data):
            (length,) = _LENGTH.unpack_from(data, offset)
            if offset + _LENGTH.size + length > len(data):
                break  # a torn final write: that entry was never acknowledged
            entry = data[offset + _LENGTH.size:offset + _LENGTH.size + length]
            self._entries.append((_seq(entry), entry))
            offset += _LENGTH.size + length
        if offset != len(data):
            log.warning("ignoring a torn record at the end of the audit log")
            with open(self._path, "r+b") as f:
                f.truncate(offset)

    def append(self, entries: list[object]) -> None:
        if not entries:
            return
        with self._lock:
            last = self._entries[-1][0] if self._entries else 0
            fresh: list[tuple[int, bytes]] = []
            for entry in entries:
                if not isinstance(entry, bytes):
                    raise InternalError("the enclave sent a malformed audit entry")
                seq = _seq(entry)
                if seq <= last:
                    continue
                if seq != last + 1:
                    log.error("audit entries %d..%d were never received", last + 1, seq - 1)
                fresh.append((seq, entry))
                last = seq
            if not fresh:
                return
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"".join(_LENGTH.pack(len(e)) + e for _, e in fresh))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._entries.extend(fresh)

    def after(self, seq: int) -> list[bytes]:
        """Entries with a sequence number greater than ``seq``, in order."""
        with self._lock:
            return [entry for s, entry in self._entries if s > seq]

    def __len__(self) -> int:
        return len(self._entries)
