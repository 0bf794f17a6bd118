"""The wire specification's vectors against the project's own code beyond ``protocol/``.

* every HTTP body of http.json matches the schema the served OpenAPI document gives for it;
* the saved-result file of attestation.json passes ``cleanroom.offline_check`` (the party's code);
* the batch layout's zero padding is enforced (docs/wire.md#columnar-batch).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from host.openapi import document
from protocol.batch import decode_batch
from protocol.errors import ProtocolError
from protocol.policy import parse_policy
from tests.vectors.loader import h, load_all

# route of http.json -> (OpenAPI path, method)
OPERATIONS = {
    "attestation": ("/v1/attestation", "get"),
    "upload": ("/v1/uploads", "post"),
    "list_uploads": ("/v1/uploads", "get"),
    "query": ("/v1/queries", "post"),
    "get_result": ("/v1/results/{query_id}", "get"),
    "list_results": ("/v1/results", "get"),
    "delete": ("/v1/deletions", "post"),
    "audit": ("/v1/audit", "get"),
    "witness_query": ("/v1/queries", "post"),
    "approve": ("/v1/approvals/{query_id}", "post"),
    "budget": ("/v1/budget", "get"),
}


@pytest.fixture(scope="module")
def vectors() -> dict[str, dict[str, Any]]:
    return load_all()


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    doc = document()
    return Draft202012Validator({**schema, "components": doc["components"]})


def test_every_route_of_http_json_is_an_operation_of_the_document(vectors: dict[str, Any]) -> None:
    assert set(vectors["http"]["routes"]) == set(OPERATIONS)
    paths = document()["paths"]
    for path, method in OPERATIONS.values():
        assert method in paths[path]


@pytest.mark.parametrize("route", sorted(OPERATIONS))
def test_http_bodies_match_the_openapi_schemas(vectors: dict[str, Any], route: str) -> None:
    entry = vectors["http"]["routes"][route]
    path, method = OPERATIONS[route]
    operation = document()["paths"][path][method]
    assert entry["method"].lower() == method
    response = operation["responses"][str(entry["status"])]["content"]["application/json"]["schema"]
    _validator(response).validate(entry["response"])
    if entry["request"] is not None:
        request = operation["requestBody"]["content"]["application/json"]["schema"]
        _validator(request).validate(entry["request"])
    # The check can fail: a body with one more field is refused by the closed schemas.
    with pytest.raises(Exception):  # noqa: B017 - jsonschema's ValidationError
        _validator(response).validate({**entry["response"], "unexpected": 1})


def test_every_error_body_matches_the_schema_of_its_status(vectors: dict[str, Any]) -> None:
    schemas = document()["components"]["schemas"]
    documented = [e for e in vectors["http"]["errors"] if f"Error{e['status']}" in schemas]
    # approval_timeout (504) is the client's own: no route answers it.
    assert {e["code"] for e in vectors["http"]["errors"]} - {e["code"] for e in documented} == {
        "approval_timeout"
    }
    for error in documented:
        _validator({"$ref": f"#/components/schemas/Error{error['status']}"}).validate(error["body"])


def test_the_saved_result_passes_the_offline_check(vectors: dict[str, Any], tmp_path: Path) -> None:
    from attestation.verifier.verify import VerifierPolicy
    from cleanroom.audit import HeadStore
    from cleanroom.offline_check import check_saved_result

    doc = vectors["attestation"]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc["saved_result"]), encoding="utf-8")
    policy_bytes = vectors["policy"]["text"].encode()
    result, enclave = check_saved_result(
        path,
        policy_bytes,
        VerifierPolicy(allow_simulation=True),
        doc["now"],
        head_store=HeadStore(tmp_path / "heads"),
    )
    assert result.query_id == h(vectors["result"]["query_id"])
    assert enclave.sig_pub == h(vectors["keys"]["enclave"]["ed25519_public"])
    tampered = copy.deepcopy(doc["saved_result"])
    tampered["attestation"]["sig_pub"] = vectors["keys"]["parties"]["publisher"]["ed25519_public"]
    path.write_text(json.dumps(tampered), encoding="utf-8")
    with pytest.raises(Exception, match="quote does not bind"):
        check_saved_result(
            path,
            policy_bytes,
            VerifierPolicy(allow_simulation=True),
            doc["now"],
            head_store=HeadStore(tmp_path / "heads2"),
        )


def test_a_batch_with_non_zero_padding_is_refused(vectors: dict[str, Any]) -> None:
    policy = parse_policy(vectors["policy"]["text"].encode())
    upload = vectors["upload"]["uploads"][0]
    dataset = policy.dataset(upload["dataset"])
    assert dataset is not None
    sizes = {d.name: len(d.values) for d in dataset.dimensions}
    batch = next(b for b in upload["batches"] if b["rows"] % 4)  # a u16 column with padding
    raw = bytearray(h(batch["bytes"]))
    decode_batch(bytes(raw), dataset.schema(), sizes)  # as stored: accepted
    padding_at = 16 + 32 * batch["rows"] + 2 * batch["rows"]  # after the id and campaign columns
    raw[padding_at] = 1
    with pytest.raises(ProtocolError, match="padding"):
        decode_batch(bytes(raw), dataset.schema(), sizes)


# --- docs/wire.md against the code ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
WIRE = ROOT / "docs" / "wire.md"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower().replace("`", "")
            out.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return out


def test_every_section_wire_md_or_the_openapi_document_cites_exists() -> None:
    text = WIRE.read_text(encoding="utf-8")
    anchors = _anchors(text)
    cited = set(re.findall(r"\]\(#([^)]+)\)", text))
    served = json.dumps(document())
    cited |= set(re.findall(r"docs/wire\.md#([a-z0-9_-]+)", served))
    assert "upload-body" in cited and "query_request" in cited  # the pattern finds citations
    assert cited - anchors == set()


def test_wire_md_names_every_label_and_every_error_code() -> None:
    import protocol.crypto as crypto
    from host.errors import STATUS_BY_CODE

    text = WIRE.read_text(encoding="utf-8")
    labels = [getattr(crypto, n) for n in crypto.__all__ if n.endswith("_LABEL")]
    assert len(labels) == 10
    for label in labels:
        assert f'`"{label.decode().replace(chr(0), "")}\\x00"`' in text, label
    table = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.MULTILINE))
    grouped = re.findall(r"^\| ((?:`[a-z_]+`, )+`[a-z_]+`) \| (\d{3}) \|", text, flags=re.MULTILINE)
    for codes, status in grouped:
        table.update({code: status for code in re.findall(r"`([a-z_]+)`", codes)})
    assert {c: int(s) for c, s in table.items() if c in STATUS_BY_CODE} == STATUS_BY_CODE


def test_the_openapi_examples_are_the_vectors(vectors: dict[str, Any]) -> None:
    from host.openapi_examples import EXAMPLES

    routes = vectors["http"]["routes"]
    by_operation = {(OPERATIONS[name][0], OPERATIONS[name][1]): entry for name, entry in routes.items()}
    by_operation[("/v1/queries", "post")] = routes["query"]  # the 202 example is witness_query's
    for (path, method, where), example in EXAMPLES.items():
        pending = where == "202" or path == "/v1/queries/{query_id}"  # a co-signed query's entry
        if pending:
            assert example == routes["witness_query"]["response"]
        elif path == "/v1/audit":
            assert example["entries"] == routes["audit"]["response"]["entries"][:1]
        else:
            entry = by_operation[(path, method)]
            assert example == (entry["request"] if where == "request" else entry["response"]), (path, where)
