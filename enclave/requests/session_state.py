"""The session's core: its injected edges, the collaboration state, and sealing it.

Pure apart from injected edges: ``load_sealed``/``persist`` (read and write the sealed bytes
of one collaboration, keyed by its policy hash, so one measured enclave can serve several
collaborations over time), ``clock``, ``sleep`` and ``random_bytes``. Sealed state is written on
every change *before* the receipt or result that depends on it leaves the enclave, so a crash
can lose an unacknowledged upload but never a charged budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enclave.engine.analyses import NoiseSource
from enclave.engine.columns import ColumnarTable
from enclave.requests.envelope import UploadOpener
from enclave.state import sealing
from enclave.state.audit import AuditLog
from enclave.state.keys import EnclaveKeys
from enclave.state.ledger import BudgetLedger, ledger_for
from enclave.state.replay import ReplayGuard
from protocol.audit import AuditHead
from protocol.errors import ProtocolError, StateError
from protocol.policy import Policy

__all__ = ["CollaborationState", "Reply", "SessionCore", "Upload"]

Reply = tuple[str, dict[str, Any]]
_SEALED_FIELDS = {"policy_hash", "keys", "ledger", "seen", "manifest", "audit_head", "unpublished"}


@dataclass
class Upload:
    """An upload stream in progress: its opener and the rows staged so far."""

    opener: UploadOpener
    staging: ColumnarTable
    dimension_sizes: dict[str, int]
    replay_of: dict[str, Any] | None  # the manifest entry of a host replay after a restart
    ready: bool = False


@dataclass
class CollaborationState:
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


class SessionCore:
    """The edges, the state, and the helpers every handler shares."""

    def __init__(
        self,
        *,
        mode: str,
        quote: Callable[[bytes], bytes | None],
        sealing_key: bytes,
        load_sealed: Callable[[bytes], bytes | None],
        persist: Callable[[bytes, bytes], None],
        noise: NoiseSource,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        sleep: Callable[[float], None],
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
        self._state: CollaborationState | None = None
        self._uploads: dict[int, Upload] = {}
        self._next_stream = 1

    @property
    def simulated(self) -> bool:
        return self.mode != "sgx"

    def _now(self) -> int:
        return int(self._clock())

    def _require(self) -> CollaborationState:
        if self._state is None:
            raise ProtocolError("the enclave has not been initialised with a policy")
        return self._state

    @staticmethod
    def _restore(policy: Policy, saved: dict[str, Any]) -> CollaborationState:
        if saved.get("policy_hash") != policy.hash:
            raise StateError("the sealed state belongs to another policy")
        if not set(saved) >= _SEALED_FIELDS:
            raise StateError("the sealed state was written by an older, incompatible version")
        keys = EnclaveKeys.from_sealed(saved["keys"])
        head = saved["audit_head"]
        return CollaborationState(
            policy=policy,
            keys=keys,
            ledger=ledger_for(policy, saved["ledger"]),
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
        }, self._sealing_key, random_bytes=self._random_bytes))

    def _forget_dataset(self, name: str) -> tuple[list[bytes], int]:
        """Drop a dataset's uploads and rows (deletion, replace); return the ids and row count."""
        state = self._require()
        upload_ids = [e["upload_id"] for e in state.manifest if e["dataset"] == name]
        state.manifest = [e for e in state.manifest if e["dataset"] != name]
        state.ingested.difference_update(upload_ids)
        table = state.tables.pop(name, None)
        return upload_ids, table.rows if table is not None else 0

    def _record(self, kind: str, details: dict[str, Any]) -> None:
        """Append an audit entry; the caller seals before anything that depends on it leaves."""
        state = self._require()
        state.unpublished.append(state.audit.append(kind, self._now(), details))

    def _publish(self) -> list[bytes]:
        """Hand the unpublished entries to the host with this reply."""
        state = self._require()
        entries, state.unpublished = state.unpublished, []
        return entries
