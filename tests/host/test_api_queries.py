"""POST /v1/queries (strict JSON) and GET /v1/results."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

SIG = base64.b64encode(bytes(64)).decode()
REQUEST = base64.b64encode(b"signed query request").decode()


def test_query_is_relayed_and_stored(client: FlaskClient, state_dir: Path) -> None:
    response = client.post("/v1/queries", json={"request": REQUEST, "signature": SIG})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    query_id = hashlib.sha256(b"signed query request").hexdigest()
    assert body["query_id"] == query_id
    assert base64.b64decode(body["results"]["advertiser"]).startswith(b"sealed:")
    assert json.loads((state_dir / "results" / f"{query_id}.json").read_text()) == body
    again = client.get(f"/v1/results/{query_id}")
    assert again.status_code == 200 and again.get_json() == body


def test_enclave_refusal_maps_to_its_status(client: FlaskClient) -> None:
    deny = base64.b64encode(b"deny").decode()
    response = client.post("/v1/queries", json={"request": deny, "signature": SIG})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "policy_denied"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'"text"',
        b"{}",
        json.dumps({"request": REQUEST}).encode(),
        json.dumps({"request": REQUEST, "signature": SIG, "extra": 1}).encode(),
        json.dumps({"request": 5, "signature": SIG}).encode(),
        json.dumps({"request": "not base64!", "signature": SIG}).encode(),
        json.dumps({"request": REQUEST, "signature": base64.b64encode(b"x").decode()}).encode(),
        b'{"request": "' + REQUEST.encode() + b'", "request": "AA==", "signature": "' + SIG.encode()
        + b'"}',
        b'{"request": NaN, "signature": "AA=="}',
        b"{" * 100_000,
    ],
)
def test_malformed_query_is_bad_message(client: FlaskClient, raw: bytes) -> None:
    response = client.post("/v1/queries", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_message"


def test_oversized_query_body(client: FlaskClient) -> None:
    response = client.post("/v1/queries", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "message_too_large"


def test_results_ids_are_checked(client: FlaskClient) -> None:
    missing = client.get("/v1/results/" + "ab" * 32)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31, "zz" * 32):
        response = client.get(f"/v1/results/{bad}")
        assert response.status_code in (400, 404)
        assert response.get_json()["error"]["code"] in ("bad_message", "not_found")


def test_trailing_newline_in_ids_is_refused(client: FlaskClient) -> None:
    assert client.get("/v1/results/" + "ab" * 32 + "%0A").status_code == 400
    assert client.get("/v1/attestation?nonce=" + "00" * 32 + "%0A").status_code == 400
