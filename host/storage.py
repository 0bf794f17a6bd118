"""Durable storage of accepted upload ciphertexts and of query results (docs/design.md, durability).

Layout under the state directory::

    uploads/<upload_id hex>.upload   the exact HTTP record stream of an accepted upload
    uploads/.<random>.partial        an upload still streaming (deleted on failure or restart)
    uploads/index                    append-only acceptance order, one upload id hex per line
    uploads/quarantine/              stored uploads the enclave refused on replay
    results/<query_id hex>.json      query responses, for GET /v1/results/<query_id>
    results/index                    append-only storage order of the responses, one JSON line
                                     each: query id, the host's time, recipients (GET /v1/results)

Why an append-only index rather than file times: mtimes change on copy or restore, have coarse
resolution on some file systems and follow a clock the host does not control, while the index
records the order commits really happened in (the caller holds ``commit_lock`` across the rename,
the index append and the enclave's commit). A crash can leave at most a torn last line, which the
reader ignores; ids listed without a file (removed, quarantined) are skipped; a file missing from
the index (index lost) is replayed last, ordered by name, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from protocol.errors import ConflictError, InternalError, NotFound
from protocol.upload import RECORD_HEADER

__all__ = ["ResultStore", "UploadStore", "UploadWriter"]

log = logging.getLogger(__name__)

_UPLOAD_ID_HEX = re.compile(r"[0-9a-f]{32}")
_QUERY_ID_HEX = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".upload"
_PARTIAL = ".partial"


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory entry itself is on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{secrets.token_hex(8)}{_PARTIAL}")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class UploadWriter:
    """Streams one upload's records to a temp file; the file is deleted unless committed."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f".{secrets.token_hex(16)}{_PARTIAL}"
        self._file: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 - closed in commit/discard
        self.size = 0
        self.committed = False

    def write_record(self, *parts: bytes) -> None:
        """Append one record (length prefix, then the parts concatenated)."""
        if self._file is None:
            raise InternalError("upload file already closed")
        self._file.write(RECORD_HEADER.pack(sum(len(p) for p in parts)))
        for part in parts:
            self._file.write(part)
        self.size += RECORD_HEADER.size + sum(len(p) for p in parts)

    def _seal(self) -> None:
        if self._file is None:
            raise InternalError("upload file already closed")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None

    def discard(self) -> None:
        """Close and delete the temp file if it was not committed; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self.committed:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> UploadWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


class UploadStore:
    """Accepted uploads under ``<state>/uploads``; thread-safe."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "uploads"
        self.quarantine_dir = self.directory / "quarantine"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.quarantine_dir.mkdir(exist_ok=True, mode=0o700)
        self._index = self.directory / "index"
        # Held by the caller across rename + index + enclave commit, so index order = commit order.
        self.commit_lock = threading.RLock()
        self._remove_partials()

    def _remove_partials(self) -> None:
        # A temp file surviving a restart belongs to an upload that was never acknowledged.
        for path in self.directory.glob(f".*{_PARTIAL}"):
            log.info("removing unfinished upload %s", path.name)
            path.unlink(missing_ok=True)

    def path_for(self, upload_id: bytes) -> Path:
        if len(upload_id) != 16:
            raise InternalError("upload id must be 16 bytes")
        return self.directory / f"{upload_id.hex()}{_SUFFIX}"

    def new_upload(self) -> UploadWriter:
        return UploadWriter(self.directory)

    def commit(self, writer: UploadWriter, upload_id: bytes) -> Path:
        """fsync the temp file, rename it to its final name, fsync the directory, index it.

        Raises:
            ConflictError: an upload with this id is already stored (never overwritten).
        """
        final = self.path_for(upload_id)
        with self.commit_lock:
            if final.exists():
                raise ConflictError("an upload with this id is already stored")
            writer._seal()
            os.replace(writer.path, final)
            writer.committed = True
            _fsync_dir(self.directory)
            self._append_index(upload_id)
        return final

    def _append_index(self, upload_id: bytes) -> None:
        created = not self._index.exists()
        fd = os.open(self._index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{upload_id.hex()}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.directory)

    def remove(self, upload_id: bytes) -> None:
        """Delete a stored upload that the enclave refused to commit (never acknowledged)."""
        with self.commit_lock:
            self.path_for(upload_id).unlink(missing_ok=True)
            _fsync_dir(self.directory)

    def quarantine(self, upload_id: bytes) -> Path | None:
        """Move a stored upload out of the replay set, keeping it for an operator to inspect."""
        with self.commit_lock:
            source = self.path_for(upload_id)
            if not source.exists():
                return None
            target = self.quarantine_dir / source.name
            if target.exists():
                target = self.quarantine_dir / f"{source.stem}.{secrets.token_hex(4)}{_SUFFIX}"
            os.replace(source, target)
            _fsync_dir(self.quarantine_dir)
            _fsync_dir(self.directory)
        log.warning("quarantined stored upload %s", upload_id.hex())
        return target

    def accepted(self) -> list[bytes]:
        """Ids of the stored uploads in acceptance order."""
        with self.commit_lock:
            try:
                text = self._index.read_bytes().decode("ascii", errors="replace")
            except FileNotFoundError:
                text = ""
            on_disk = {p.name[: -len(_SUFFIX)] for p in self.directory.glob(f"*{_SUFFIX}")}
        # Only newline-terminated lines count: a torn final write is not an entry.
        lines = text.split("\n")[:-1]
        position: dict[str, int] = {}
        for number, line in enumerate(lines):
            if _UPLOAD_ID_HEX.fullmatch(line) and line in on_disk:
                # An id can appear twice if a refused upload was later sent again; its stored
                # file is from the last attempt, so the last appearance is its commit position.
                position[line] = number
        ordered = sorted(position, key=position.__getitem__)
        unindexed = sorted(n for n in on_disk if n not in position and _UPLOAD_ID_HEX.fullmatch(n))
        if unindexed:
            log.warning("%d stored uploads missing from the index; replaying them last",
                        len(unindexed))
        return [bytes.fromhex(h) for h in ordered + unindexed]

    @contextlib.contextmanager
    def open(self, upload_id: bytes) -> Iterator[BinaryIO]:
        """The stored record stream of one upload, for replay."""
        with open(self.path_for(upload_id), "rb") as f:
            yield f


