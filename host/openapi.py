"""The host API as an OpenAPI 3.1 document (data, served at ``GET /v1/openapi.json``).

Written by hand from ``host/api.py`` and ``docs/http-api.md`` and kept honest by
``tests/host/test_openapi.py``, which checks it against the real app: every ``/v1`` route and
method is documented and vice versa, and generated requests only ever get documented statuses
with bodies that match the documented schemas. The bytes inside the bodies (documents,
signatures, the upload body) are specified in docs/wire.md, which descriptions cite by section;
the examples are the known-answer vectors' session (``host/openapi_examples.py``).

Error responses are derived from ``host.errors.STATUS_BY_CODE`` (the one table of codes and
statuses, ``host/openapi_errors.py``), so each documented status lists exactly the error codes the
host can answer with it.
Schemas are closed (``additionalProperties: false``) wherever the host builds the object itself:
a new field is a contract change and belongs here first. The enclave's health body stays open,
as the enclave may report more than the host knows about.
"""

from __future__ import annotations

import copy
from typing import Any

from host.openapi_approvals import APPROVAL_SCHEMAS, approval_paths
from host.openapi_errors import error_codes_for_status, error_example, error_schema
from host.openapi_examples import add_examples
from host.openapi_results import RESULT_LIST_SCHEMA, result_list_operation

# error_codes_for_status is host.openapi_errors', re-exported for the callers that knew it here
__all__ = ["OPENAPI_VERSION", "document", "error_codes_for_status"]

OPENAPI_VERSION = "3.1.0"

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    400: "Malformed request (see the error code)",
    403: "Refused: bad signature or not allowed by the policy",
    404: "No such resource",
    408: "The client stalled: the body did not arrive within the host's read timeouts",
    409: "Replay or conflict with the current state",
    413: "Request body over the size limit",
    422: "Data does not match the agreed schema",
    500: "Stored state does not match the sealed state, or a host bug (details in the host log)",
    502: "The enclave's evidence could not be produced or checked",
    503: "The enclave is restarting or busy; retry after Retry-After seconds",
}

_HEX32 = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_B64 = {"type": "string", "contentEncoding": "base64",
        "pattern": "^[A-Za-z0-9+/]*={0,2}$"}
