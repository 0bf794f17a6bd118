"""The vector files written for the wire specification (docs/wire.md), and their checks.

* ``msgpack.json``: canonical msgpack, value by value (integer widths, string, bin, array and map
  headers, key order, nesting), and documents a receiver must accept or refuse;
* ``attestation.json``: a simulated attestation bundle exactly as ``GET /v1/attestation`` serves
  it, the REPORTDATA its quote must carry, the refusals one edit causes, and a saved-result file;
* ``template.json``: a query that names a policy template, and the enclave's signed result;
* ``http.json``: the JSON bodies of the HTTP routes, built from the other files, and every
  error code with its status.

The recipes that derive the refused documents and the HTTP bodies from the other vectors live
here, so the generator writes what these checks rebuild; the checks also run each recipe's
outcome (a refusal, a verification) through the project's code.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any

import msgpack

from protocol.crypto import QUERY_LABEL, RESULT_LABEL, result_hpke_info, upload_key_hpke_info
from protocol.errors import ProtocolError, error_class_for_code
from protocol.report_data import report_data
from protocol.wire import canonical_packb, unpack_document
from tests.vectors.loader import from_json, h, to_json

__all__ = [
    "CHECKS_EXTRA",
    "accepted_documents",
    "attestation_refusals",
    "b64",
    "http_vector",
    "msgpack_values",
    "rejected_documents",
]

Vectors = dict[str, dict[str, Any]]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- msgpack.json -------------------------------------------------------------------------------


def _nested(levels: int) -> list[Any]:
    """``levels`` arrays, each the only element of the one around it; the innermost is empty."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


KEY_ORDER_IN = ["b", "a", "B", "_", "aa", "\u00e9", "\u20ac", "\ue000", "\U0001f600"]


def msgpack_values() -> list[tuple[str, Any]]:
    """(description, value): one value per encoding rule of canonical msgpack."""
    ints = [
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2**32 - 1,
        2**32,
        2**53 - 1,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -(2**31),
        -(2**31) - 1,
        -(2**53 - 1),
    ]
    values: list[tuple[str, Any]] = [("nil", None), ("false", False), ("true", True)]
    values += [(f"integer {i}: the shortest form that holds it", i) for i in ints]
    values += [(f"string of {n} UTF-8 bytes", "x" * n) for n in (0, 1, 31, 32, 255, 256)]
    values += [
        ("string: e-acute is 2 UTF-8 bytes", "\u00e9"),
        ("string: euro sign is 3 UTF-8 bytes", "\u20ac"),
        ("string: U+1F600 is 4 UTF-8 bytes (one code point)", "\U0001f600"),
    ]
    values += [(f"bin of {n} bytes", bytes(i % 256 for i in range(n))) for n in (0, 1, 255, 256)]
    values += [(f"array of {n}", list(range(n))) for n in (0, 15, 16)]
    values += [(f"map of {n} entries", {f"k{i:02d}": i for i in range(n)}) for n in (0, 15, 16)]
    values += [
        (
            "keys sorted by code point (= by UTF-8 bytes), not by UTF-16 units",
            {k: i for i, k in enumerate(KEY_ORDER_IN)},
        )
    ]
    values += [
        (
            "maps sorted at every level, inside arrays too",
            {"z": {"b": [{"d": 1, "c": 2}], "a": b"\x00"}, "y": [], "x": {"\u00e9": None, "e": True}},
        )
    ]
    values += [
        (
            "the HPKE info of a result: an array of str and bin",
            ["cleanroom/v1/result", "wire-test-vectors-v1", bytes(range(32)), "advertiser"],
        )
    ]
    return values


def _doc(data: bytes) -> dict[str, Any]:
    value = msgpack.unpackb(data, raw=False)
    assert isinstance(value, dict)
    return value


