"""Upload handlers: open a party's encrypted stream, stage its rows, commit it with a receipt."""

from __future__ import annotations

from typing import Any

from enclave.engine.columns import ColumnarTable
from enclave.requests.envelope import UploadOpener
from enclave.requests.session_state import CollaborationState, Reply, SessionCore, Upload
from protocol.batch import decode_batch
from protocol.crypto import RECEIPT_LABEL
from protocol.errors import CleanroomError, ConflictError, EnclaveBusy, ProtocolError, StateError
from protocol.policy import Dataset
from protocol.wire import pack_document

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
        dataset = upload.opener.dataset
        upload.staging.shrink_to_fit()
        _append(state, dataset, upload.staging)
        entry = upload.replay_of
        replayed = entry is not None
        if entry is None:
            header = upload.opener.header
            entry = {"upload_id": header["upload_id"], "party": header["party"],
                     "dataset": dataset.name, "rows": upload.staging.rows,
                     "digest": upload.opener.digest(), "accepted_at": self._now()}
            state.manifest.append(entry)
            self._record("upload_accepted", {k: entry[k] for k in (
                "upload_id", "party", "dataset", "rows", "digest")})
            self._seal()
        state.ingested.add(entry["upload_id"])
        receipt = pack_document("upload_receipt", {
            "collaboration_id": state.policy.collaboration_id, "policy_hash": state.policy.hash,
            **entry, "simulated": self.simulated, "audit_head": state.audit.head.to_wire(),
        })
        # A replay after a restart is not news; the host collects any entries left unpublished
        # by the crash with ``audit_flush`` once the replay is done.
        return "upload_receipt", {"receipt": receipt, "signature": state.keys.sign(RECEIPT_LABEL, receipt),
                                  "audit": [] if replayed else self._publish()}

    def list_uploads(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        return "uploads", {"uploads": [
            {**entry, "present": entry["upload_id"] in state.ingested} for entry in state.manifest
        ]}


def _append(state: CollaborationState, dataset: Dataset, staging: ColumnarTable) -> None:
    """Add a committed upload's rows to its dataset (``append`` refuses to pass ``max_rows``)."""
    existing = state.tables.get(dataset.name)
    if existing is None:
        state.tables[dataset.name] = staging  # the common case: adopt, no copy
        return
    existing.append({name: staging.column(name) for name, _ in dataset.schema()})
