"""Every error leaves the host as ``{"error": {"code", "message"}}`` with a status from ONE table.

Codes come from ``protocol.errors`` (stable, shared with the enclave and the client); only this
module knows HTTP. Werkzeug's own HTTP errors (unknown route, wrong method, oversized body) get
the same shape, and any unexpected exception becomes a generic 500 ``internal`` whose traceback
goes to the host log only: no traceback or data value ever reaches a client.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from protocol.errors import CleanroomError

__all__ = ["RETRY_AFTER_SECONDS", "STATUS_BY_CODE", "error_response", "register_error_handlers"]

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5

STATUS_BY_CODE: dict[str, int] = {
    "bad_message": 400,
    "bad_version": 400,
    "message_too_large": 413,
    "decrypt_failed": 400,
    "bad_signature": 403,
    "replay": 409,
    "policy_denied": 403,
    "budget_exhausted": 403,
    "policy_invalid": 400,
    "invalid_input": 422,
    "not_found": 404,
    "conflict": 409,
    "enclave_unavailable": 503,
    "enclave_busy": 503,
    "state_invalid": 500,
    "rollback_detected": 500,
    "witness_refused": 409,
    "approval_timeout": 504,
    # The enclave's evidence could not be produced or checked: an upstream failure.
    "attestation_failed": 502,
    "quote_invalid": 502,
    "collateral_expired": 502,
    "tcb_status_not_allowed": 502,
    "debug_enclave": 502,
    "measurement_mismatch": 502,
    "report_data_mismatch": 502,
    "policy_mismatch": 502,
    "simulation_not_allowed": 502,
    "stale_nonce": 502,
    "internal": 500,
}

# Werkzeug errors whose natural name differs from the code a client already knows.
_HTTP_CODES = {
    400: "bad_message",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",  # a client stalled while sending its body (host/read_guard.py)
    413: "message_too_large",
    415: "unsupported_media_type",
}

_RETRYABLE = {"enclave_unavailable", "enclave_busy"}


def error_response(code: str, message: str, status: int) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if code in _RETRYABLE:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _cleanroom_error(exc: CleanroomError) -> Response:
    status = STATUS_BY_CODE.get(exc.code, 500)
    if status >= 500:
        log.warning("request failed: %s", exc.code)
    # Messages are written never to carry data values (protocol/errors.py), so they pass through.
    return error_response(exc.code, exc.message, status)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    response = error_response(code, exc.description or exc.name or "error", status)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":  # keeps Allow on 405, Retry-After on 503
            response.headers[name] = value
    return response


def _timeout(exc: TimeoutError) -> Response:
    # A socket read timed out in a view that does not guard its body itself (host/worker.py sets
    # the timeout on every connection): the client stalled, not the host.
    return error_response("request_timeout", "the request body stalled", 408)


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response("internal", "internal error", 500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CleanroomError, _cleanroom_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(TimeoutError, _timeout)
    app.register_error_handler(Exception, _unexpected)
