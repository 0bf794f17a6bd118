"""The OpenAPI document (host/openapi.py) against the REAL app and a REAL enclave.

* the document is valid OpenAPI 3.1 (openapi-spec-validator);
* every Flask route under /v1 is documented with its methods, and nothing else is;
* schemathesis sends generated requests (valid and invalid per the document) to the app
  in-process; every response must have a documented status, a JSON body matching the schema for
  that status, a code consistent with host/errors.py, and never a 500 or a traceback;
* the success paths schemathesis cannot reach with random data (a real upload, query and stored
  result) are driven once with genuine party data and validated against the document too.

Bounded: a few dozen examples per operation, derandomised, no example database.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate as validate_spec

from cleanroom.keys import PartyKeys
from host import create_app, shutdown_app
from host.errors import STATUS_BY_CODE
from host.openapi import document, error_codes_for_status
from protocol.crypto import QUERY_LABEL
from protocol.policy import parse_policy
from protocol.wire import pack_document
from tests.adversarial.kit import MarkedData, encrypt_csv

SCHEMA = schemathesis.openapi.from_dict(document())
_IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Flask adds these to every GET route by itself


@pytest.fixture(scope="module")
def real_app(tmp_path_factory: pytest.TempPathFactory, policy_bytes: bytes) -> Iterator[Flask]:
    """The production app factory with the real enclave child (simulation mode)."""
    tmp = tmp_path_factory.mktemp("openapi")
    (tmp / "policy.toml").write_bytes(policy_bytes)
    app = create_app({
        "CLEANROOM_STATE_DIR": str(tmp / "state"),
        "CLEANROOM_POLICY_FILE": str(tmp / "policy.toml"),
        "CLEANROOM_ENCLAVE_COMMAND": [sys.executable, "-m", "enclave"],
        "CLEANROOM_ENCLAVE_START_TIMEOUT": 60,
        "CLEANROOM_ENCLAVE_CALL_TIMEOUT": 60,
        "CLEANROOM_ENCLAVE_STOP_TIMEOUT": 5,
        "TESTING": True,
    })
    try:
        yield app
    finally:
        shutdown_app(app)


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate_spec(doc)


def _examples(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) of every example body the document carries."""
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            bodies = [("request", op.get("requestBody", {})), *op["responses"].items()]
            for where, body in bodies:
                media = body.get("content", {}).get("application/json", {})
                if "example" in media:
                    found.append((f"{method} {path} {where}", media["schema"], media["example"]))
    return found


def test_every_example_matches_its_schema() -> None:
    from jsonschema import Draft202012Validator

    doc = document()
    examples = _examples(doc)
    assert len(examples) >= 20  # the main bodies and one error per documented status
    for where, schema, example in examples:
        validator = Draft202012Validator({**schema, "components": doc["components"]})
        errors = list(validator.iter_errors(example))
        assert not errors, (where, errors[0].message)
    # The check can fail: a closed schema refuses an example with one field too many.
    where, schema, example = next(e for e in examples if e[0] == "post /v1/deletions 200")
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    assert list(validator.iter_errors({**example, "unexpected": 1}))


def test_the_document_is_served(real_app: Flask) -> None:
    response = real_app.test_client().get("/v1/openapi.json")
    assert response.status_code == 200 and response.get_json() == document()


def _flask_operations(app: Flask) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations |= {(path, method) for method in (rule.methods or set()) - _IGNORED_METHODS}
    return operations


def test_every_route_is_documented_and_nothing_else(real_app: Flask) -> None:
    documented = {(path, method.upper()) for path, item in document()["paths"].items()
                  for method in item}
    assert _flask_operations(real_app) == documented


def test_each_documented_error_status_lists_the_codes_of_that_status() -> None:
    statuses = {int(s) for item in document()["paths"].values() for op in item.values()
                for s in op["responses"] if int(s) >= 400}
    for status in statuses:
        codes = error_codes_for_status(status)
        assert codes, status
        assert all(STATUS_BY_CODE.get(c, status) == status for c in codes)


def _consistent_error(response: Any, case: Any) -> None:
    """Beyond the schema: no 5xx that input could cause, no traceback, code matches status."""
    assert b"Traceback" not in response.content
    assert response.status_code not in (500, 502), (case.method, case.path, response.content[:200])
    if response.status_code >= 400:
        code = json.loads(response.content)["error"]["code"]
        assert code in error_codes_for_status(response.status_code)


_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers(case: Any, real_app: Flask) -> None:
    response = case.call_and_validate(app=real_app, checks=_CHECKS)
    _consistent_error(response, case)


# The success paths, with genuine party data.


def _validate(response: Any, path: str, method: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data()[:300]
    SCHEMA[path][method].validate_response(response)
    return response.get_json()


def test_success_responses_match_the_document(real_app: Flask, policy_bytes: bytes,
                                              parties: dict[str, PartyKeys], tmp_path: Path) -> None:
    client = real_app.test_client()
    policy = parse_policy(policy_bytes)
    _validate(client.get("/v1/health"), "/v1/health", "GET", 200)
    _validate(client.get("/v1/attestation?nonce=" + "0f" * 32), "/v1/attestation", "GET", 200)
    bundle = _validate(client.get("/v1/attestation"), "/v1/attestation", "GET", 200)
    enc_pub = bytes.fromhex(bundle["enc_pub"])

    data = MarkedData(tmp_path)
    for party, dataset, path in (("publisher", "impressions", data.impressions(policy, rows=120)),
                                 ("advertiser", "conversions", data.conversions(rows=120))):
        upload = encrypt_csv(policy, parties[party], dataset, path, enc_pub)
        response = client.post("/v1/uploads", data=upload.body,
                               content_type="application/octet-stream")
        _validate(response, "/v1/uploads", "POST", 201)
    listing = _validate(client.get("/v1/uploads"), "/v1/uploads", "GET", 200)
    assert len(listing["uploads"]) == 2

    request = pack_document("query_request", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": "advertiser", "analysis": "overlap", "params": {"group_by": []},
        "nonce": os.urandom(16), "issued_at": int(time.time()),
    })
    body = {"request": base64.b64encode(request).decode(),
            "signature": base64.b64encode(parties["advertiser"].sign(QUERY_LABEL, request)).decode()}
    result = _validate(client.post("/v1/queries", json=body), "/v1/queries", "POST", 200)
    stored = client.get(f"/v1/results/{result['query_id']}")
    assert _validate(stored, "/v1/results/{query_id}", "GET", 200) == result
    listed = _validate(client.get("/v1/results?recipient=advertiser"), "/v1/results", "GET", 200)
    assert [e["query_id"] for e in listed["results"]] == [result["query_id"]]
    # And the documented errors of the same paths, once each.
    _validate(client.post("/v1/queries", json=body), "/v1/queries", "POST", 409)
    _validate(client.get("/v1/results/" + "0" * 64), "/v1/results/{query_id}", "GET", 404)
    _validate(client.post("/v1/queries", data=b"x" * (2 * 1024 * 1024)), "/v1/queries", "POST", 413)
