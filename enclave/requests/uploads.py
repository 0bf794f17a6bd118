"""Upload handlers: open a party's encrypted stream, stage its rows, commit it with a receipt."""

from __future__ import annotations

from typing import Any

from enclave.engine.columns import ColumnarTable
from enclave.requests.envelope import UploadOpener
from enclave.requests.session_state import CollaborationState, Reply, SessionCore, Upload
from protocol.batch import decode_batch
from protocol.crypto import RECEIPT_LABEL
from protocol.errors import (
    CleanroomError,
    ConflictError,
    EnclaveBusy,
    InvalidInput,
    NotFound,
    PolicyViolation,
    ProtocolError,
    StateError,
)
from protocol.policy import Dataset
from protocol.wire import MAX_LIST_PAGE, pack_document

__all__ = ["MAX_UPLOADS_IN_PROGRESS", "UploadHandlers"]

MAX_UPLOADS_IN_PROGRESS = 8


class UploadHandlers(SessionCore):
    def upload_begin(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        if len(self._uploads) >= MAX_UPLOADS_IN_PROGRESS:
            raise EnclaveBusy()
        opener = UploadOpener(body["header"], body["signature"], policy=state.policy, keys=state.keys)
        upload_id = opener.upload_id
        in_progress = any(u.opener.upload_id == upload_id for u in self._uploads.values())
        if upload_id in state.ingested or in_progress:
            raise ConflictError("this upload was already received")
        replay_of = next((e for e in state.manifest if e["upload_id"] == upload_id), None)
        if body.get("replay") and replay_of is None:
            # Stored by the host but never committed here (a crash between the host's rename
            # and the commit): the party never got a receipt, so it must stay absent, not
            # become an accepted upload nobody acknowledged.
            raise StateError("the host replayed an upload this enclave never accepted")
        if replay_of is None:  # a new upload: a signed header is good once, inside the window
            state.replay.check(upload_id, opener.header["created_at"], self._now())
            _admit(state, opener)  # refuse early what the commit would refuse
        dataset = opener.dataset
        stream = self._next_stream
        self._next_stream += 1
        self._uploads[stream] = Upload(
            opener=opener,
            staging=ColumnarTable(dataset.schema(), max_rows=dataset.max_rows,
                                  capacity_hint=max(0, min(opener.header.get("rows_hint", 0),
                                                           dataset.max_rows))),
            dimension_sizes={d.name: len(d.values) for d in dataset.dimensions},
            replay_of=replay_of,
        )
        return "upload_started", {"stream": stream, "upload_id": upload_id}

    def _stream(self, stream: int) -> Upload:
        upload = self._uploads.get(stream)
        if upload is None:
            raise ProtocolError("no upload in progress with that stream id")
        return upload

    def upload_chunk(self, body: dict[str, Any]) -> Reply:
        stream = body["stream"]
        upload = self._stream(stream)
        try:
            if upload.ready:
                raise ProtocolError("the upload already received its last chunk")
            plaintext = upload.opener.open_chunk(body["last"], body["data"])
            batch = decode_batch(plaintext, upload.opener.dataset.schema(), upload.dimension_sizes)
            upload.staging.append(batch)
            if not body["last"]:
                return "upload_chunk_ok", {"stream": stream, "index": body["index"]}
            digest = upload.opener.digest()
            if upload.replay_of is None and upload.staging.rows == 0:
                raise InvalidInput("an upload must hold at least one row")
            if upload.replay_of is not None and (
                upload.replay_of["digest"] != digest or upload.replay_of["rows"] != upload.staging.rows
            ):
                raise StateError("a replayed upload does not match the one the enclave accepted")
            upload.ready = True
        except CleanroomError:
            del self._uploads[stream]  # a failed stream is gone: nothing half-ingested remains
            raise
        return "upload_ready", {"stream": stream, "upload_id": upload.opener.upload_id,
                                "rows": upload.staging.rows, "digest": digest}

    def upload_abort(self, body: dict[str, Any]) -> Reply:
        self._uploads.pop(body["stream"], None)
        return "ok", {}

    def upload_commit(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        upload = self._stream(body["stream"])
        if not upload.ready:
            raise ProtocolError("the upload has not received its last chunk")
        del self._uploads[body["stream"]]
        dataset, header = upload.opener.dataset, upload.opener.header
        original, replace = (None, False) if upload.replay_of else _admit(state, upload.opener)
        gone: dict[str, Any] = {}
        if replace:  # as a deletion of the dataset, in the same commit
            ids, rows = self._forget_dataset(dataset.name)
            gone = {"replaced": ids, "rows_replaced": rows}
        if original is None:  # an idempotent retry stores nothing: it gets the original receipt
            upload.staging.shrink_to_fit()
            _append(state, dataset, upload.staging)  # refuses to pass max_rows, before any change
        entry = upload.replay_of or original
        if entry is None:
            entry = {"upload_id": header["upload_id"], "party": header["party"],
                     "dataset": dataset.name, "rows": upload.staging.rows,
                     "digest": upload.opener.digest(), "accepted_at": self._now(),
                     **{k: header[k] for k in ("idempotency_key", "skipped") if k in header}}
            state.manifest.append(entry)
            self._record("upload_accepted", {**{k: entry[k] for k in _LISTED[:-1]}, **gone})
        if upload.replay_of is None:
            state.replay.remember(header["upload_id"], header["created_at"])
            self._seal()
        state.ingested.add(entry["upload_id"])
        receipt = pack_document("upload_receipt", {
            "collaboration_id": state.policy.collaboration_id, "policy_hash": state.policy.hash,
            **entry, **{k: gone[k] for k in gone if k == "replaced"}, "simulated": self.simulated,
            "audit_head": state.audit.head.to_wire(),
        })
        # A replay after a restart is not news; the host collects any entries left unpublished
        # by the crash with ``audit_flush`` once the replay is done.
        return "upload_receipt", {"receipt": receipt, "signature": state.keys.sign(RECEIPT_LABEL, receipt),
                                  "audit": [] if upload.replay_of else self._publish()}

    def list_uploads(self, body: dict[str, Any]) -> Reply:
        """One page of the manifest, in acceptance order, after the upload id ``after``."""
        state = self._require()
        limit = body.get("limit", MAX_LIST_PAGE)
        if not 1 <= limit <= MAX_LIST_PAGE:
            raise ProtocolError(f"list_uploads: limit must be between 1 and {MAX_LIST_PAGE}")
        ids = [e["upload_id"] for e in state.manifest]
        if "after" in body and body["after"] not in ids:
            raise NotFound("no accepted upload has that id")
        start = ids.index(body["after"]) + 1 if "after" in body else 0
        return "uploads", {"more": start + limit < len(ids), "uploads": [
            {**{k: e[k] for k in _LISTED}, "present": e["upload_id"] in state.ingested}
            for e in state.manifest[start:start + limit]
        ]}


_LISTED = ("upload_id", "party", "dataset", "rows", "digest", "accepted_at")


def _admit(state: CollaborationState, opener: UploadOpener) -> tuple[dict[str, Any] | None, bool]:
    """Apply the header's mode: (the committed upload this one retries, or None; replace?).

    Refuses a second ``create`` (naming the uploads there) and an ``append`` past max_uploads."""
    header, dataset = opener.header, opener.dataset
    mode, key = header.get("mode", "create"), header.get("idempotency_key")
    existing = [e for e in state.manifest if e["dataset"] == dataset.name]
    original = next((e for e in existing if key is not None and e.get("idempotency_key") == key), None)
    if mode not in ("create", "append", "replace"):
        raise ProtocolError("upload_header: mode must be create, append or replace")
    if original is None and mode == "create" and existing:
        named = ", ".join(f"{e['upload_id'].hex()} ({e['rows']} rows)" for e in existing[:5])
        raise ConflictError(f"dataset {dataset.name!r} already has {len(existing)} upload(s): {named}"
                            f"{', ...' if len(existing) > 5 else ''}; upload with --replace or --append")
    if original is None and mode == "append" and len(existing) >= dataset.max_uploads:
        raise PolicyViolation(f"dataset {dataset.name!r} already holds max_uploads "
                              f"({dataset.max_uploads}) uploads; replace or delete it")
    return original, original is None and mode == "replace"


def _append(state: CollaborationState, dataset: Dataset, staging: ColumnarTable) -> None:
    """Add a committed upload's rows to its dataset (``append`` refuses to pass ``max_rows``)."""
    existing = state.tables.get(dataset.name)
    if existing is None:
        state.tables[dataset.name] = staging  # the common case: adopt, no copy
        return
    existing.append({name: staging.column(name) for name, _ in dataset.schema()})
