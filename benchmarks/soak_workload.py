"""The soak's workload: party threads mixing valid and deliberately bad requests.

Each ``Party`` thread acts as the publisher or the advertiser through ``cleanroom.client.Client``:
small CSV uploads, overlap queries, attestation fetches and full verifications, listings, and
bad requests (random bodies, forged signatures, unknown paths and methods). Every request is
classified into ``Stats`` (``benchmarks/soak_checks.py``) as succeeded, rejected as expected (a
clean JSON error the situation explains) or unexpected; every verified upload receipt is
remembered as acknowledged, for the final check that none was lost.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attestation.verifier.verify import VerifierPolicy
from benchmarks.soak_checks import Stats
from cleanroom.audit import HeadStore
from cleanroom.client import Client
from cleanroom.keys import PartyKeys
from protocol.crypto import QUERY_LABEL
from protocol.errors import CleanroomError
from protocol.policy import Policy
from protocol.wire import pack_document
from tests.support.deployment import http

__all__ = ["REQUEST_TIMEOUT_S", "Party", "RawReply", "raw_request"]

ALLOW_SIMULATION = VerifierPolicy(allow_simulation=True)
REQUEST_TIMEOUT_S = 30.0  # per request; a slower answer counts as an unexpected timeout
# Clean, retryable or situational answers any request may get during a soak.
_TRANSIENT = {"enclave_unavailable", "enclave_busy"}
_UNREACHABLE = "cannot reach the clean-room host"  # cleanroom.client's transport failure text


def _classify_error(exc: CleanroomError, expected: set[str]) -> tuple[str, str]:
    if exc.message.startswith(_UNREACHABLE):  # dropped, refused or timed-out connection
        return "unexpected", f"transport: {exc.message.rsplit('(', 1)[-1].rstrip(')')}"
    if exc.code in expected | _TRANSIENT:
        return "expected", exc.code
    return "unexpected", f"{exc.code}: {exc.message}"


@dataclass
class RawReply:
    status: int
    body: Any  # parsed JSON, or None when it was not JSON


def raw_request(url: str, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> RawReply:
    """One request past the client; HTTP errors are answers, transport errors propagate."""
    reply = http(url, method, body, headers, timeout=REQUEST_TIMEOUT_S)
    try:
        return RawReply(reply.status, json.loads(reply.raw))
    except ValueError:
        return RawReply(reply.status, None)


def _error_code(reply: RawReply) -> str | None:
    body = reply.body
    if (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)
            and isinstance(body["error"].get("code"), str) and isinstance(body["error"].get("message"), str)):
        return body["error"]["code"]
    return None


class Party(threading.Thread):
    """One party's client installation, sending a random mix of requests until ``stop`` is set."""

    def __init__(self, index: int, keys: PartyKeys, policy: Policy, policy_bytes: bytes, url: str,
                 work: Path, stats: Stats, stop: threading.Event, seed: int, heads: Path) -> None:
        super().__init__(name=f"party-{index}-{keys.party_id}", daemon=True)
        self.index = index
        self.keys = keys
        self.policy = policy
        self.policy_bytes = policy_bytes
        self.url = url
        # Each client remembers the highest audit head it has seen (rollback detection), in the
        # work directory: never in the user's ~/.cleanroom, and never shared by accident.
        self.client = Client(url, timeout=REQUEST_TIMEOUT_S, head_store=HeadStore(heads))
        self.csv = work / f"party-{index}.csv"
        self.stats = stats
        self.stop_event = stop
        self.random = random.Random(seed)  # workload shape only; nothing secret
        self.enclave: Any = None
        self.uploads = 0
        self.own_dataset = next(d for d in policy.datasets if d.owner == keys.party_id)
        self.analyses = [a.id for a in policy.analyses
                         if a.kind == "overlap" and keys.party_id in a.requesters]

    def run(self) -> None:
        actions: list[tuple[float, Callable[[], None]]] = [
            (0.30, self.upload), (0.25, self.query), (0.15, self.attestation),
            (0.05, self.verify), (0.10, self.listing), (0.15, self.bad_request),
        ]
        weights = [w for w, _ in actions]
        while not self.stop_event.is_set():
            if self.enclave is None:
                self.verify()
                if self.enclave is None:
                    self.stop_event.wait(0.2)
                    continue
            self.random.choices(actions, weights)[0][1]()

    def _timed(self, endpoint: str, call: Callable[[], Any], expected: set[str]) -> Any:
        start = time.monotonic()
        try:
            value = call()
        except CleanroomError as exc:
            outcome, detail = _classify_error(exc, expected)
            self.stats.record(endpoint, time.monotonic() - start, outcome, detail)
            self._back_off(detail)
            return None
        except Exception as exc:  # a crash of the client or a transport failure it did not map
            self.stats.record(endpoint, time.monotonic() - start, "unexpected", type(exc).__name__)
            return None
        self.stats.record(endpoint, time.monotonic() - start, "ok")
        return value

    def _back_off(self, code: str) -> None:
        # A real client honours Retry-After; a short pause keeps the restart window from being
        # counted as thousands of identical rejections, while still probing it continuously.
        if code in _TRANSIENT:
            self.stop_event.wait(0.1)

    # valid requests

    def verify(self) -> None:
        enclave = self._timed("GET /v1/attestation (verify)",
                              lambda: self.client.verify(self.policy_bytes, ALLOW_SIMULATION), set())
        if enclave is not None:
            if self.enclave is not None and enclave.sig_pub != self.enclave.sig_pub:
                self.stats.record("GET /v1/attestation (verify)", 0.0, "unexpected",
                                  "enclave keys changed across a restart")
            self.enclave = enclave

    def _write_csv(self) -> None:
        rows = self.random.randint(50, 200)
        tag = f"soak-{self.index}-{self.uploads}"
        self.uploads += 1
        dataset = self.own_dataset
        header = [dataset.id_column, *(d.name for d in dataset.dimensions),
                  *(m.name for m in dataset.metrics)]
        lines = [",".join(header)]
        for row in range(rows):
            person = self.random.randrange(5000)  # shared people, so the join has matches
            cells = [f"person{person}@example.com" if row % 3 else f"{tag}-{row}@example.com"]
            cells += [self.random.choice(d.values) for d in dataset.dimensions]
            cells += [f"{self.random.randint(0, 400)}.{self.random.randint(0, 99):02d}"
                      for _ in dataset.metrics]
            lines.append(",".join(cells))
        self.csv.write_text("\n".join(lines) + "\n")

    def upload(self) -> None:
        self._write_csv()
        receipt = self._timed("POST /v1/uploads", lambda: self.client.upload(
            self.enclave, self.keys, self.policy, self.own_dataset.name, self.csv,
            chunk_size=64 * 1024, mode="append"), set())  # every party uploads its dataset again
        if receipt is not None:
            with self.stats.lock:
                self.stats.acknowledged[receipt.upload_id.hex()] = self.keys.party_id

    def query(self) -> None:
        if not self.analyses:
            return self.attestation()
        analysis = self.random.choice(self.analyses)
        self._timed("POST /v1/queries", lambda: self.client.query(
            self.enclave, self.keys, self.policy, analysis, {"group_by": []}),
            {"budget_exhausted", "conflict"})
        return None

    def _raw_expect(self, endpoint: str, method: str, path: str, ok: int, body: bytes | None = None,
                    headers: dict[str, str] | None = None, bad: bool = False) -> None:
        start = time.monotonic()
        try:
            reply = raw_request(self.url + path, method, body, headers)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            self.stats.record(endpoint, time.monotonic() - start, "unexpected",
                              f"transport: {type(reason).__name__}")
            return
        elapsed = time.monotonic() - start
        code = _error_code(reply)
        if reply.body is None or (reply.status >= 400 and code is None):
            self.stats.record(endpoint, elapsed, "unexpected", f"malformed answer (HTTP {reply.status})")
        elif reply.status == ok and not bad:
            self.stats.record(endpoint, elapsed, "ok")
        elif code in _TRANSIENT and reply.status == 503:
            self.stats.record(endpoint, elapsed, "expected", code or "")
            self._back_off(code or "")
        elif bad and 400 <= reply.status < 500:
            self.stats.record(endpoint, elapsed, "expected", f"bad request: {code}")
        else:
            self.stats.record(endpoint, elapsed, "unexpected", f"HTTP {reply.status} {code}")

    def attestation(self) -> None:
        nonce = self.random.randbytes(32).hex()
        self._raw_expect("GET /v1/attestation", "GET", f"/v1/attestation?nonce={nonce}", 200)

    def listing(self) -> None:
        if self.random.random() < 0.5:
            self._raw_expect("GET /v1/uploads", "GET", "/v1/uploads", 200)
        else:
            self._raw_expect("GET /v1/health", "GET", "/v1/health", 200)

    # bad requests: each must get a clean 4xx (or a clean 503 while the enclave restarts)

    def bad_request(self) -> None:
        choice = self.random.randrange(7)
        octet = {"Content-Type": "application/octet-stream"}
        if choice == 0:
            body = self.random.randbytes(self.random.randint(0, 3000))
            self._raw_expect("bad requests", "POST", "/v1/uploads", 0, body, octet, bad=True)
        elif choice == 1:
            self._raw_expect("bad requests", "POST", "/v1/queries", 0, b"{not json", bad=True)
        elif choice == 2:
            self._raw_expect("bad requests", "POST", "/v1/queries", 0, self._forged_query(), bad=True)
        elif choice == 3:
            self._raw_expect("bad requests", "GET", "/v1/results/" + "z" * 64, 0, bad=True)
        elif choice == 4:
            self._raw_expect("bad requests", "GET", "/v1/no-such-endpoint", 0, bad=True)
        elif choice == 5:
            self._raw_expect("bad requests", "DELETE", "/v1/health", 0, bad=True)
        else:
            self._raw_expect("bad requests", "GET", "/v1/attestation?nonce=xyz", 0, bad=True)

    def _forged_query(self) -> bytes:
        """A well-formed query whose signature is not the party's: bad_signature."""
        request = pack_document("query_request", {
            "collaboration_id": self.policy.collaboration_id, "policy_hash": self.policy.hash,
            "party": self.keys.party_id, "analysis": "overlap", "params": {"group_by": []},
            "nonce": self.random.randbytes(16), "issued_at": int(time.time()),
        })
        forged = bytearray(self.keys.sign(QUERY_LABEL, request))
        forged[0] ^= 1
        return json.dumps({"request": base64.b64encode(request).decode(),
                           "signature": base64.b64encode(bytes(forged)).decode()}).encode()
