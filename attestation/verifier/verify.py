"""Party side: decide whether an enclave's quote (or attestation bundle) is acceptable.

The stable public import path of the verifier. It evaluates a bare quote here and re-exports the
rest, so callers never depend on how the verifier is split:

- ``verifier_policy``      ``VerifierPolicy`` (what a party accepts) and ``TCB_STATUSES``
- ``quote_checks``         the checks in their fixed order, one error class each (its docstring)
- ``dcap_errors``          the one table from dcap-qvl's messages to those error classes
- ``verification_report``  ``VerificationReport``, ``Check``, ``VerifiedEnclave``
- ``bundle``               ``verify_bundle`` / ``evaluate_bundle`` for the host's bundle

Never loaded in the enclave. Pure: ``now`` is a parameter; only the CLIs read the clock.
dcap-qvl is imported when a verification runs, not when this module is.
"""

from __future__ import annotations

from attestation.verifier.bundle import evaluate_bundle as evaluate_bundle
from attestation.verifier.bundle import verify_bundle as verify_bundle
from attestation.verifier.quote_checks import INTEL_ROOT_CA_SHA256 as INTEL_ROOT_CA_SHA256
from attestation.verifier.quote_checks import check_quote, check_quote_arguments
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
    "Check",
    "VerificationReport",
    "VerifiedEnclave",
    "VerifierPolicy",
    "evaluate_bundle",
    "evaluate_quote",
    "verify_bundle",
    "verify_quote",
]


def _evaluate_quote(
    quote: bytes,
    collateral_json: str | None,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None,
    expected_report_data: bytes | None,
) -> tuple[VerificationReport, CleanroomError | None]:
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
        return draft.report(err), err
    return draft.report(None), None


def evaluate_quote(
    quote: bytes,
    collateral_json: str,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None = None,
    expected_report_data: bytes | None = None,
) -> VerificationReport:
    """Like ``verify_quote`` but returns a refused report instead of raising."""
    report, _ = _evaluate_quote(
        quote,
        collateral_json,
        now=now,
        policy=policy,
        root_ca_der=root_ca_der,
        expected_report_data=expected_report_data,
    )
    return report


def verify_quote(
    quote: bytes,
    collateral_json: str,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None = None,
    expected_report_data: bytes | None = None,
) -> VerificationReport:
    """Verify a raw SGX quote against collateral and a verifier policy.

    ``root_ca_der`` None means Intel's root (built into dcap-qvl). Any other root is a simulation
    PKI and is allowed only when ``policy.allow_simulation``.

    :raise AttestationError: the subclass names the first check that refused
        (``attestation.verifier.quote_checks``).
    """
    report, error = _evaluate_quote(
        quote,
        collateral_json,
        now=now,
        policy=policy,
        root_ca_der=root_ca_der,
        expected_report_data=expected_report_data,
    )
    if error is not None:
        raise error
    return report
