"""The query and result calls of ``cleanroom.client.Client`` (a mixin, kept apart for size).

Everything here verifies what the host hands back against the pinned, attested enclave: a
result is opened only if it is the answer to this request, signed by the enclave, for this
party (``cleanroom.result_open``), and its audit head must continue the one this client saw.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from cleanroom.approvals_client import APPROVAL_TIMEOUT_S, budget_status, wait_for_approvals
from cleanroom.http_transport import HostConnection, b64_field
from cleanroom.keys import PartyKeys
from cleanroom.result_ids import listing_pages
from cleanroom.result_open import Result, open_result
from protocol.crypto import QUERY_LABEL
from protocol.errors import AuthenticationFailed, InvalidInput, NotFound, PolicyMismatch, ProtocolError
from protocol.policy import Policy
from protocol.wire import pack_document

__all__ = ["REQUEST_NONCE_BYTES", "QueryCalls", "check_pinned", "request_nonce"]

REQUEST_NONCE_BYTES = 16  # a query or delete request's nonce (the enclave refuses a replay)


def check_pinned(enclave: Any, policy: Policy) -> None:
    if enclave.policy_hash != policy.hash:
        raise PolicyMismatch("the verified enclave runs a different policy than the one given")


def request_nonce(nonce: bytes | None) -> bytes:
    nonce = secrets.token_bytes(REQUEST_NONCE_BYTES) if nonce is None else nonce
    if not isinstance(nonce, bytes) or len(nonce) != REQUEST_NONCE_BYTES:
        raise InvalidInput(f"a request nonce must be {REQUEST_NONCE_BYTES} bytes")
    return nonce


class QueryCalls:
    """``query``, ``budget_status``, ``results``, ``result_list``, ``fetch_result``."""

    _http: HostConnection

    def _observe(self, policy: Policy, sig_pub: bytes, head: Any) -> None:
        raise NotImplementedError  # Client's

    def query(self, enclave: Any, keys: PartyKeys, policy: Policy, analysis_id: str,
              params: dict[str, Any], *, now: int | None = None,
              nonce: bytes | None = None, on_wait: Callable[[dict[str, Any]], None] | None = None,
              approval_timeout: float = APPROVAL_TIMEOUT_S, plan: dict[str, Any] | None = None,
              sql: str | None = None) -> Result:
        """Sign and send a query; open and verify the result encrypted to this party.

        ``nonce`` (16 bytes) and ``now`` (``issued_at``) default to fresh randomness and the
        clock; the query id is SHA-256 of the request, so they fix it too.

        ``plan`` (and the ``sql`` it came from) makes it a free-form query: pass ``analysis_id``
        "" and ``params`` {} (``cleanroom.sql`` compiles SQL to a plan).

        A query the policy has co-signed (docs/witness.md) is answered only once every approver
        has signed; until then ``on_wait`` is called with the host's status every poll.

        :raise NotFound: the policy does not send this analysis's result to this party.
        """
        check_pinned(enclave, policy)
        request = pack_document("query_request", {
            "collaboration_id": policy.collaboration_id,
            "policy_hash": policy.hash,
            "party": keys.party_id,
            "analysis": analysis_id,
            "params": params,
            "nonce": request_nonce(nonce),  # the enclave refuses a replayed request
            "issued_at": int(time.time()) if now is None else now,
            # a free-form query: analysis "" and no params (docs/query-language.md)
            **({"plan": plan} if plan is not None else {}),
            **({"sql": sql} if sql is not None else {}),
        })
        signature = keys.sign(QUERY_LABEL, request)
        response = self._http.request("POST", "/v1/queries", {
            "request": base64.b64encode(request).decode(),
            "signature": base64.b64encode(signature).decode(),
        })
        query_id = hashlib.sha256(request).digest()
        if isinstance(response, dict) and response.get("status") == "approval_required":
            wait_for_approvals(self._http, query_id, on_wait, approval_timeout)
            response = self.results(query_id)
        ciphertext = self._encrypted_result_for(response, query_id, keys.party_id)
        result = open_result(ciphertext, keys, enclave.sig_pub, policy, query_id)
        self._observe(policy, enclave.sig_pub, result.body["audit_head"])
        return result

    def budget_status(self, enclave: Any, policy: Policy) -> dict[str, Any]:
        """The enclave's signed statement of every dataset's budget (and each requester's share).

        Free: nothing is charged. Amounts are exact fraction strings, e.g. ``"24/5"``.
        """
        check_pinned(enclave, policy)
        status = budget_status(self._http, enclave.sig_pub, policy)
        self._observe(policy, enclave.sig_pub, status["audit_head"])
        return status

    def results(self, query_id: bytes | str) -> dict[str, Any]:
        """The stored response of a past query: ``{"query_id": hex, "results": {party: b64}}``.

        Open a party's entry with ``fetch_result`` (or ``cleanroom.result_open.open_result``).
        """
        qid = query_id.hex() if isinstance(query_id, bytes) else query_id
        return self._http.request("GET", "/v1/results/" + urllib.parse.quote(qid, safe=""))

    def result_list(self, recipient: str | None = None) -> list[dict[str, Any]]:
        """Stored results as the host lists them (unsigned: ids, host times, recipients), every page."""
        return listing_pages(self._http.request, recipient)

    def fetch_result(self, enclave: Any, keys: PartyKeys, policy: Policy,
                     query_id: bytes) -> Result:
        """Fetch a past query's result encrypted to ``keys`` and verify it."""
        check_pinned(enclave, policy)
        ciphertext = self._encrypted_result_for(self.results(query_id), query_id, keys.party_id)
        result = open_result(ciphertext, keys, enclave.sig_pub, policy, query_id)
        self._observe(policy, enclave.sig_pub, result.body["audit_head"])
        return result

    @staticmethod
    def _encrypted_result_for(response: Any, query_id: bytes, party: str) -> bytes:
        if not isinstance(response, dict) or not isinstance(response.get("results"), dict):
            raise ProtocolError("the query response is malformed")
        if response.get("query_id") != query_id.hex():
            raise AuthenticationFailed("the host answered for a different query")
        if party not in response["results"]:
            raise NotFound(f"the policy sends no result of this query to party {party!r}")
        return b64_field(response["results"][party], "the encrypted result")
