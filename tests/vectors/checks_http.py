"""``http.json``: the JSON bodies of the HTTP routes (docs/wire.md#http-api) for the session of
the other vector files, built from them, and every error code with its status, ``Retry-After``
and default message; ``b64`` is the base64 those bodies carry bytes in.

``http_vector`` is both what the generator writes and what ``check_http`` compares with.
"""

from __future__ import annotations

import base64
from typing import Any

from protocol.errors import error_class_for_code
from tests.vectors.checks_common import Vectors
from tests.vectors.loader import from_json, h

__all__ = ["b64", "check_http", "http_vector"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")



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
