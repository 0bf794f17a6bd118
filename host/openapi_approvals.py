"""The budget and co-signed query routes' part of the OpenAPI document (merged by ``host/openapi.py``).

The protocol behind them is docs/witness.md, the bytes docs/wire.md#co-signed-queries; the shapes
are checked with the rest of the document by ``tests/host/test_openapi.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["APPROVAL_SCHEMAS", "approval_paths"]

_QUERY_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_B64 = {"type": "string", "contentEncoding": "base64"}
_PARTY = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}
_QUERY_ID_PARAM = {"name": "query_id", "in": "path", "required": True,
                   "description": "SHA-256 of the query request bytes, lowercase hex", "schema": _QUERY_ID}

APPROVAL_SCHEMAS: dict[str, dict[str, Any]] = {
    "BudgetStatus": {
        "type": "object", "additionalProperties": False, "required": ["status", "signature"],
        "properties": {
            "status": {**_B64, "description": "budget_status document (docs/wire.md#budget_status)"},
            "signature": {**_B64, "description": "enclave Ed25519 over "
                                                 "'cleanroom/v1/budget-status\\x00' || status"},
        },
    },
    "PendingQuery": {
        "type": "object", "additionalProperties": False,
        "required": ["query_id", "status", "proposal", "signature", "approvers", "approved_by"],
        "properties": {
            "query_id": _QUERY_ID,
            "status": {"enum": ["approval_required", "executed", "refused"]},
            "proposal": {**_B64, "description": "charge_proposal document (docs/wire.md#charge_proposal)"},
            "signature": {**_B64, "description": "enclave Ed25519 over "
                                                 "'cleanroom/v1/charge-proposal\\x00' || proposal"},
            "approvers": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"enum": ["witness", "activation"]}},
                "description": "party -> why its co-signature is needed"},
            "approved_by": {"type": "array", "items": _PARTY},
            "error": {"type": "object", "description": "why a refused query was refused",
                      "required": ["code", "message"],
                      "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
    "PendingList": {
        "type": "object", "additionalProperties": False, "required": ["pending"],
        "properties": {"pending": {"type": "array", "items": {"$ref": "#/components/schemas/PendingQuery"}}},
    },
    "Approval": {
        "type": "object", "additionalProperties": False, "required": ["party", "signature"],
        "properties": {
            "party": _PARTY,
            "signature": {**_B64, "description": "the approver's Ed25519 over "
                                                 "'cleanroom/v1/charge-approval\\x00' || proposal"},
        },
    },
    "QueryStatus": {
        "type": "object", "required": ["query_id", "status"],
        "properties": {"query_id": _QUERY_ID,
                       "status": {"enum": ["approval_required", "executed", "refused"]}},
    },
}


def approval_paths(responses: Callable[..., dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The path objects; ``responses`` is ``host.openapi._responses``."""
    return {
        "/v1/budget": {"get": {
            "operationId": "budgetStatus",
            "summary": "Every dataset's budget and each requester's share, enclave-signed; free",
            "responses": responses({200: ("The signed budget status",
                                          {"$ref": "#/components/schemas/BudgetStatus"})}, (500, 503)),
        }},
        "/v1/approvals": {"get": {
            "operationId": "pendingApprovals",
            "summary": "Charge proposals waiting for this party's co-signature (docs/witness.md)",
            "parameters": [{"name": "party", "in": "query", "required": True, "schema": _PARTY}],
            "responses": responses({200: ("Pending proposals, oldest first",
                                          {"$ref": "#/components/schemas/PendingList"})}, (400, 500, 503)),
        }},
        "/v1/approvals/{query_id}": {"post": {
            "operationId": "approveQuery",
            "summary": "One approver's co-signature; the last one runs the query",
            "parameters": [_QUERY_ID_PARAM],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Approval"}}}},
            "responses": responses({200: ("Where the query stands now",
                                          {"$ref": "#/components/schemas/PendingQuery"})},
                                   (400, 404, 500, 503)),
        }},
        "/v1/queries/{query_id}": {"get": {
            "operationId": "queryStatus",
            "summary": "Whether a co-signed query is waiting, ran (see /v1/results) or was refused",
            "parameters": [_QUERY_ID_PARAM],
            "responses": responses({200: ("The query's status",
                                          {"$ref": "#/components/schemas/QueryStatus"})}, (400, 404)),
        }},
    }
