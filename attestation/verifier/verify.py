"""Party side: decide whether an enclave's quote (or attestation bundle) is acceptable.

The stable public import path of the verifier. It evaluates a bare quote here and re-exports the
rest, so callers never depend on how the verifier is split:

- ``verifier_policy``      ``VerifierPolicy`` (what a party accepts) and ``TCB_STATUSES``
- ``quote_checks``         the checks in their fixed order, one error class each (its docstring)
- ``dcap_errors``          the one table from dcap-qvl's messages to those error classes
- ``verification_report``  ``VerificationReport`` (with ``require()`` and ``enclave()``), ``Check``,
                           ``BoundKeys``, ``VerifiedEnclave``
- ``bundle``               ``evaluate_bundle`` for the host's bundle

Each evaluation returns one ``VerificationReport``, accepted or refused; ``report.require()``
raises the typed error of the first refused check, and for a bundle ``report.enclave()`` returns
the keys to pin (or raises the same way).

Never loaded in the enclave. Pure: ``now`` is a parameter; only the CLIs read the clock.
dcap-qvl is imported when a verification runs, not when this module is.
"""

from __future__ import annotations

from attestation.verifier.bundle import evaluate_bundle as evaluate_bundle
from attestation.verifier.quote_checks import INTEL_ROOT_CA_SHA256 as INTEL_ROOT_CA_SHA256
from attestation.verifier.quote_checks import check_quote, check_quote_arguments
from attestation.verifier.verification_report import BoundKeys as BoundKeys
from attestation.verifier.verification_report import Check as Check
from attestation.verifier.verification_report import ReportDraft
from attestation.verifier.verification_report import VerificationReport as VerificationReport
from attestation.verifier.verification_report import VerifiedEnclave as VerifiedEnclave
from attestation.verifier.verifier_policy import TCB_STATUSES as TCB_STATUSES
from attestation.verifier.verifier_policy import VerifierPolicy as VerifierPolicy
from protocol.errors import CleanroomError

__all__ = [
    "INTEL_ROOT_CA_SHA256",
    "TCB_STATUSES",
    "BoundKeys",
    "Check",
    "VerificationReport",
    "VerifiedEnclave",
    "VerifierPolicy",
    "evaluate_bundle",
    "evaluate_quote",
]


def evaluate_quote(
    quote: bytes,
    collateral_json: str,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None = None,
    expected_report_data: bytes | None = None,
) -> VerificationReport:
    """Verify a raw SGX quote against collateral and a verifier policy; return the report.

    The report is accepted or refused; ``report.require()`` raises the typed error of the first
    refused check (an ``AttestationError`` subclass, see ``attestation.verifier.quote_checks``).
    ``root_ca_der`` None means Intel's root (built into dcap-qvl). Any other root is a simulation
    PKI and is allowed only when ``policy.allow_simulation``.

    :raise TypeError, ValueError: a caller mistake (``quote`` not bytes, ``now`` out of range,
        ``expected_report_data`` not 64 bytes), never an attestation outcome.
    """
    check_quote_arguments(quote, now, expected_report_data)
    draft = ReportDraft()
    try:
        check_quote(
            draft,
            quote,
            collateral_json,
            now=now,
            policy=policy,
            root_ca_der=root_ca_der,
            expected_report_data=expected_report_data,
        )
    except CleanroomError as err:
        return draft.report(err)
    return draft.report(None)