_COUNT = {"type": "integer", "minimum": 0}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(success: dict[int, tuple[str, dict[str, Any]]],
               errors: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, (description, schema) in success.items():
        out[str(status)] = _json(schema, description)
    for status in errors:
        response = _json({"$ref": f"#/components/schemas/Error{status}"}, _STATUS_TEXT[status])
        response["content"]["application/json"]["example"] = error_example(error_codes_for_status(status))
        if status == 503:
            response["headers"] = {"Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }}
        out[str(status)] = response
    return out


# Statuses any route that calls the enclave can produce: it is down or restarting (503), or it
# answered something the host did not expect (500 internal).
_ENCLAVE = (500, 503)

_SCHEMAS: dict[str, dict[str, Any]] = {
    "Health": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "enclave"],
        "properties": {
            "status": {"const": "ok"},
            "enclave": {
                "type": "object",
                "required": ["mode", "uptime_s", "datasets", "uploads_in_progress"],
                "properties": {
                    "mode": {"type": "string"},
                    "uptime_s": _COUNT,
                    "datasets": _COUNT,
                    "uploads_in_progress": _COUNT,
                },
            },
        },
    },
    "AttestationBundle": {
        "type": "object",
        "description": "the enclave's evidence; the checks before uploading are docs/wire.md#verifier-checks",
        "additionalProperties": False,
        "required": ["format", "mode", "simulated", "quote", "collateral", "enc_pub", "sig_pub",
                     "policy", "policy_hash", "nonce", "simulation_root_ca"],
        "properties": {
            "format": {"const": 1},
            "mode": {"type": "string"},
            "simulated": {"type": "boolean"},
            "quote": _B64,
            "collateral": {"type": ["string", "null"],
                           "description": "DCAP collateral JSON (Intel-signed), if the host has it"},
            "enc_pub": _HEX64,
            "sig_pub": _HEX64,
            "policy": _B64,
            "policy_hash": _HEX64,
            "nonce": _HEX64,
            "simulation_root_ca": {"anyOf": [_B64, {"type": "null"}]},
        },
    },
    "UploadReceipt": {
        "type": "object",
        "additionalProperties": False,
        "required": ["upload_id", "rows", "digest", "receipt", "signature"],
        "properties": {
            "upload_id": _HEX32,
            "rows": _COUNT,
            "digest": _HEX64,
            "receipt": {**_B64, "description": "upload_receipt document (docs/wire.md#upload_receipt)"},
            "signature": {**_B64, "description": "enclave Ed25519 over 'cleanroom/v1/upload-receipt\\x00' "
                                                 "|| receipt (docs/wire.md#checking-an-upload-receipt)"},
        },
    },
    "UploadList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["uploads", "more"],
        "properties": {
            "more": {"type": "boolean", "description": "more uploads follow: ask again with after"},
            "uploads": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["upload_id", "party", "dataset", "rows", "digest", "accepted_at"],
                    "properties": {
                        "upload_id": _HEX32,
                        "party": {"type": "string"},
                        "dataset": {"type": "string"},
                        "rows": _COUNT,
                        "digest": _HEX64,
                        "accepted_at": {"type": "integer"},
                        "present": {"type": "boolean",
                                    "description": "re-ingested since the enclave's last start"},
                    },
                },
            }
        },
    },
    "QueryRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["request", "signature"],
        "properties": {
            "request": {**_B64, "description": "query_request document (docs/wire.md#query_request)"},
            "signature": {**_B64, "description": "the requester's Ed25519 over "
                                                 "'cleanroom/v1/query-request\\x00' || request"},
        },
    },
    "QueryResponse": {
        "type": "object",
        "additionalProperties": False,
        "required": ["query_id", "results"],
        "properties": {
            "query_id": _HEX64,
            "results": {
                "type": "object",
                "description": "party id -> its sealed result, enc || ciphertext (docs/wire.md#results)",
                "additionalProperties": _B64,
            },
        },
    },
    "AuditLog": {
        "type": "object",
        "additionalProperties": False,
        "required": ["entries"],
        "properties": {
            "entries": {"type": "array",
                        "description": "signed audit entries in order (docs/wire.md#audit-log)",
                        "items": _B64},
        },
    },
    "DeletionRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["request", "signature"],
        "properties": {
            "request": {**_B64, "description": "delete_request document (docs/wire.md#delete_request)"},
            "signature": {**_B64, "description": "the owner's Ed25519 over "
                                                 "'cleanroom/v1/delete-request\\x00' || request"},
        },
    },
    "DeletionReceipt": {
        "type": "object",
        "additionalProperties": False,
        "required": ["receipt", "signature", "upload_ids"],
        "properties": {
            "receipt": {**_B64, "description": "deletion_receipt document (docs/wire.md#deletion_receipt)"},
            "signature": {**_B64, "description": "enclave Ed25519 over "
                                                 "'cleanroom/v1/deletion-receipt\\x00' || receipt"},
            "upload_ids": {"type": "array", "items": _HEX32,
                           "description": "the uploads whose ciphertext the host removed"},
        },
    },
    "ResultList": RESULT_LIST_SCHEMA,
    **APPROVAL_SCHEMAS,
    "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"]},
}