def _swap(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


def rejected_documents(delete: bytes, query: bytes) -> list[tuple[str, str, bytes]]:
    """(description, kind, bytes) of documents a receiver must refuse with ``bad_message``;
    each is one edit of the signed ``delete_request`` or ``query_request`` of requests.json."""
    doc, q = _doc(delete), _doc(query)
    issued = struct.pack(">I", doc["issued_at"])
    out = [
        (
            "keys not in sorted order",
            "delete_request",
            msgpack.packb(dict(reversed(list(doc.items()))), use_bin_type=True),
        ),
        (
            "a key twice (same value)",
            "delete_request",
            bytes([delete[0] + 1]) + delete[1:] + b"\xabpolicy_hash" + canonical_packb(doc["policy_hash"]),
        ),
        (
            "an integer not in its shortest form (uint64 for a uint32 value)",
            "delete_request",
            _swap(delete, b"\xce" + issued, b"\xcf\x00\x00\x00\x00" + issued),
        ),
        (
            "a string not in its shortest form (str8 for 9 bytes)",
            "delete_request",
            _swap(delete, b"\xa9publisher", b"\xd9\x09publisher"),
        ),
        (
            "bin not in its shortest form (bin16 for 16 bytes)",
            "delete_request",
            _swap(delete, b"\xc4\x10" + doc["nonce"], b"\xc5\x00\x10" + doc["nonce"]),
        ),
        (
            "a map header not in its shortest form (map16 for 6 entries)",
            "delete_request",
            b"\xde\x00\x06" + delete[1:],
        ),
        (
            "a float where an integer belongs",
            "delete_request",
            _swap(delete, b"\xce" + issued, b"\xcb" + struct.pack(">d", float(doc["issued_at"]))),
        ),
        (
            "a float anywhere (inside params)",
            "query_request",
            canonical_packb({**q, "params": {**q["params"], "x": 0.5}}),
        ),
        ("true where an integer belongs", "delete_request", canonical_packb({**doc, "issued_at": True})),
        (
            "bytes of the wrong length (15-byte nonce)",
            "delete_request",
            canonical_packb({**doc, "nonce": doc["nonce"][:15]}),
        ),
        (
            "str where bin belongs (nonce)",
            "delete_request",
            canonical_packb({**doc, "nonce": doc["nonce"].hex()[:16]}),
        ),
        (
            "a string over its limit (257 code points)",
            "delete_request",
            canonical_packb({**doc, "party": "p" * 257}),
        ),
        ("an unknown field", "delete_request", canonical_packb({**doc, "extra": 1})),
        (
            "a missing field",
            "delete_request",
            canonical_packb({k: v for k, v in doc.items() if k != "dataset"}),
        ),
        ("invalid UTF-8 in a string", "delete_request", _swap(delete, b"\xa9publisher", b"\xa9pub\xffisher")),
        ("a bin map key (inside params)", "query_request", canonical_packb({**q, "params": {b"k": 1}})),
        (
            "an integer map key (inside params)",
            "query_request",
            _swap(query, b"\xa6params\x81", b"\xa6params\x82\x01\x02"),
        ),
        (
            "an ext value (fixext 1 inside params)",
            "query_request",
            _swap(canonical_packb({**q, "params": {"x": 0}}), b"\xa1x\x00", b"\xa1x\xd4\x01x"),
        ),
        (
            "a value nested 9 deep (params is depth 1)",
            "query_request",
            canonical_packb({**q, "params": {"x": _nested(8)}}),
        ),
        ("bytes after the document", "delete_request", delete + b"\xc0"),
        ("not a map", "delete_request", canonical_packb(list(doc.values()))),
    ]
    return out


def accepted_documents(delete: bytes, query: bytes) -> list[tuple[str, str, bytes]]:
    """(description, kind, bytes) of documents at a limit, which a receiver must still accept."""
    doc, q = _doc(delete), _doc(query)
    return [
        (
            "a value nested 8 deep (params is depth 1)",
            "query_request",
            canonical_packb({**q, "params": {"x": _nested(7)}}),
        ),
        (
            "a 256-code-point string of 512 UTF-8 bytes: limits count code points",
            "delete_request",
            canonical_packb({**doc, "party": "\u00e9" * 256}),
        ),
    ]


def check_msgpack(v: Vectors) -> None:
    doc = v["msgpack"]
    described = msgpack_values()
    assert [d for d, _ in described] == [c["description"] for c in doc["values"]]
    for (_, value), case in zip(described, doc["values"], strict=True):
        data = h(case["bytes"])
        assert to_json(msgpack.unpackb(data, raw=False)) == case["value"] == to_json(value)
        assert canonical_packb(from_json(case["value"])) == data, case["description"]
    order = doc["key_order"]
    assert order["keys_in"] == KEY_ORDER_IN
    data = canonical_packb({k: i for i, k in enumerate(order["keys_in"])})
    assert data == h(order["bytes"])
    assert list(msgpack.unpackb(data, raw=False)) == order["keys_sorted"] == sorted(KEY_ORDER_IN)
    delete, query = (h(v["requests"][k]["bytes"]) for k in ("delete_request", "query_request"))
    for recipe, cases in ((rejected_documents, doc["rejected"]), (accepted_documents, doc["accepted"])):
        built = recipe(delete, query)
        assert [c["description"] for c in cases] == [d for d, _, _ in built]
        for (_, kind, data), case in zip(built, cases, strict=True):
            assert (case["kind"], h(case["bytes"])) == (kind, data), case["description"]
            if recipe is rejected_documents:
                try:
                    unpack_document(kind, data)
                except ProtocolError as exc:
                    assert exc.code == case["code"], case["description"]
                else:
                    raise AssertionError(f"accepted: {case['description']}")
            else:
                assert to_json(unpack_document(kind, data)) == case["document"]


# --- attestation.json ---------------------------------------------------------------------------


def _flip_hex(text: str) -> str:
    return text[:-1] + format(int(text[-1], 16) ^ 1, "x")


Refusal = tuple[Callable[[dict[str, Any]], dict[str, Any]], bool, bool, bytes]


def attestation_refusals() -> dict[str, Refusal]:
    """edit -> (bundle edit, allow simulation, request the bundle's nonce, appended to the
    verifier's own policy copy): one refusal each."""

    def field(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda b: {**b, name: _flip_hex(b[name])}

    same: Callable[[dict[str, Any]], dict[str, Any]] = dict
    return {
        "flip the last bit of enc_pub": (field("enc_pub"), True, True, b""),
        "flip the last bit of sig_pub": (field("sig_pub"), True, True, b""),
        "flip the last bit of nonce": (field("nonce"), True, False, b""),
        "flip the last bit of policy_hash": (field("policy_hash"), True, True, b""),
        "append a newline to the bundle's policy (and fix its policy_hash)": (
            lambda b: {
                **b,
                "policy": b64(_unb64(b["policy"]) + b"\n"),
                "policy_hash": hashlib.sha256(_unb64(b["policy"]) + b"\n").hexdigest(),
            },
            True,
            True,
            b"",
        ),
        "verify against another policy copy (a newline appended)": (same, True, True, b"\n"),
        "verify without allowing simulation": (same, False, True, b""),
        "request another nonce than the bundle's": (same, True, False, b""),
    }


@functools.lru_cache(maxsize=64)
def _verify(
    bundle_json: str,
    policy_text: str,
    now: int,
    nonce: bytes,
    allow_simulation: bool,
) -> tuple[bool, str | None, tuple[bytes, bytes, bytes] | None]:
    """(accepted, refusal code, bound keys); cached because dcap-qvl is the slow part."""
    from attestation.verifier.verify import VerifierPolicy, evaluate_bundle

    report = evaluate_bundle(
        json.loads(bundle_json),
        agreed_policy=policy_text.encode(),
        now=now,
        policy=VerifierPolicy(allow_simulation=allow_simulation),
        nonce=nonce,
    )
    return (
        report.accepted,
        None if report.error is None else report.error[0],
        None if report.bound_keys is None else tuple(report.bound_keys),
    )


def verify_bundle(
    bundle: dict[str, Any], policy_text: str, now: int, nonce: bytes, allow_simulation: bool = True
) -> tuple[bool, str | None, tuple[bytes, bytes, bytes] | None]:
    return _verify(json.dumps(bundle, sort_keys=True), policy_text, now, nonce, allow_simulation)


def check_attestation(v: Vectors) -> None:
    doc, keys, policy = v["attestation"], v["keys"]["enclave"], v["policy"]
    bundle, nonce = doc["bundle"], h(doc["nonce"])
    assert doc["now"] == from_json(v["result"]["document"])["created_at"]  # the session's clock
    assert bundle["format"] == 1 and bundle["mode"] == "simulation" and bundle["simulated"] is True
    assert (bundle["enc_pub"], bundle["sig_pub"]) == (keys["x25519_public"], keys["ed25519_public"])
    assert (
        _unb64(bundle["policy"]) == policy["text"].encode() and bundle["policy_hash"] == policy["policy_hash"]
    )
    assert bundle["nonce"] == doc["nonce"]
    expected = report_data(h(bundle["enc_pub"]), h(bundle["sig_pub"]), h(bundle["policy_hash"]), nonce)
    assert h(doc["report_data"]) == expected
    quote, fields = _unb64(bundle["quote"]), doc["quote_fields"]
    assert quote[368:432] == expected and fields["report_data"] == [368, 64]
    assert struct.unpack_from("<H", quote, 0)[0] == fields["version"] == 3
    assert quote[112:144].hex() == fields["mr_enclave"] and quote[176:208].hex() == fields["mr_signer"]
    assert (quote[96] & 0x02 != 0) is fields["debug"] is False
    accepted, code, bound = verify_bundle(bundle, policy["text"], doc["now"], nonce)
    assert accepted and code is None, code
    assert bound == (h(bundle["enc_pub"]), h(bundle["sig_pub"]), h(bundle["policy_hash"]))
    edits = attestation_refusals()
    assert [r["edit"] for r in doc["refusals"]] == list(edits)
    for refusal in doc["refusals"]:
        edit, allow, same_nonce, suffix = edits[refusal["edit"]]
        asked = nonce if same_nonce else bytes(32)
        accepted, code, _ = verify_bundle(
            edit(bundle), policy["text"] + suffix.decode(), doc["now"], asked, allow
        )
        assert not accepted and code == refusal["code"], (refusal["edit"], code)
    saved = doc["saved_result"]
    assert set(saved) == {"format", "signed", "attestation"} and saved["format"] == 1
    assert saved["attestation"] == bundle and _unb64(saved["signed"]) == h(v["result"]["signed"])


# --- template.json ------------------------------------------------------------------------------


def check_template(v: Vectors) -> None:
    from protocol.policy import parse_policy
    from protocol.query_plan import parse_plan
    from protocol.templates import instantiate
    from tests.vectors.test_vectors import check_decrypt_vector, check_signed_document

    doc = v["template"]
    policy = parse_policy(doc["policy"]["text"].encode())
    assert policy.hash.hex() == doc["policy"]["policy_hash"]
    assert doc["policy"]["text"].startswith(
        v["policy"]["text"].replace("wire-test-vectors-v1", "wire-test-vectors-template-v1")
    )
    assert [(u["party"], u["dataset"]) for u in doc["uploads"]] == [
        (d.owner, d.name) for d in policy.datasets
    ]
    for upload in doc["uploads"]:  # only what reproduces the uploads: their layout is upload.json's
        info = upload_key_hpke_info(policy.collaboration_id, policy.hash, upload["party"], upload["dataset"])
        check_decrypt_vector(upload["data_key_wrap"], v["keys"]["enclave"], info, h(upload["data_key"]))
    party = doc["query_request"]["signer"]
    signer = v["keys"]["parties"][party]
    request = check_signed_document("query_request", doc["query_request"], QUERY_LABEL, signer)
    template = policy.template(request["analysis"])
    assert template is not None and "plan" not in request and "sql" not in request
    plan = instantiate(template, request["params"])
    assert plan == from_json(doc["instantiated_plan"])
    result = check_signed_document("result", doc["result"], RESULT_LABEL, v["keys"]["enclave"])
    query_id = hashlib.sha256(h(doc["query_request"]["bytes"])).digest()
    assert result["query_id"] == query_id and result["analysis"] == template.id and result["kind"] == "plan"
    assert result["params"] == {
        "plan": parse_plan(plan).to_wire(),
        "sql": template.sql,
        "template_params": request["params"],
    }
    assert result["requested_by"] == party and result["recipients"] == list(template.recipients)
    sealed = doc["sealed"]
    signed = canonical_packb({"body": h(doc["result"]["bytes"]), "signature": h(doc["result"]["signature"])})
    info = result_hpke_info(policy.collaboration_id, query_id, sealed["recipient"])
    check_decrypt_vector(
        {k: x for k, x in sealed.items() if k != "recipient"},
        v["keys"]["parties"][sealed["recipient"]],
        info,
        signed,
    )
    assert sealed["recipient"] in result["recipients"]


# --- http.json ----------------------------------------------------------------------------------


def _upload_response(upload: dict[str, Any], receipt: dict[str, Any]) -> dict[str, Any]:
    fields = from_json(receipt["document"])
    return {
        "upload_id": fields["upload_id"].hex(),
        "rows": fields["rows"],
        "digest": upload["digest"],
        "receipt": b64(h(receipt["bytes"])),
        "signature": b64(h(receipt["signature"])),
    }


def _listed(receipt: dict[str, Any]) -> dict[str, Any]:
    fields = from_json(receipt["document"])
    return {
        "upload_id": fields["upload_id"].hex(),
        "party": fields["party"],
        "dataset": fields["dataset"],
        "rows": fields["rows"],
        "digest": fields["digest"].hex(),
        "accepted_at": fields["accepted_at"],
        "present": True,
    }


def _route(
    description: str, method: str, path: str, request: Any, status: int, response: Any
) -> dict[str, Any]:
    return {
        "description": description,
        "method": method,
        "path": path,
        "request": request,
        "status": status,
        "response": response,
    }


def http_vector(v: Vectors) -> dict[str, Any]:
    """The JSON bodies of the HTTP routes for the session of the other vector files."""
    from host.errors import _RETRYABLE, RETRY_AFTER_SECONDS, STATUS_BY_CODE

    uploads, receipts = v["upload"]["uploads"], v["receipts"]["upload_receipts"]
    query, deletion = v["requests"]["query_request"], v["requests"]["delete_request"]
    sealed = {s["recipient"]: b64(h(s["enc"]) + h(s["ciphertext"])) for s in v["result"]["sealed"]}
    answer = {"query_id": v["result"]["query_id"], "results": sealed}
    witness = v["witness"]
    proposal = witness["proposal"]
    pending = {
        "query_id": from_json(proposal["document"])["query_id"].hex(),
        "proposal": b64(h(proposal["bytes"])),
        "signature": b64(h(proposal["signature"])),
        "approvers": from_json(proposal["document"])["approvers"],
        "approved_by": [],
        "status": "approval_required",
    }
    signed = lambda e: {"request": b64(h(e["bytes"])), "signature": b64(h(e["signature"]))}  # noqa: E731
    routes = {
        "attestation": _route(
            "the bundle of attestation.json",
            "GET",
            f"/v1/attestation?nonce={v['attestation']['nonce']}",
            None,
            200,
            v["attestation"]["bundle"],
        ),
        "upload": _route(
            "body: the record_stream of upload.json uploads[0]",
            "POST",
            "/v1/uploads",
            None,
            201,
            _upload_response(uploads[0], receipts[0]),
        ),
        "list_uploads": _route(
            "after both uploads, before the deletion",
            "GET",
            "/v1/uploads?limit=1000",
            None,
            200,
            {"uploads": [_listed(r) for r in receipts], "more": False},
        ),
        "query": _route("the query of requests.json", "POST", "/v1/queries", signed(query), 200, answer),
        "get_result": _route(
            "the stored answer", "GET", f"/v1/results/{v['result']['query_id']}", None, 200, answer
        ),
        "list_results": _route(
            "created_at is the host's own clock",
            "GET",
            "/v1/results?recipient=advertiser",
            None,
            200,
            {
                "results": [
                    {
                        "query_id": v["result"]["query_id"],
                        "created_at": from_json(v["result"]["document"])["created_at"],
                        "recipients": sorted(sealed),
                    }
                ],
                "more": False,
            },
        ),
        "delete": _route(
            "the deletion of requests.json",
            "POST",
            "/v1/deletions",
            signed(deletion),
            200,
            {
                **{
                    k: b64(h(v["receipts"]["deletion_receipt"][b]))
                    for k, b in (("receipt", "bytes"), ("signature", "signature"))
                },
                "upload_ids": [from_json(receipts[0]["document"])["upload_id"].hex()],
            },
        ),
        "audit": _route(
            "every entry of audit.json",
            "GET",
            "/v1/audit?after=0",
            None,
            200,
            {"entries": [b64(h(e["signed"])) for e in v["audit"]["entries"]]},
        ),
        "witness_query": _route(
            "the witness query of witness.json: co-signatures needed",
            "POST",
            "/v1/queries",
            signed(witness["query_request"]),
            202,
            pending,
        ),
        "approve": _route(
            "the publisher's approval of witness.json",
            "POST",
            f"/v1/approvals/{pending['query_id']}",
            {"party": "publisher", "signature": b64(h(witness["approvals"]["publisher"]))},
            200,
            {**pending, "approved_by": ["publisher"]},
        ),
        "budget": _route(
            "the budget_status of witness.json",
            "GET",
            "/v1/budget",
            None,
            200,
            {
                "status": b64(h(witness["budget_status"]["bytes"])),
                "signature": b64(h(witness["budget_status"]["signature"])),
            },
        ),
    }
    errors = []
    for code, status in STATUS_BY_CODE.items():
        cls = error_class_for_code(code)
        assert cls.code == code, code
        message = cls().message
        errors.append(
            {
                "code": code,
                "status": status,
                "retry_after": str(RETRY_AFTER_SECONDS) if code in _RETRYABLE else None,
                "body": {"error": {"code": code, "message": message}},
            }
        )
    return {
        "description": "HTTP JSON bodies of the routes (docs/wire.md#http-api), built from the other "
        "files; every error code with its HTTP status and default message.",
        "routes": routes,
        "errors": errors,
    }


def check_http(v: Vectors) -> None:
    assert v["http"] == http_vector(v)


CHECKS_EXTRA: dict[str, Callable[[Vectors], None]] = {
    "msgpack": check_msgpack,
    "attestation": check_attestation,
    "template": check_template,
    "http": check_http,
}
