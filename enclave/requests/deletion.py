"""The deletion handler: a party deletes its dataset; the budget spent on it stays spent."""

from __future__ import annotations

import hashlib
from typing import Any

from enclave.requests.envelope import verify_party_signature
from enclave.requests.session_state import Reply, SessionCore
from protocol.crypto import DELETE_LABEL, DELETION_RECEIPT_LABEL
from protocol.errors import PolicyViolation
from protocol.wire import pack_document, unpack_document

__all__ = ["DeletionHandlers"]


class DeletionHandlers(SessionCore):
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
        upload_ids, rows = self._forget_dataset(dataset.name)
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
