"""The ``GET /v1/results`` listing's part of the OpenAPI document (merged by ``host/openapi.py``).

Kept apart so that the main document stays one screenful per concern; it is checked with the
rest by ``tests/host/test_openapi.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["RESULT_LIST_SCHEMA", "result_list_operation"]

_QUERY_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$"}

RESULT_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["results", "more"],
    "properties": {
        "more": {"type": "boolean", "description": "more results follow: ask again with after"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["query_id", "created_at", "recipients"],
                "properties": {
                    "query_id": _QUERY_ID,
                    "created_at": {"type": "integer",
                                   "description": "when the host stored it (host clock, unsigned)"},
                    "recipients": {"type": "array", "items": {"type": "string"},
                                   "description": "the parties it holds an encrypted result for"},
                },
            },
        },
    },
}


def result_list_operation(responses: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The operation object; ``responses`` is ``host.openapi._responses``."""
    return {
        "operationId": "listResults",
        "summary": "The stored results the host knows of (informational, not signed), one page",
        "parameters": [{
            "name": "recipient", "in": "query", "required": False,
            "description": "only results encrypted to this party",
            "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"},
        }, {
            "name": "after", "in": "query", "required": False,
            "description": "only results stored after this query id (404 if it is not listed)",
            "schema": _QUERY_ID,
        }, {
            "name": "limit", "in": "query", "required": False,
            "description": "at most this many results (default and maximum 1000)",
            "schema": {"type": "string", "pattern": "^[0-9]{1,4}$"},
        }],
        "responses": responses(
            {200: ("Stored results in storage order", {"$ref": "#/components/schemas/ResultList"})},
            (400, 404)),
    }