class ResultStore:
    """Query responses under ``<state>/results``, each written atomically, listed in storage order.

    The listing (``page``) says only what the host itself knows: each query id, when the host
    stored it (its own clock: informational, never signed) and which parties it holds a
    ciphertext for. Responses stored by a host without the index (older state) are indexed at
    start, in file-time order.
    """

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(state_dir) / "results"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._index = self.directory / "index"
        self._clock = clock
        self._lock = threading.Lock()
        self._index_unlisted()

    def put(self, query_id: bytes, document: dict[str, Any]) -> None:
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        _atomic_write(self.directory / f"{query_id.hex()}.json", data)
        self._append({"query_id": query_id.hex(), "created_at": int(self._clock()),
                      "recipients": sorted(document.get("results", {}))})

    def get(self, query_id_hex: str) -> dict[str, Any] | None:
        """The stored response, or None; ``query_id_hex`` must already be 64 lowercase hex."""
        if not _QUERY_ID_HEX.fullmatch(query_id_hex):
            raise InternalError("query id must be validated by the caller")
        try:
            return json.loads((self.directory / f"{query_id_hex}.json").read_bytes())
        except FileNotFoundError:
            return None

    def page(self, *, recipient: str | None = None, after: str | None = None,
             limit: int = 1000) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` entries stored after query id ``after``, for ``recipient`` if given,
        and whether more follow.

        :raise NotFound: ``after`` is not a listed query id.
        """
        entries = self._entries()
        start = 0
        if after is not None:
            position = next((i for i, e in enumerate(entries) if e["query_id"] == after), None)
            if position is None:
                raise NotFound("after is not a listed query id")
            start = position + 1
        selected = [e for e in entries[start:] if recipient is None or recipient in e["recipients"]]
        return selected[:limit], len(selected) > limit

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        with self._lock:
            created = not self._index.exists()
            fd = os.open(self._index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.directory)

    def _entries(self) -> list[dict[str, Any]]:
        """The index in order, once per query id; a torn or foreign line is not an entry."""
        with self._lock:
            try:
                text = self._index.read_bytes().decode("utf-8", errors="replace")
            except FileNotFoundError:
                text = ""
        entries: list[dict[str, Any]] = []
        seen: set[str] = set()
        for line in text.split("\n")[:-1]:  # only newline-terminated lines count
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (isinstance(entry, dict) and isinstance(entry.get("query_id"), str)
                    and _QUERY_ID_HEX.fullmatch(entry["query_id"]) and entry["query_id"] not in seen
                    and isinstance(entry.get("created_at"), int)
                    and isinstance(entry.get("recipients"), list)
                    and all(isinstance(r, str) for r in entry["recipients"])):
                seen.add(entry["query_id"])
                entries.append({k: entry[k] for k in ("query_id", "created_at", "recipients")})
        return entries

    def _index_unlisted(self) -> None:
        listed = {e["query_id"] for e in self._entries()}
        unlisted = [p for p in self.directory.glob("*.json")
                    if _QUERY_ID_HEX.fullmatch(p.stem) and p.stem not in listed]
        for path in sorted(unlisted, key=lambda p: (p.stat().st_mtime, p.name)):
            try:
                recipients = sorted(json.loads(path.read_bytes()).get("results", {}))
            except (OSError, ValueError, AttributeError):
                log.warning("stored result %s is unreadable; not listed", path.name)
                continue
            self._append({"query_id": path.stem, "created_at": int(path.stat().st_mtime),
                          "recipients": recipients})
