"""The one table that maps dcap-qvl's failure messages to this project's refusals.

dcap-qvl raises ``ValueError("Verification failed: ...")`` for everything. Each row maps its
wording (a substring; first match wins, so specific rows come before general ones) to our error
class, the check it belongs to, and a short fixed message: the library's text can carry raw
values and must not reach a party's screen. Wording comes from the 0.7.0 wheel
(docs/verifying.md) and may change between versions; an unknown message falls
back to ``QuoteInvalid``, so a new wording can never turn a failure into an acceptance.

Party side only; imports no dcap-qvl itself.
"""

from __future__ import annotations

from typing import NamedTuple

from protocol.errors import (
    AttestationError,
    CollateralExpired,
    DebugEnclave,
    QuoteInvalid,
    TcbStatusNotAllowed,
)

__all__ = ["COLLATERAL_TIME", "DCAP_FAILURES", "SIGNATURE_CHAIN", "DcapFailure", "classify_dcap_error"]

# Names of the report checks a dcap-qvl failure can land in.
SIGNATURE_CHAIN = "signature_chain"
COLLATERAL_TIME = "collateral_time"


class DcapFailure(NamedTuple):
    needle: str
    error: type[AttestationError]
    check: str
    message: str


_SIG, _TIME = SIGNATURE_CHAIN, COLLATERAL_TIME
# fmt: off
DCAP_FAILURES: tuple[DcapFailure, ...] = (
    DcapFailure("Debug mode is enabled", DebugEnclave, "debug", "the enclave runs in debug mode"),
    DcapFailure("TCB status is invalid", TcbStatusNotAllowed, "tcb_status", "the platform TCB is revoked"),
    DcapFailure("CrlExpired", CollateralExpired, _TIME, "a CRL is expired at this time"),
    DcapFailure("CertExpired", CollateralExpired, _TIME, "a certificate is expired"),
    DcapFailure("CertNotValidYet", CollateralExpired, _TIME, "a certificate is not yet valid"),
    DcapFailure("issue date is in the future", CollateralExpired, _TIME, "collateral is not yet valid"),
    DcapFailure("expired", CollateralExpired, _TIME, "collateral is expired at this time"),
    DcapFailure("CertRevoked", QuoteInvalid, _SIG, "the PCK certificate is revoked"),
    DcapFailure("Failed to parse root CA CRL", QuoteInvalid, _SIG,
                "the collateral is not issued under the trusted root"),
    DcapFailure("Failed to load root ca", QuoteInvalid, _SIG, "the root CA is not valid DER"),
    DcapFailure("ISV enclave report signature is invalid", QuoteInvalid, _SIG,
                "the enclave report signature is invalid"),
    DcapFailure("QE report hash mismatch", QuoteInvalid, _SIG,
                "the attestation key is not bound to the quoting enclave"),
    DcapFailure("Signature is invalid for qe_report", QuoteInvalid, _SIG,
                "the quoting enclave report signature is invalid"),
    DcapFailure("Signature is invalid for tcb_info", QuoteInvalid, _SIG, "the TCB info signature is invalid"),
    DcapFailure("Signature is invalid for qe_identity", QuoteInvalid, _SIG,
                "the QE identity signature is invalid"),
    DcapFailure("Failed to decode quote", QuoteInvalid, _SIG, "the quote is malformed"),
    DcapFailure("Fmspc mismatch", QuoteInvalid, _SIG, "the TCB info is for another platform"),
    DcapFailure("No matching TCB level", QuoteInvalid, _SIG, "no TCB level matches the platform"),
    DcapFailure("Failed to verify certificate chain", QuoteInvalid, _SIG,
                "the PCK certificate chain did not verify"),
)
# fmt: on


def classify_dcap_error(text: str) -> tuple[str, AttestationError]:
    """The report check and the error for a dcap-qvl failure message."""
    for row in DCAP_FAILURES:
        if row.needle in text:
            return row.check, row.error(row.message)
    return SIGNATURE_CHAIN, QuoteInvalid("the quote or its collateral did not verify")
