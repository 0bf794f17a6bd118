"""The party-side client of the clean room's host HTTP API (docs/api-contract.md).

Nothing here trusts the host: the client verifies the enclave's attestation, pins its keys
(``VerifiedEnclave``), encrypts to them, and checks every receipt and result against them.

Transport is the standard library. JSON calls use ``urllib.request``. An upload is streamed
with ``http.client`` and chunked transfer encoding: the ciphertext size is only known after the
whole file is read, and a computed ``Content-Length`` would mean reading (normalising and
hashing) the file twice or spooling the ciphertext to disk. Chunked bodies are read by both
gunicorn and Werkzeug (they set ``wsgi.input_terminated``). ``http.client`` also lets the client
read an early error response (say, a refused signature) after the host stops reading the body.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cleanroom.audit import AuditHead, HeadStore, default_head_store
from cleanroom.keys import PartyKeys
from cleanroom.results import (
    Receipt,
    Result,
    open_result,
    verify_deletion_receipt,
    verify_receipt,
)
from cleanroom.tables import open_table
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE, UploadEncryptor
from protocol.crypto import DELETE_LABEL, QUERY_LABEL
from protocol.errors import (
    AuthenticationFailed,
    CleanroomError,
    EnclaveUnavailable,
    InvalidInput,
    NotFound,
    PolicyMismatch,
    ProtocolError,
    RollbackDetected,
    error_from_wire,
)
from protocol.policy import Policy, parse_policy
from protocol.wire import pack_document

__all__ = ["Client", "UploadProgress"]

_MAX_JSON_RESPONSE = 256 * 1024 * 1024  # results can be large, but not unbounded


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


def _error_from_body(status: int, raw: bytes) -> CleanroomError:
    try:
        payload = json.loads(raw)
        return error_from_wire(payload["error"])
    except (ValueError, KeyError, TypeError):
        return ProtocolError(f"the host answered HTTP {status} without an error body")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ProtocolError("the host's response is not JSON") from None


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} is missing from the host's response")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{what} in the host's response is not base64") from None


def _check_pinned(enclave: Any, policy: Policy) -> None:
    if enclave.policy_hash != policy.hash:
        raise PolicyMismatch("the verified enclave runs a different policy than the one given")


class Client:
    """HTTP client for one clean-room host. Methods raise ``CleanroomError`` subclasses.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080`` (the ``/v1`` prefix is added here).
        timeout: seconds for connecting and for each socket read or write.
        head_store: where the highest audit head seen per collaboration is kept
            (default ``$CLEANROOM_HOME/heads``, i.e. ``~/.cleanroom/heads``).
    """

    def __init__(self, base_url: str, *, timeout: float = 120.0,
                 head_store: HeadStore | None = None) -> None:
        try:
            parsed = urllib.parse.urlsplit(base_url)
            parsed.port  # noqa: B018 - validates the port now rather than at the first request
        except ValueError:
            raise InvalidInput("host URL must look like http://HOST:PORT or https://HOST:PORT") from None
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput("host URL must look like http://HOST:PORT or https://HOST:PORT")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._split = parsed
        self.last_bundle: dict[str, Any] | None = None  # the bundle behind the last verify()
        # The highest audit head seen per collaboration: what exposes a rolled-back enclave.
        self.head_store = head_store if head_store is not None else default_head_store()

    # --- transport ------------------------------------------------------------------------------

    def _unreachable(self, reason: object) -> EnclaveUnavailable:
        return EnclaveUnavailable(f"cannot reach the clean-room host at {self.base_url} ({reason})")

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.base_url + path, data=data, method=method,
            headers={"Accept": "application/json",
                     **({"Content-Type": "application/json"} if data is not None else {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return _json(response.read(_MAX_JSON_RESPONSE))
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read(64 * 1024) if exc.fp is not None else b""
            raise _error_from_body(exc.code, raw) from None
        except urllib.error.URLError as exc:
            raise self._unreachable(getattr(exc.reason, "strerror", None) or exc.reason) from None
        except (TimeoutError, ConnectionError) as exc:
            raise self._unreachable(type(exc).__name__) from None

    def _post_stream(self, path: str, chunks: Iterable[bytes]) -> Any:
        split = self._split
        connection_class = (http.client.HTTPSConnection if split.scheme == "https"
                            else http.client.HTTPConnection)
        conn = connection_class(split.hostname, split.port, timeout=self.timeout)
        prefix = split.path.rstrip("/")
        try:
            # If the host stops reading early (say, a refused signature), its answer says why.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request("POST", prefix + path, body=chunks, encode_chunked=True,
                             headers={"Content-Type": "application/octet-stream",
                                      "Transfer-Encoding": "chunked",
                                      "Accept": "application/json"})
            try:
                response = conn.getresponse()
                raw = response.read(_MAX_JSON_RESPONSE)
            except (http.client.HTTPException, ConnectionError) as exc:
                raise self._unreachable(type(exc).__name__) from None
        except ConnectionRefusedError:
            raise self._unreachable("connection refused") from None
        except TimeoutError:
            raise self._unreachable("timed out") from None
        except OSError as exc:
            raise self._unreachable(exc.strerror or type(exc).__name__) from None
        finally:
            conn.close()
        if response.status >= 400:
            raise _error_from_body(response.status, raw)
        return _json(raw)

    # --- API ------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/v1/health")

    def attestation(self, nonce: bytes | None = None) -> dict[str, Any]:
        """The host's attestation bundle, optionally for a fresh 32-byte nonce (unverified)."""
        query = "" if nonce is None else "?" + urllib.parse.urlencode({"nonce": nonce.hex()})
        bundle = self._request("GET", "/v1/attestation" + query)
        if not isinstance(bundle, dict):
            raise ProtocolError("the attestation bundle is not a JSON object")
        return bundle

    def verify(self, agreed_policy: bytes, verifier_policy: Any, *, now: int | None = None,
               fresh_nonce: bool = True,
               collateral_for: Callable[[bytes], str | None] | None = None) -> Any:
        """Fetch and verify the attestation; return the ``VerifiedEnclave`` whose keys to pin.

        A fresh random nonce is requested by default, so the host cannot replay an old bundle
        from an enclave that has since been replaced. ``collateral_for(quote)`` may supply the
        party's own collateral (a file, or fetched from a PCCS) instead of the host's.

        :raise AttestationError: a subclass naming the check that refused the enclave.
        """
        from attestation.verifier.verify import verify_bundle  # party side only; pulls in dcap-qvl

        nonce = secrets.token_bytes(32) if fresh_nonce else None
        bundle = self.attestation(nonce)
        enclave = verify_bundle(bundle, agreed_policy=agreed_policy,
                                now=int(time.time()) if now is None else now,
                                policy=verifier_policy, nonce=nonce,
                                collateral=own_collateral(bundle, collateral_for))
        self._check_same_enclave(parse_policy(agreed_policy).collaboration_id, enclave.sig_pub)
        self.last_bundle = bundle
        return enclave

    def _check_same_enclave(self, collaboration_id: str, sig_pub: bytes) -> None:
        """Refuse, before anything is uploaded, an enclave whose state was reset or replaced."""
        seen = self.head_store.load(collaboration_id)
        if seen is not None and seen[0] != sig_pub:
            raise RollbackDetected(
                "the enclave's signing key changed for this collaboration: its sealed state was "
                "replaced or lost, which would also reset the privacy budget")

    def _observe(self, policy: Policy, sig_pub: bytes, head: Any) -> None:
        self.head_store.observe(policy.collaboration_id, sig_pub, AuditHead.from_wire(head),
                                entries_after=self.audit_entries)

    def audit_entries(self, after: int = 0) -> list[bytes]:
        """The published audit entries after sequence number ``after`` (unverified)."""
        doc = self._request("GET", f"/v1/audit?after={int(after)}")
        if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
            raise ProtocolError("the audit log response is malformed")
        return [_b64(entry, "an audit entry") for entry in doc["entries"]]

    def delete(self, enclave: Any, keys: PartyKeys, policy: Policy, dataset_name: str,
               *, now: int | None = None) -> dict[str, Any]:
        """Delete this party's dataset inside the enclave and on the host; verify the receipt."""
        _check_pinned(enclave, policy)
        request = pack_document("delete_request", {
            "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
            "party": keys.party_id, "dataset": dataset_name, "nonce": secrets.token_bytes(16),
            "issued_at": int(time.time()) if now is None else now,
        })
        response = self._request("POST", "/v1/deletions", {
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
    ) -> Receipt:
        """Read, hash, encrypt and stream one dataset file; return the verified receipt.

        The file is checked against the policy before any connection is made (columns, the first
        block of rows). A problem found later aborts the request mid-stream: the host never gets
        a last chunk, so nothing is accepted.
        """
        from protocol.batch import encode_batch, rows_per_batch

        _check_pinned(enclave, policy)
        dataset = policy.dataset(dataset_name)
        if dataset is None:
            raise InvalidInput(f"the policy has no dataset {dataset_name!r}; it has: "
                               + ", ".join(d.name for d in policy.datasets))
        schema = dataset.schema()
        started = time.monotonic()
        with open_table(source_path, dataset, default_country_code=default_country_code) as table:
            encryptor = UploadEncryptor(keys, policy, dataset, enclave.enc_pub,
                                        chunk_size=chunk_size, rows_hint=table.rows_estimate())
            batches = (encode_batch(columns, schema)
                       for columns in table.blocks(rows_per_batch(schema, chunk_size)))
            first = next(batches, None)
            if first is None:
                raise InvalidInput(f"{os.fspath(source_path)}: the file has a header but no rows")

            def report() -> None:
                if progress is not None:
                    progress(UploadProgress(table.rows_read, table.bytes_read, table.total_bytes,
                                            encryptor.sent_bytes, time.monotonic() - started,
                                            table.extra_columns))

            def body() -> Iterator[bytes]:
                report()
                for record in encryptor.records(itertools.chain([first], batches)):
                    yield record
                    report()

            response = self._post_stream("/v1/uploads", body())
            rows = table.rows_read
        if not encryptor.finished:
            raise ProtocolError("the host answered before the whole upload was sent")
        if not isinstance(response, dict):
            raise ProtocolError("the upload response is not a JSON object")
        receipt = verify_receipt(response, enclave.sig_pub, policy, upload_id=encryptor.upload_id,
                                 party=keys.party_id, dataset=dataset.name, rows=rows,
                                 digest=encryptor.digest)
        self._observe(policy, enclave.sig_pub, receipt.audit_head)
        return receipt

    def uploads(self) -> list[dict[str, Any]]:
        """Accepted uploads as the host lists them (informational: not signed)."""
        listing = self._request("GET", "/v1/uploads")
        if not isinstance(listing, dict) or not isinstance(listing.get("uploads"), list):
            raise ProtocolError("the uploads listing is malformed")
        return listing["uploads"]

    def query(self, enclave: Any, keys: PartyKeys, policy: Policy, analysis_id: str,
              params: dict[str, Any], *, now: int | None = None) -> Result:
        """Sign and send a query; open and verify this party's sealed result.

        :raise NotFound: the policy does not send this analysis's result to this party.
        """
        _check_pinned(enclave, policy)
        request = pack_document("query_request", {
            "collaboration_id": policy.collaboration_id,
            "policy_hash": policy.hash,
            "party": keys.party_id,
            "analysis": analysis_id,
            "params": params,
            "nonce": secrets.token_bytes(16),  # the enclave refuses a replayed request
            "issued_at": int(time.time()) if now is None else now,
        })
        signature = keys.sign(QUERY_LABEL, request)
        response = self._request("POST", "/v1/queries", {
            "request": base64.b64encode(request).decode(),
            "signature": base64.b64encode(signature).decode(),
        })
        query_id = hashlib.sha256(request).digest()
        sealed = self._sealed_for(response, query_id, keys.party_id)
        result = open_result(sealed, keys, enclave.sig_pub, policy, query_id)
        self._observe(policy, enclave.sig_pub, result.body["audit_head"])
        return result

    def results(self, query_id: bytes | str) -> dict[str, Any]:
        """The stored response of a past query: ``{"query_id": hex, "results": {party: b64}}``.

        Open a party's entry with ``fetch_result`` (or ``cleanroom.results.open_result``).
        """
        qid = query_id.hex() if isinstance(query_id, bytes) else query_id
        return self._request("GET", "/v1/results/" + urllib.parse.quote(qid, safe=""))

    def fetch_result(self, enclave: Any, keys: PartyKeys, policy: Policy,
                     query_id: bytes) -> Result:
        """Fetch a past query's result sealed to ``keys`` and verify it."""
        _check_pinned(enclave, policy)
        sealed = self._sealed_for(self.results(query_id), query_id, keys.party_id)
        result = open_result(sealed, keys, enclave.sig_pub, policy, query_id)
        self._observe(policy, enclave.sig_pub, result.body["audit_head"])
        return result

    @staticmethod
    def _sealed_for(response: Any, query_id: bytes, party: str) -> bytes:
        if not isinstance(response, dict) or not isinstance(response.get("results"), dict):
            raise ProtocolError("the query response is malformed")
        if response.get("query_id") != query_id.hex():
            raise AuthenticationFailed("the host answered for a different query")
        if party not in response["results"]:
            raise NotFound(f"the policy sends no result of this query to party {party!r}")
        return _b64(response["results"][party], "the sealed result")


def own_collateral(bundle: dict[str, Any],
                    collateral_for: Callable[[bytes], str | None] | None) -> str | None:
    """The party's own collateral for the bundle's quote, or None to use the bundle's."""
    if collateral_for is None:
        return None
    try:
        quote = base64.b64decode(bundle.get("quote", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ProtocolError("the attestation bundle's quote is not base64") from None
    return collateral_for(quote)