_PATHS: dict[str, dict[str, Any]] = {
    "/v1/health": {
        "get": {
            "operationId": "health",
            "summary": "Host and enclave status",
            "responses": _responses({200: ("The enclave answers", {"$ref": "#/components/schemas/Health"})},
                                    _ENCLAVE),
        }
    },
    "/v1/attestation": {
        "get": {
            "operationId": "attestation",
            "summary": "The attestation bundle, optionally for a verifier's fresh nonce",
            "parameters": [{
                "name": "nonce", "in": "query", "required": False,
                "description": "32 bytes as 64 hex digits; REPORTDATA binds it (docs/wire.md#reportdata)",
                "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
            }],
            "responses": _responses(
                {200: ("The bundle", {"$ref": "#/components/schemas/AttestationBundle"})},
                (400, 500, 502, 503)),
        }
    },
    "/v1/uploads": {
        "post": {
            "operationId": "createUpload",
            "summary": "Stream one party's encrypted upload; 201 only once it is stored durably",
            "requestBody": {
                "required": True,
                "description": ("the upload body of docs/wire.md#upload-body: records u32be(length) || "
                                "payload, record 0 the signed header, then one per chunk (chunked "
                                "transfer allowed)"),
                "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                   "format": "binary"}}},
            },
            # 500 includes state_invalid: a stored upload does not match the sealed manifest.
            # 408: the body stalled (idle read timeout, header deadline or rate floor).
            "responses": _responses(
                {201: ("Accepted: the enclave-signed receipt",
                       {"$ref": "#/components/schemas/UploadReceipt"})},
                (400, 403, 408, 409, 413, 422, 500, 503)),
        },
        "get": {
            "operationId": "listUploads",
            "summary": "The uploads the enclave accepted (informational, not signed), one page",
            "parameters": [{
                "name": "after", "in": "query", "required": False,
                "description": "only uploads accepted after this upload id (404 if it is not listed)",
                "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
            }, {
                "name": "limit", "in": "query", "required": False,
                "description": "at most this many uploads (default and maximum 1000)",
                "schema": {"type": "string", "pattern": "^[0-9]{1,4}$"},
            }],
            "responses": _responses(
                {200: ("Accepted uploads in acceptance order", {"$ref": "#/components/schemas/UploadList"})},
                (400, 404, *_ENCLAVE)),
        },
    },
    "/v1/queries": {
        "post": {
            "operationId": "runQuery",
            "summary": "Run a party-signed query; one encrypted result per recipient",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryRequest"}}},
            },
            # 404: the enclave may name an unknown resource; 422: parameters that do not fit the
            # schema; 500 includes state_invalid (uploads the host has not replayed).
            "responses": _responses(
                {200: ("The encrypted results", {"$ref": "#/components/schemas/QueryResponse"}),
                 202: ("Waiting for co-signatures (docs/witness.md): nothing charged yet",
                       {"$ref": "#/components/schemas/PendingQuery"})},
                (400, 403, 404, 409, 413, 422, 500, 503)),
        }
    },
    "/v1/results": {"get": result_list_operation(_responses)},
    **approval_paths(_responses),
    "/v1/results/{query_id}": {
        "get": {
            "operationId": "getResult",
            "summary": "The stored response of an earlier query",
            "parameters": [{
                "name": "query_id", "in": "path", "required": True,
                "description": "SHA-256 of the query request bytes, lowercase hex",
                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            }],
            "responses": _responses(
                {200: ("The stored response", {"$ref": "#/components/schemas/QueryResponse"})},
                (400, 404)),
        }
    },
    "/v1/audit": {
        "get": {
            "operationId": "auditLog",
            "summary": "The audit hash chain as the host stored it (verify offline; never trust)",
            "parameters": [{
                "name": "after", "in": "query", "required": False,
                "description": "only entries with a sequence number above this",
                "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
            }],
            "responses": _responses(
                {200: ("Audit entries", {"$ref": "#/components/schemas/AuditLog"})}, (400,)),
        }
    },
    "/v1/deletions": {
        "post": {
            "operationId": "deleteDataset",
            "summary": "A party's signed request to delete its dataset; returns a signed receipt",
            "requestBody": {
                "required": True,
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/DeletionRequest"}}},
            },
            "responses": _responses(
                {200: ("Deleted: the enclave-signed deletion receipt",
                       {"$ref": "#/components/schemas/DeletionReceipt"})},
                (400, 403, 404, 409, 413, 500, 503)),
        }
    },
    "/v1/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": _responses(
                {200: ("OpenAPI 3.1 document", {"$ref": "#/components/schemas/OpenApiDocument"})}, ()),
        }
    },
}


def document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI document (callers may mutate it)."""
    statuses = sorted({int(status) for path in _PATHS.values() for op in path.values()
                       for status in op["responses"] if int(status) >= 400})
    schemas = {**_SCHEMAS, **{f"Error{status}": error_schema(status) for status in statuses}}
    doc = copy.deepcopy({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Clean room host API",
            "version": "1",
            "description": (
                "The untrusted host of the SGX data clean room. It relays ciphertext and signed, "
                "encrypted outputs between the parties and the enclave; it never holds a key. Every "
                'error is {"error": {"code", "message"}} with a stable code (docs/wire.md#errors). '
                "The bytes inside the bodies are specified in docs/wire.md of the source repository."
            ),
        },
        "paths": _PATHS,
        "components": {"schemas": schemas},
    })
    add_examples(doc["paths"])
    return doc
