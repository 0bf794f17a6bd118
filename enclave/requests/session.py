"""The enclave's state and the handler of each message (the whole interface, DESIGN.md §7).

Pure apart from injected edges: ``load_sealed``/``persist`` (read and write the sealed bytes
of one collaboration, keyed by its policy hash, so one measured enclave can serve several
collaborations over time), ``clock`` and ``random_bytes``. Sealed state is written on every
change *before* the receipt or result that depends on it leaves the enclave, so a crash can
lose an unacknowledged upload but never a charged budget.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from enclave.engine.analyses import NoiseSource, run_query
from enclave.engine.columns import ColumnarTable
from enclave.requests.authorization import authorize
from enclave.requests.envelope import UploadOpener, verify_party_signature
from enclave.state import sealing
from enclave.state.audit import AuditHead, AuditLog
from enclave.state.keys import EnclaveKeys
from enclave.state.ledger import BudgetLedger
from enclave.state.replay import ReplayGuard
from protocol.batch import decode_batch
from protocol.crypto import (
    DELETE_LABEL,
    DELETION_RECEIPT_LABEL,
    HPKE_SUITE,
    QUERY_LABEL,
    RECEIPT_LABEL,
    RESULT_LABEL,
    result_hpke_info,
)
from protocol.errors import (
    CleanroomError,
    ConflictError,
    EnclaveBusy,
    InvalidInput,
    PolicyViolation,
    ProtocolError,
    StateError,
)
from protocol.policy import Dataset, Policy, parse_policy
from protocol.report_data import report_data as build_report_data
from protocol.wire import pack_document, unpack_document

__all__ = ["MAX_UPLOADS_IN_PROGRESS", "Session"]

MAX_UPLOADS_IN_PROGRESS = 8
_SEALED_FIELDS = {"policy_hash", "keys", "ledger", "seen", "manifest", "audit_head", "unpublished"}
Reply = tuple[str, dict[str, Any]]


@dataclass
class _Upload:
    opener: UploadOpener
    staging: ColumnarTable
    dimension_sizes: dict[str, int]
    replay_of: dict[str, Any] | None
    ready: bool = False


@dataclass
class _State:
    policy: Policy
    keys: EnclaveKeys
    ledger: BudgetLedger
    replay: ReplayGuard
    manifest: list[dict[str, Any]]  # accepted uploads, in acceptance order (sealed)
    audit: AuditLog
    # Signed audit entries not yet handed to the host. Sealed too, so an entry made just before
    # a crash is still published after the restart (the host drops duplicates by sequence).
    unpublished: list[bytes] = field(default_factory=list)
    ingested: set[bytes] = field(default_factory=set)  # upload ids present in memory now
    tables: dict[str, ColumnarTable] = field(default_factory=dict)


class Session:
    def __init__(
        self,
        *,
        mode: str,
        quote: Callable[[bytes], bytes | None],
        sealing_key: bytes,
        load_sealed: Callable[[bytes], bytes | None],
        persist: Callable[[bytes, bytes], None],
        noise: NoiseSource,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.mode = mode
        self._quote = quote
        self._sealing_key = sealing_key
        self._load_sealed = load_sealed
        self._persist = persist
        self._noise = noise
        self._clock = clock
        self._random_bytes = random_bytes
        self._sleep = sleep
        self._started = clock()
        self._state: _State | None = None
        self._uploads: dict[int, _Upload] = {}
        self._next_stream = 1

    @property
    def simulated(self) -> bool:
        return self.mode != "sgx"

    def _now(self) -> int:
        return int(self._clock())

    def _require(self) -> _State:
        if self._state is None:
            raise ProtocolError("the enclave has not been initialised with a policy")
        return self._state

    # -- lifecycle ---------------------------------------------------------------------------

    def init(self, body: dict[str, Any]) -> Reply:
        policy = parse_policy(body["policy"])
        if self._state is not None:
            if self._state.policy.hash != policy.hash:
                raise ConflictError("the enclave already serves another policy")
            return self._ready()
        sealed = self._load_sealed(policy.hash)
        if sealed is not None:
            self._state = self._restore(policy, sealing.unseal(sealed, self._sealing_key))
        else:
            keys = EnclaveKeys.generate()
            self._state = _State(
                policy=policy,
                keys=keys,
                ledger=BudgetLedger(policy.privacy.budget),
                replay=ReplayGuard(),
                manifest=[],
                audit=AuditLog(policy.collaboration_id, keys.sign),
            )
            self._seal()
        return self._ready()

    def _restore(self, policy: Policy, saved: dict[str, Any]) -> _State:
        if saved.get("policy_hash") != policy.hash:
            raise StateError("the sealed state belongs to another policy")
        if not set(saved) >= _SEALED_FIELDS:
            raise StateError("the sealed state was written by an older, incompatible version")
        keys = EnclaveKeys.from_sealed(saved["keys"])
        head = saved["audit_head"]
        return _State(
            policy=policy,
            keys=keys,
            ledger=BudgetLedger(policy.privacy.budget, BudgetLedger.spent_from_sealed(saved["ledger"])),
            replay=ReplayGuard.from_sealed(saved["seen"]),
            manifest=list(saved["manifest"]),
            audit=AuditLog(policy.collaboration_id, keys.sign, AuditHead(head["seq"], head["hash"])),
            unpublished=list(saved["unpublished"]),
        )

    def _seal(self) -> None:
        state = self._require()
        self._persist(state.policy.hash, sealing.seal({
            "policy_hash": state.policy.hash,
            "keys": state.keys.to_sealable(),
            "ledger": state.ledger.to_sealable(),
            "seen": state.replay.to_sealable(),
            "manifest": state.manifest,
            "audit_head": state.audit.head.to_wire(),
            "unpublished": state.unpublished,
        }, self._sealing_key))

    def _record(self, kind: str, details: dict[str, Any]) -> None:
        """Append an audit entry; the caller seals before anything that depends on it leaves."""
        state = self._require()
        state.unpublished.append(state.audit.append(kind, self._now(), details))

    def _publish(self) -> list[bytes]:
        """Hand the unpublished entries to the host with this reply."""
        state = self._require()
        entries, state.unpublished = state.unpublished, []
        return entries

    def audit_flush(self, body: dict[str, Any]) -> Reply:
        """Entries made by a request that then failed (its error reply carries none)."""
        return "audit_entries", {"audit": self._publish()}

    def _ready(self) -> Reply:
        state = self._require()
        return "ready", {"mode": self.mode, "policy_hash": state.policy.hash,
                         "enc_pub": state.keys.enc_pub, "sig_pub": state.keys.sig_pub}

    def health(self, body: dict[str, Any]) -> Reply:
        datasets = len(self._state.tables) if self._state else 0
        return "status", {"mode": self.mode, "uptime_s": int(self._clock() - self._started),
                          "datasets": datasets, "uploads_in_progress": len(self._uploads)}

    def attest(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        nonce = body.get("nonce", bytes(32))
        report_data = build_report_data(state.keys.enc_pub, state.keys.sig_pub, state.policy.hash, nonce)
        return "attestation", {
            "mode": self.mode, "enc_pub": state.keys.enc_pub, "sig_pub": state.keys.sig_pub,
            "policy": state.policy.raw, "policy_hash": state.policy.hash, "nonce": nonce,
            "report_data": report_data, "quote": self._quote(report_data),
        }

    # -- uploads -----------------------------------------------------------------------------

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
        self._uploads[stream] = _Upload(
            opener=opener,
            staging=ColumnarTable(dataset.schema(), max_rows=dataset.max_rows,
                                  capacity_hint=max(0, min(opener.header.get("rows_hint", 0),
                                                           dataset.max_rows))),
            dimension_sizes={d.name: len(d.values) for d in dataset.dimensions},
            replay_of=replay_of,
        )
        return "upload_started", {"stream": stream, "upload_id": upload_id}

    def _stream(self, stream: int) -> _Upload:
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
        self._append(state, dataset, upload.staging)
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

    @staticmethod
    def _append(state: _State, dataset: Dataset, staging: ColumnarTable) -> None:
        existing = state.tables.get(dataset.name)
        if existing is None:
            state.tables[dataset.name] = staging  # the common case: adopt, no copy
            return
        if existing.rows + staging.rows > dataset.max_rows:
            raise InvalidInput(f"dataset {dataset.name!r} would exceed its max_rows")
        existing.append({name: staging.column(name) for name, _ in dataset.schema()})

    def list_uploads(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        return "uploads", {"uploads": [
            {**entry, "present": entry["upload_id"] in state.ingested} for entry in state.manifest
        ]}

    # -- queries -----------------------------------------------------------------------------

    def query(self, body: dict[str, Any]) -> Reply:
        state = self._require()
        request_bytes = body["request"]
        request = unpack_document("query_request", request_bytes)
        verify_party_signature(state.policy, request["party"], QUERY_LABEL, request_bytes,
                               body["signature"])
        query_id = hashlib.sha256(request_bytes).digest()
        plan = authorize(state.policy, request)
        missing = [e for e in state.manifest if e["upload_id"] not in state.ingested]
        if missing:
            raise StateError(f"{len(missing)} accepted upload(s) have not been replayed by the host yet")
        for name in plan.charged_datasets:
            if name not in state.tables:
                raise ConflictError(f"dataset {name!r} has no accepted upload yet")
        state.replay.check_and_remember(query_id, request["issued_at"], self._now())
        state.ledger.charge(plan.charged_datasets, plan.cost, plan.delta)
        self._record("query_run", {"query_id": query_id, "party": plan.requested_by,
                                   "analysis": plan.analysis.id, "params": plan.public_params()})
        self._record("budget_charged", {"query_id": query_id, "datasets": list(plan.charged_datasets),
                                        "unit": state.policy.privacy.unit, "amount": str(plan.cost),
                                        "delta": str(plan.delta)})
        self._seal()  # the budget is spent before any data is read, and stays spent
        head = state.audit.head  # the result carries the head that records its charge

        release = run_query(plan, state.policy, state.tables, self._noise, self._random_bytes,
                            sleep=self._sleep)
        privacy = {**release.privacy, "budget_remaining": {
            name: str(state.ledger.remaining(name)) for name in plan.charged_datasets}}
        result = pack_document("result", {
            "collaboration_id": state.policy.collaboration_id, "policy_hash": state.policy.hash,
            "query_id": query_id, "analysis": plan.analysis.id, "kind": plan.analysis.kind,
            "requested_by": plan.requested_by, "recipients": list(plan.analysis.recipients),
            "params": plan.public_params(), "simulated": self.simulated,
            "created_at": self._now(), "columns": release.columns, "rows": release.rows,
            "privacy": privacy, "audit_head": head.to_wire(),
        })
        signed = pack_document("signed", {"body": result,
                                          "signature": state.keys.sign(RESULT_LABEL, result)})
        sealed = {}
        for recipient in plan.analysis.recipients:
            party = state.policy.party(recipient)
            assert party is not None
            sealed[recipient] = HPKE_SUITE.encrypt(
                signed, X25519PublicKey.from_public_bytes(party.result_key),
                info=result_hpke_info(state.policy.collaboration_id, query_id, recipient),
            )
        self._record("result_released", {"query_id": query_id, "recipients": list(sealed),
                                          "result_hash": hashlib.sha256(result).digest()})
        self._seal()
        return "query_result", {"query_id": query_id, "results": sealed, "audit": self._publish()}

    # -- deletion ----------------------------------------------------------------------------

    def delete(self, body: dict[str, Any]) -> Reply:
        """A party deletes its dataset: rows leave memory, uploads leave the manifest.

        The budget already spent on the dataset stays spent: deleting and uploading again must
        not buy a fresh budget.
        """
        state = self._require()
        request_bytes = body["request"]
        request = unpack_document("delete_request", request_bytes)
        verify_party_signature(state.policy, request["party"], DELETE_LABEL, request_bytes,
                               body["signature"])
        if request["collaboration_id"] != state.policy.collaboration_id or (
                request["policy_hash"] != state.policy.hash):
            raise PolicyViolation("the request was made for another collaboration or policy")
        dataset = state.policy.dataset(request["dataset"])
        if dataset is None or dataset.owner != request["party"]:
            raise PolicyViolation("a party may delete only its own datasets")
        request_id = hashlib.sha256(request_bytes).digest()
        state.replay.check_and_remember(request_id, request["issued_at"], self._now())
        removed = [e for e in state.manifest if e["dataset"] == dataset.name]
        state.manifest = [e for e in state.manifest if e["dataset"] != dataset.name]
        upload_ids = [e["upload_id"] for e in removed]
        state.ingested.difference_update(upload_ids)
        table = state.tables.pop(dataset.name, None)
        rows = table.rows if table is not None else 0
        for stream, upload in list(self._uploads.items()):
            if upload.opener.dataset.name == dataset.name:
                del self._uploads[stream]
        self._record("dataset_deleted", {"party": request["party"], "dataset": dataset.name,
                                         "upload_ids": upload_ids, "rows": rows})
        self._seal()
        receipt = pack_document("deletion_receipt", {
            "collaboration_id": state.policy.collaboration_id, "policy_hash": state.policy.hash,
            "request_id": request_id, "party": request["party"], "dataset": dataset.name,
            "upload_ids": upload_ids, "rows_deleted": rows, "deleted_at": self._now(),
            "simulated": self.simulated, "audit_head": state.audit.head.to_wire(),
        })
        return "deleted", {"receipt": receipt,
                           "signature": state.keys.sign(DELETION_RECEIPT_LABEL, receipt),
                           "upload_ids": upload_ids, "audit": self._publish()}
