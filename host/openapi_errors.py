"""The error part of the OpenAPI document: which codes each status carries, their schema, an example.

Derived from ``host.errors.STATUS_BY_CODE`` (the one table of codes and statuses) and Werkzeug's
own errors as ``host/errors.py`` renders them; the codes are docs/wire.md#errors.
"""

from __future__ import annotations

from typing import Any

from host.errors import STATUS_BY_CODE
from protocol.errors import error_class_for_code

__all__ = ["error_codes_for_status", "error_example", "error_schema"]

# Werkzeug's own errors, rendered by host/errors.py with these codes (its _HTTP_CODES table).
_WERKZEUG_CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_message",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    408: ("request_timeout",),  # a client stalled while sending its body (host/read_guard.py)
    413: ("message_too_large",),
}


def error_codes_for_status(status: int) -> list[str]:
    """Every error code the host may answer with ``status`` (sorted, no duplicates)."""
    codes = {code for code, st in STATUS_BY_CODE.items() if st == status}
    codes.update(_WERKZEUG_CODES.get(status, ()))
    return sorted(codes)


def error_schema(status: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": error_codes_for_status(status)},
                    # Messages are for people; they never carry a data value (protocol/errors.py).
                    "message": {"type": "string"},
                },
            }
        },
    }


def error_example(codes: list[str]) -> dict[str, Any]:
    """The body of the first of ``codes`` with its default message."""
    code = codes[0]
    cls = error_class_for_code(code)
    message = cls().message if cls.code == code else "the error's description"
    return {"error": {"code": code, "message": message}}
