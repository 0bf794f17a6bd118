"""The one exception tree of the clean room.

Every error has a stable string ``code`` that programs match on; the message is for people and
never contains a data value (no row, key, identifier or amount). HTTP statuses for these codes
live in ``host/errors.py`` so that HTTP stays out of the trusted code.
"""

from __future__ import annotations

__all__ = [
    "ApprovalTimeout",
    "AttestationError",
    "AuthenticationFailed",
    "BudgetExhausted",
    "CleanroomError",
    "CollateralExpired",
    "ConflictError",
    "DebugEnclave",
    "DecryptionFailed",
    "EnclaveBusy",
    "EnclaveUnavailable",
    "InternalError",
    "InvalidInput",
    "MeasurementMismatch",
    "MessageTooLarge",
    "NotFound",
    "PolicyInvalid",
    "PolicyMismatch",
    "PolicyViolation",
    "ProtocolError",
    "QuoteInvalid",
    "ReplayDetected",
    "ReportDataMismatch",
    "RollbackDetected",
    "SimulationNotAllowed",
    "StaleNonce",
    "StateError",
    "TcbStatusNotAllowed",
    "UnsupportedVersion",
    "WitnessRefused",
    "clause_denied",
    "error_class_for_code",
    "error_from_wire",
]


class CleanroomError(Exception):
    """Base of every error the clean room raises on purpose."""

    code = "internal"
    default_message = "internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InternalError(CleanroomError):
    """Something failed that no input should be able to cause."""


class ProtocolError(CleanroomError):
    """A malformed message: bad msgpack, wrong type, unknown or missing field."""

    code = "bad_message"
    default_message = "malformed message"


class UnsupportedVersion(ProtocolError):
    code = "bad_version"
    default_message = "unsupported protocol version"


class MessageTooLarge(ProtocolError):
    code = "message_too_large"
    default_message = "message exceeds the size limit"


class DecryptionFailed(CleanroomError):
    """One answer for every envelope failure: wrong key, bad tag, truncation, reordering."""

    code = "decrypt_failed"
    default_message = "ciphertext did not authenticate"


class AuthenticationFailed(CleanroomError):
    """A party's signature is missing, invalid, or from a key the policy does not name."""

    code = "bad_signature"
    default_message = "signature did not verify"


class ReplayDetected(CleanroomError):
    code = "replay"
    default_message = "request was already seen or is outside the accepted time window"


class PolicyViolation(CleanroomError):
    """The collaboration policy does not allow this request."""

    code = "policy_denied"
    default_message = "request not allowed by the collaboration policy"


def clause_denied(clause: str, rule: str) -> PolicyViolation:
    """A query refused by one of its clauses: "<clause>: <the rule that forbids it>"."""
    return PolicyViolation(f"{clause}: {rule}")


class BudgetExhausted(PolicyViolation):
    code = "budget_exhausted"
    default_message = "privacy budget exhausted"


class PolicyInvalid(CleanroomError):
    """The policy document itself is invalid; the message names the field."""

    code = "policy_invalid"
    default_message = "invalid policy"


class InvalidInput(CleanroomError):
    """Input data does not match the agreed schema (columns, types, limits)."""

    code = "invalid_input"
    default_message = "input does not match the agreed schema"


class NotFound(CleanroomError):
    code = "not_found"
    default_message = "no such resource"


class ConflictError(CleanroomError):
    code = "conflict"
    default_message = "request conflicts with the current state"


class StateError(CleanroomError):
    """Sealed or stored state is missing, altered or inconsistent."""

    code = "state_invalid"
    default_message = "stored state is inconsistent"


class RollbackDetected(StateError):
    code = "rollback_detected"
    default_message = "the enclave's audit head went backwards or forked"


class ApprovalTimeout(CleanroomError):
    """A co-signed query was not approved in time (docs/witness.md); nothing was charged."""

    code = "approval_timeout"
    default_message = "the query's approvers did not co-sign it in time"


class WitnessRefused(StateError):
    """A witness will not co-sign: the proposal does not extend what it signed, or overspends."""

    code = "witness_refused"
    default_message = "the witness refuses to co-sign this charge"


class EnclaveUnavailable(CleanroomError):
    """Raised by the host only: the enclave process is down or restarting."""

    code = "enclave_unavailable"
    default_message = "the enclave is unavailable; retry shortly"


class EnclaveBusy(CleanroomError):
    code = "enclave_busy"
    default_message = "too many uploads in progress; retry shortly"


class AttestationError(CleanroomError):
    """The enclave's evidence was not accepted; subclasses say which check refused it."""

    code = "attestation_failed"
    default_message = "attestation was not accepted"


class QuoteInvalid(AttestationError):
    code = "quote_invalid"
    default_message = "quote or its signature chain did not verify"


class CollateralExpired(AttestationError):
    code = "collateral_expired"
    default_message = "collateral is expired or not yet valid"


class TcbStatusNotAllowed(AttestationError):
    code = "tcb_status_not_allowed"
    default_message = "the platform's TCB status is not allowed"


class DebugEnclave(AttestationError):
    code = "debug_enclave"
    default_message = "the enclave runs in debug mode"


class MeasurementMismatch(AttestationError):
    code = "measurement_mismatch"
    default_message = "the enclave measurement is not the expected one"


class ReportDataMismatch(AttestationError):
    code = "report_data_mismatch"
    default_message = "the quote does not bind the presented keys"


class PolicyMismatch(AttestationError):
    code = "policy_mismatch"
    default_message = "the enclave runs a different collaboration policy"


class SimulationNotAllowed(AttestationError):
    code = "simulation_not_allowed"
    default_message = "simulated attestation offered and not explicitly allowed"


class StaleNonce(AttestationError):
    code = "stale_nonce"
    default_message = "the attestation does not carry the requested nonce"


def _all_subclasses(cls: type[CleanroomError]) -> list[type[CleanroomError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_class_for_code(code: str) -> type[CleanroomError]:
    """The class whose ``code`` is ``code``; unknown codes map to the base class."""
    for cls in _all_subclasses(CleanroomError):
        if cls.code == code and cls is not InternalError:
            return cls
    return CleanroomError


def error_from_wire(payload: object) -> CleanroomError:
    """Rebuild an error from ``{"code", "message"}`` received over the wire."""
    if not isinstance(payload, dict):
        return ProtocolError("error payload is not a map")
    code = payload.get("code")
    message = payload.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return ProtocolError("error payload lacks code or message")
    err = error_class_for_code(code)(message)
    if err.code != code:  # keep an unknown code visible rather than renaming it
        err.code = code
    return err
