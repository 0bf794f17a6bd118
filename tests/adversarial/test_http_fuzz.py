"""Random bytes at every endpoint of a real host (property-based, bounded in time).

Whatever arrives, the answer is JSON; an error is exactly ``{"error": {"code", "message"}}``
with a code whose status is the one ``host/errors.py`` assigns; nothing is a 500 (the host has no
reason to fail on input) and nothing shows a traceback. Runs are derandomised so CI is
reproducible, and each property is capped by ``max_examples``.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cleanroom.keys import PartyKeys
from host.errors import STATUS_BY_CODE
from protocol.crypto import QUERY_LABEL
from protocol.policy import Policy
from protocol.wire import pack_document
from tests.adversarial.kit import (
    ALLOW_SIMULATION,
    MarkedData,
    SealedUpload,
    assert_no_leak,
    assert_still_serving,
    encrypt_csv,
    record,
)
from tests.support.deployment import HostDeployment, HttpReply

pytestmark = pytest.mark.slow

# Werkzeug's own errors (routing, method, size) as host/errors.py names them.
_WERKZEUG = {("bad_message", 400), ("not_found", 404), ("method_not_allowed", 405),
             ("message_too_large", 413)}
_FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
_CONTENT_TYPES = st.sampled_from([None, "application/json", "application/octet-stream", "text/plain",
                                  "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"])


def _check(reply: HttpReply, method: str = "GET") -> Any:
    event(f"HTTP {reply.status} {reply.code or ''}")  # --hypothesis-show-statistics shows the mix
    assert b"Traceback" not in reply.raw
    assert reply.status < 500, f"server error {reply.status}: {reply.raw[:200]!r}"
    if method == "HEAD":
        return None
    body = json.loads(reply.raw)
    if reply.status >= 400:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        code = body["error"]["code"]
        assert isinstance(code, str) and isinstance(body["error"]["message"], str)
        assert STATUS_BY_CODE.get(code) == reply.status or (code, reply.status) in _WERKZEUG, body
    return body


@pytest.fixture(scope="module")
def sample(deployment: HostDeployment, marked: MarkedData, policy: Policy, policy_bytes: bytes,
           parties: dict[str, PartyKeys]) -> SealedUpload:
    """Data in the clean room (so queries reach the compute path), and a genuine upload stream
    whose header record the fuzzers reuse to get past the signature check."""
    client = deployment.client
    enclave = client.verify(policy_bytes, ALLOW_SIMULATION)
    client.upload(enclave, parties["publisher"], policy, "impressions", marked.impressions(policy))
    client.upload(enclave, parties["advertiser"], policy, "conversions", marked.conversions())
    return encrypt_csv(policy, parties["advertiser"], "conversions", marked.conversions(), enclave.enc_pub)


def _headers(content_type: str | None) -> dict[str, str]:
    return {} if content_type is None else {"Content-Type": content_type}


def _record_stream() -> st.SearchStrategy[bytes]:
    one = st.builds(lambda flag, data: record(flag + data), st.sampled_from([b"\x00", b"\x01", b"\x02"]),
                    st.binary(max_size=300))
    return st.lists(one, max_size=4).map(b"".join)


@_FUZZ
@given(data=st.data())
def test_uploads_endpoint(deployment: HostDeployment, sample: SealedUpload, data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from(["bytes", "records", "genuine header", "header prefix"]))
    if shape == "bytes":
        body = data.draw(st.binary(max_size=2048))
    elif shape == "records":
        body = data.draw(_record_stream())
    elif shape == "genuine header":
        # Past the signature and HPKE unwrap: random chunks must fail as decrypt_failed.
        body = sample.header_record + data.draw(_record_stream())
    else:
        body = data.draw(st.binary(max_size=len(sample.body)).map(lambda b: sample.body[:len(b)]))
    reply = deployment.request("POST", "/v1/uploads", body,
                               _headers(data.draw(_CONTENT_TYPES)))
    _check(reply)
    assert reply.status != 201, "a random or truncated stream was accepted"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _signed_query(policy: Policy, keys: PartyKeys, analysis: str, params: dict[str, Any]) -> bytes:
    request = pack_document("query_request", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": keys.party_id, "analysis": analysis, "params": params,
        "nonce": os.urandom(16),
        "issued_at": int(time.time()),
    })
    return json.dumps({"request": _b64(request), "signature": _b64(keys.sign(QUERY_LABEL, request))}).encode()


_PARAM_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                             lambda c: st.lists(c, max_size=3), max_leaves=6)


@_FUZZ
@given(data=st.data())
def test_queries_endpoint(deployment: HostDeployment, sample: SealedUpload, policy: Policy,
                          parties: dict[str, PartyKeys], data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from(["bytes", "json", "base64 fields", "signed params"]))
    if shape == "bytes":
        body = data.draw(st.binary(max_size=1024))
    elif shape == "json":
        body = json.dumps(data.draw(st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
            max_leaves=8))).encode()
    elif shape == "base64 fields":
        body = json.dumps({"request": _b64(data.draw(st.binary(max_size=300))),
                           "signature": _b64(data.draw(st.binary(min_size=60, max_size=68)))}).encode()
    else:
        # Correctly signed by a party, with analysis and params the policy engine must judge.
        keys = parties[data.draw(st.sampled_from(sorted(parties)))]
        analysis = data.draw(st.sampled_from([a.id for a in policy.analyses]) | st.text(max_size=12))
        names = st.sampled_from(["group_by", "metric", "frequency", "x"]) | st.text(max_size=8)
        params = data.draw(st.dictionaries(names, _PARAM_VALUES | st.lists(
            st.sampled_from(["impressions.campaign", "impressions.region", "conversions.value",
                             "conversions.email", "impressions"]), max_size=3), max_size=3))
        body = _signed_query(policy, keys, analysis, params)
    reply = deployment.request("POST", "/v1/queries", body, _headers(data.draw(_CONTENT_TYPES)))
    _check(reply)


@_FUZZ
@given(nonce=st.text(max_size=80),
       extra=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2))
def test_attestation_endpoint(deployment: HostDeployment, nonce: str, extra: dict[str, str]) -> None:
    query = urllib.parse.urlencode({"nonce": nonce, **extra})
    reply = deployment.request("GET", "/v1/attestation?" + query)
    body = _check(reply)
    if reply.status == 200:
        assert body["nonce"] == nonce.lower()


@_FUZZ
@given(segment=st.text(min_size=1, max_size=80) | st.text("0123456789abcdefABCDEF", min_size=60, max_size=68))
def test_results_endpoint(deployment: HostDeployment, segment: str) -> None:
    reply = deployment.request("GET", "/v1/results/" + urllib.parse.quote(segment, safe=""))
    _check(reply)
    assert reply.status in (400, 404)  # nothing was ever stored under a random id


_API_PATHS = ["/v1/health", "/v1/attestation", "/v1/uploads", "/v1/queries", "/v1/results/x",
              "/v1/openapi.json", "/v1/audit", "/v1/deletions", "/v1/budget", "/v1/approvals",
              "/v1/approvals/" + "ab" * 32, "/v1/queries/" + "cd" * 32, "/v1/results"]


@_FUZZ
@given(party=st.text(max_size=70), segment=st.text(min_size=1, max_size=80)
       | st.text("0123456789abcdef", min_size=64, max_size=64),
       body=st.dictionaries(st.sampled_from(["party", "signature", "x"]),
                            st.text(max_size=100) | st.integers() | st.none(), max_size=3))
def test_approvals_endpoints(deployment: HostDeployment, sample: SealedUpload, party: str, segment: str,
                             body: dict[str, Any]) -> None:
    """The co-signing routes (docs/witness.md): nothing is pending here, nothing random is accepted."""
    listing = _check(deployment.request("GET", "/v1/approvals?" + urllib.parse.urlencode({"party": party})))
    if isinstance(listing, dict) and "pending" in listing:
        assert listing["pending"] == []
    path = urllib.parse.quote(segment, safe="")
    reply = deployment.request("POST", "/v1/approvals/" + path, json.dumps(body).encode(),
                               {"Content-Type": "application/json"})
    _check(reply, "POST")
    assert reply.status in (400, 404), reply.raw[:200]  # no query waits for an approval
    status = deployment.request("GET", "/v1/queries/" + path)
    _check(status)
    assert status.status in (400, 404)


@_FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
       path=st.sampled_from(_API_PATHS) | st.text(max_size=40).map(
           lambda t: "/v1/" + urllib.parse.quote(t, safe="/")),
       query=st.text(max_size=30), body=st.binary(max_size=512), content_type=_CONTENT_TYPES)
def test_any_method_at_any_path(deployment: HostDeployment, sample: SealedUpload, method: str, path: str,
                                query: str, body: bytes, content_type: str | None) -> None:
    url = path + ("?" + urllib.parse.quote(query, safe="=&") if query else "")
    sent = body if method in ("POST", "PUT", "PATCH") else None
    _check(deployment.request(method, url, sent, _headers(content_type)), method)


def test_after_the_fuzzing_nothing_leaked_and_the_host_serves(
        deployment: HostDeployment, sample: SealedUpload, marked: MarkedData) -> None:
    listed = {u["upload_id"] for u in deployment.request("GET", "/v1/uploads").json()["uploads"]}
    assert len(listed) == 2, "a fuzzed upload was accepted"
    assert_no_leak(deployment, marked)
    assert_still_serving(deployment)
