"""The party-side client of the clean room's host HTTP API (docs/http-api.md).

Nothing here trusts the host: the client verifies the enclave's attestation
(``cleanroom.enclave_verification``), pins its keys (``VerifiedEnclave``), encrypts to them, and
checks every receipt and result against them. The bytes travel through
``cleanroom.http_transport``.

Randomness and the clock are read only as defaults: each request's nonce, ``issued_at`` and
an upload's id, data key and ``created_at`` can be passed in, so a request can be reproduced
byte for byte (an upload up to HPKE's own ephemeral key, see ``cleanroom.upload_crypto``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cleanroom.audit import AuditHead, HeadStore, default_head_store
from cleanroom.client_queries import REQUEST_NONCE_BYTES, QueryCalls, check_pinned, request_nonce
from cleanroom.enclave_verification import evaluate_enclave
from cleanroom.http_transport import HostConnection, b64_field
from cleanroom.keys import PartyKeys
from cleanroom.receipts import Receipt, verify_deletion_receipt, verify_receipt
from cleanroom.tables import open_table
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE, UploadEncryptor
from protocol.crypto import DELETE_LABEL
from protocol.errors import (
    InvalidInput,
    ProtocolError,
)
from protocol.policy import Policy
from protocol.wire import pack_document

if TYPE_CHECKING:
    from attestation.verifier.verify import VerificationReport, VerifiedEnclave

__all__ = ["ATTESTATION_NONCE_BYTES", "REQUEST_NONCE_BYTES", "Client", "UploadProgress", "require_party"]

ATTESTATION_NONCE_BYTES = 32  # the fresh nonce bound into the quote


@dataclass(frozen=True)
class UploadProgress:
    """Passed to the ``progress`` callback after each chunk (and once before the first)."""

    rows_done: int
    bytes_done: int  # of the source file
    bytes_total: int | None
    sent_bytes: int  # ciphertext records sent so far
    elapsed: float  # seconds
    ignored_columns: tuple[str, ...]  # source columns the policy does not name: never uploaded

    @property
    def throughput(self) -> float:
        """Source bytes per second."""
        return self.bytes_done / self.elapsed if self.elapsed > 0 else 0.0


def require_party(policy: Policy, keys: PartyKeys) -> None:
    """Refuse, before anything is read or sent, keys of a party the policy does not name.

    :raise InvalidInput: the policy names no party with these keys' id.
    """
    if policy.party(keys.party_id) is None:
        raise InvalidInput(f"the policy has no party {keys.party_id!r}")


class Client(QueryCalls):
    """HTTP client for one clean-room host. Methods raise ``CleanroomError`` subclasses.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080`` (the ``/v1`` prefix is added here).
        timeout: seconds for connecting and for each socket read or write.
        head_store: where the enclave key and the highest audit head seen per collaboration
            are kept (default ``$CLEANROOM_HOME/heads``, i.e. ``~/.cleanroom/heads``).
    """

    def __init__(self, base_url: str, *, timeout: float = 120.0,
                 head_store: HeadStore | None = None) -> None:
        self._http = HostConnection(base_url, timeout)
        self.base_url = self._http.base_url
        self.timeout = timeout
        self.last_bundle: dict[str, Any] | None = None  # the bundle behind the last accepted verify
        # The highest audit head seen per collaboration: what exposes a rolled-back enclave.
        self.head_store = head_store if head_store is not None else default_head_store()

    @property
    def http(self) -> HostConnection:
        """The connection to the host (for the approvals and budget calls)."""
        return self._http

    # --- API ------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._http.request("GET", "/v1/health")

    def attestation(self, nonce: bytes | None = None) -> dict[str, Any]:
        """The host's attestation bundle, optionally for a fresh 32-byte nonce (unverified)."""
        query = "" if nonce is None else "?" + urllib.parse.urlencode({"nonce": nonce.hex()})
        bundle = self._http.request("GET", "/v1/attestation" + query)
        if not isinstance(bundle, dict):
            raise ProtocolError("the attestation bundle is not a JSON object")
        return bundle

    def attestation_report(
        self,
        agreed_policy: bytes,
        verifier_policy: Any,
        *,
        now: int | None = None,
        fresh_nonce: bool = True,
        nonce: bytes | None = None,
        collateral_for: Callable[[bytes], str | None] | None = None,
    ) -> VerificationReport:
        """Fetch the attestation and verify it; return the report, accepted or refused.

        The checks are ``cleanroom.enclave_verification.evaluate_enclave``: the attestation, then
        the enclave key this party remembers for the collaboration. A fresh random nonce
        (``nonce``, default 32 random bytes) is requested, so the host cannot replay an old
        bundle from an enclave that has since been replaced; ``fresh_nonce=False`` asks for none.
        ``collateral_for(quote)`` may supply the party's own collateral (a file, or fetched from
        a PCCS) instead of the host's. ``now`` defaults to the clock.
        """
        if fresh_nonce and nonce is None:
            nonce = secrets.token_bytes(ATTESTATION_NONCE_BYTES)
        bundle = self.attestation(nonce if fresh_nonce else None)
        report = evaluate_enclave(bundle, agreed_policy=agreed_policy,
                                  verifier_policy=verifier_policy,
                                  now=int(time.time()) if now is None else now,
                                  head_store=self.head_store, nonce=nonce if fresh_nonce else None,
                                  collateral_for=collateral_for)
        if report.accepted:
            self.last_bundle = bundle
        return report

    def verify(
        self,
        agreed_policy: bytes,
        verifier_policy: Any,
        *,
        now: int | None = None,
        fresh_nonce: bool = True,
        nonce: bytes | None = None,
        collateral_for: Callable[[bytes], str | None] | None = None,
    ) -> VerifiedEnclave:
        """``attestation_report(...).enclave()``: the ``VerifiedEnclave`` whose keys to pin.

        :raise CleanroomError: the typed error of the first refused check (an
            ``AttestationError`` subclass, ``RollbackDetected``, or ``ProtocolError``).
        """
        return self.attestation_report(agreed_policy, verifier_policy, now=now,
                                       fresh_nonce=fresh_nonce, nonce=nonce,
                                       collateral_for=collateral_for).enclave()

    def _observe(self, policy: Policy, sig_pub: bytes, head: Any) -> None:
        self.head_store.observe(policy.collaboration_id, sig_pub, AuditHead.from_wire(head),
                                entries_after=self.audit_entries)

    def audit_entries(self, after: int = 0) -> list[bytes]:
        """The published audit entries after sequence number ``after`` (unverified)."""
        doc = self._http.request("GET", f"/v1/audit?after={int(after)}")
        if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
            raise ProtocolError("the audit log response is malformed")
        return [b64_field(entry, "an audit entry") for entry in doc["entries"]]

    def delete(self, enclave: Any, keys: PartyKeys, policy: Policy, dataset_name: str,
               *, now: int | None = None, nonce: bytes | None = None) -> dict[str, Any]:
        """Delete this party's dataset inside the enclave and on the host; verify the receipt.

        ``nonce`` (16 bytes) and ``now`` (``issued_at``) default to fresh randomness and the clock.
        """
        check_pinned(enclave, policy)
        request = pack_document("delete_request", {
            "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
            "party": keys.party_id, "dataset": dataset_name, "nonce": request_nonce(nonce),
            "issued_at": int(time.time()) if now is None else now,
        })
        response = self._http.request("POST", "/v1/deletions", {
            "request": base64.b64encode(request).decode(),
            "signature": base64.b64encode(keys.sign(DELETE_LABEL, request)).decode(),
        })
        if not isinstance(response, dict):
            raise ProtocolError("the deletion response is not a JSON object")
        body = verify_deletion_receipt(response, enclave.sig_pub, policy,
                                       request_id=hashlib.sha256(request).digest(),
                                       party=keys.party_id, dataset=dataset_name)
        self._observe(policy, enclave.sig_pub, body["audit_head"])
        return body

    def upload(
        self,
        enclave: Any,
        keys: PartyKeys,
        policy: Policy,
        dataset_name: str,
        source_path: str | os.PathLike[str],
        *,
        progress: Callable[[UploadProgress], None] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        default_country_code: str | None = None,
        now: int | None = None,
        upload_id: bytes | None = None,
        data_key: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
        mode: str = "create",
        idempotency_key: bytes | None = None,
        skip_invalid: bool = False,
        skipped: dict[str, int] | None = None,
        delimiter: str = ",",
    ) -> Receipt:
        """Read, hash, encrypt and stream one dataset file; return the verified receipt.

        ``skip_invalid``: leave out the rows holding a refused cell instead of stopping; their
        count per column (``skipped``, from ``cleanroom.validation.validate``, which runs first
        if it is not given) is signed into the header and must come back in the receipt.

        ``mode``: ``create`` (the enclave refuses it if the dataset already has uploads, naming
        them), ``append`` or ``replace`` (the earlier uploads are deleted at the commit). The
        ``idempotency_key`` defaults to a hash of the party, dataset, mode and file bytes, so
        running the same upload again after a lost receipt returns the receipt of the upload
        the enclave already committed instead of storing its rows twice.

        The file is checked against the policy before any connection is made (columns, the first
        block of rows). A problem found later aborts the request mid-stream: the host never gets
        a last chunk, so nothing is accepted. ``now``, ``upload_id`` and ``data_key`` go to
        ``UploadEncryptor`` (defaults: the clock, fresh randomness); ``clock`` times the progress.
        """
        from protocol.batch import encode_batch, rows_per_batch

        check_pinned(enclave, policy)
        require_party(policy, keys)
        dataset = policy.dataset(dataset_name)
        if dataset is None:
            raise InvalidInput(f"the policy has no dataset {dataset_name!r}; it has: "
                               + ", ".join(d.name for d in policy.datasets))
        schema = dataset.schema()
        if idempotency_key is None:
            idempotency_key = _idempotency_key(keys.party_id, dataset.name, mode, source_path)
        if skip_invalid and skipped is None:  # the header states them, so count them first
            from cleanroom.validation import validate

            skipped = validate(source_path, dataset, default_country_code=default_country_code,
                               delimiter=delimiter).skipped
        started = clock()
        with open_table(source_path, dataset, default_country_code=default_country_code,
                        delimiter=delimiter, skip_invalid=skip_invalid) as table:
            rows_hint = table.rows_estimate()
            if skip_invalid and rows_hint is not None and skipped:
                rows_hint = max(rows_hint - sum(skipped.values()), 0)
            encryptor = UploadEncryptor(keys, policy, dataset, enclave.enc_pub,
                                        chunk_size=chunk_size, rows_hint=rows_hint,
                                        now=now, upload_id=upload_id, data_key=data_key,
                                        mode=mode, idempotency_key=idempotency_key,
                                        skipped=skipped if skip_invalid else None)
            def encoded() -> Iterator[bytes]:
                for columns in table.blocks(rows_per_batch(schema, chunk_size)):
                    yield encode_batch(columns, schema)
                # Raised before the last chunk goes out, so the host never gets a whole upload.
                if skip_invalid and table.skipped != skipped:
                    raise InvalidInput(f"{os.fspath(source_path)}: the file changed while it was "
                                       "uploaded (other rows were invalid than counted first)")

            batches = encoded()
            first = next(batches, None)
            if first is None:
                raise InvalidInput(f"{os.fspath(source_path)}: the file has a header but no rows")

            def report() -> None:
                if progress is not None:
                    progress(UploadProgress(table.rows_read, table.bytes_read, table.total_bytes,
                                            encryptor.sent_bytes, clock() - started,
                                            table.extra_columns))

            def body() -> Iterator[bytes]:
                report()
                for record in encryptor.records(itertools.chain([first], batches)):
                    yield record
                    report()

            response = self._http.post_stream("/v1/uploads", body())
            rows = table.rows_uploaded
        if not encryptor.finished:
            raise ProtocolError("the host answered before the whole upload was sent")
        if not isinstance(response, dict):
            raise ProtocolError("the upload response is not a JSON object")
        receipt = verify_receipt(response, enclave.sig_pub, policy, upload_id=encryptor.upload_id,
                                 party=keys.party_id, dataset=dataset.name, rows=rows,
                                 digest=encryptor.digest, idempotency_key=idempotency_key,
                                 skipped=skipped if skip_invalid else None)
        self._observe(policy, enclave.sig_pub, receipt.audit_head)
        return receipt

    def uploads(self) -> list[dict[str, Any]]:
        """Accepted uploads as the host lists them (informational: not signed), every page."""
        uploads: list[dict[str, Any]] = []
        path = "/v1/uploads"
        while True:
            listing = self._http.request("GET", path)
            if not isinstance(listing, dict) or not isinstance(listing.get("uploads"), list):
                raise ProtocolError("the uploads listing is malformed")
            uploads.extend(listing["uploads"])
            if not listing.get("more") or not listing["uploads"]:
                return uploads
            last = listing["uploads"][-1]
            if not isinstance(last, dict) or not isinstance(last.get("upload_id"), str):
                raise ProtocolError("the uploads listing is malformed")
            path = "/v1/uploads?" + urllib.parse.urlencode({"after": last["upload_id"]})

def _idempotency_key(party: str, dataset: str, mode: str, path: str | os.PathLike[str]) -> bytes:
    """16 bytes that are the same for the same party, dataset, mode and file contents."""
    digest = hashlib.sha256(b"cleanroom/v1/upload-idempotency\x00")
    for part in (party, dataset, mode):
        digest.update(part.encode() + b"\x00")
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(block)
    return digest.digest()[:16]
