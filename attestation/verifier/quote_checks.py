"""The quote checks, in their fixed order; shared by ``evaluate_quote`` and ``evaluate_bundle``.

dcap-qvl checks the signature chain, the collateral, the TCB level and the debug bit; it does not
look at what the enclave *is*. These functions add the project's checks, each with its own error
class (docs/design.md):

1. simulation gate      a non-Intel root needs ``allow_simulation``     SimulationNotAllowed
2. signature chain      dcap-qvl, Intel root or the simulation root     QuoteInvalid
3. collateral time      inside the TCB info / QE identity / CRL window  CollateralExpired
4. TCB status           in ``allowed_statuses``, no rejected advisory   TcbStatusNotAllowed
5. debug                the DEBUG attribute is off                      DebugEnclave
6. measurement          MRENCLAVE allow-list and/or MRSIGNER rule       MeasurementMismatch
7. REPORTDATA           equals the expected 64 bytes                    ReportDataMismatch
8. collateral age       TCB info issued at most ``max_collateral_age``  CollateralExpired

Party side only. Pure: ``now`` is a parameter.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from attestation.insecure_simulation.platform_values import SIM_MR_ENCLAVE
from attestation.verifier.dcap_errors import COLLATERAL_TIME, SIGNATURE_CHAIN, classify_dcap_error
from attestation.verifier.quote_layout import QuoteFields, parse_quote_fields
from attestation.verifier.values import check_now, intel_time
from attestation.verifier.verification_report import ReportDraft
from attestation.verifier.verifier_policy import VerifierPolicy
from protocol.errors import (
    CollateralExpired,
    DebugEnclave,
    MeasurementMismatch,
    QuoteInvalid,
    ReportDataMismatch,
    SimulationNotAllowed,
    TcbStatusNotAllowed,
)

__all__ = ["INTEL_ROOT_CA_SHA256", "check_quote", "check_quote_arguments"]

# Fingerprint of Intel's SGX Root CA (the anchor built into dcap-qvl). A root given explicitly
# that has this fingerprint is Intel's, so the quote is not simulated.
INTEL_ROOT_CA_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"


def check_quote_arguments(quote: object, now: object, expected_report_data: object) -> None:
    """Caller mistakes, not attestation outcomes: raise instead of reporting."""
    if not isinstance(quote, bytes):
        raise TypeError("quote must be bytes")
    check_now(now)
    if expected_report_data is not None and (
        not isinstance(expected_report_data, bytes) or len(expected_report_data) != 64
    ):
        raise ValueError("expected_report_data must be 64 bytes")


def check_quote(
    draft: ReportDraft,
    quote: bytes,
    collateral_json: str | None,
    *,
    now: int,
    policy: VerifierPolicy,
    root_ca_der: bytes | None,
    expected_report_data: bytes | None,
) -> None:
    """Run checks 1-8 on ``draft``; the first refusal raises its ``AttestationError``."""
    try:
        draft.fields = parse_quote_fields(quote)  # for the report; dcap-qvl authenticates below
    except QuoteInvalid:
        draft.fields = None

    _check_simulation(draft, policy, root_ca_der)
    if collateral_json is None:
        draft.fail(SIGNATURE_CHAIN, QuoteInvalid("no collateral was supplied"))
    _dcap_verify(draft, quote, collateral_json, now, root_ca_der)
    fields = draft.fields
    if fields is None:  # dcap-qvl accepted a layout we do not read; refuse rather than guess
        draft.fail(SIGNATURE_CHAIN, QuoteInvalid("unsupported quote layout"))
    root = "a SIMULATION root" if draft.simulated else "the Intel root"
    draft.ok(SIGNATURE_CHAIN, f"signatures and certificate chain verified to {root}")
    draft.ok(COLLATERAL_TIME, "collateral valid at the given time")

    _check_tcb_status(draft, policy)
    if fields.debug:
        draft.fail("debug", DebugEnclave())
    draft.ok("debug", "debug attribute is off")
    _check_measurement(draft, fields, policy)
    _check_report_data(draft, fields, expected_report_data)
    _check_collateral_age(draft, collateral_json, now, policy)


def _is_intel_root(root_ca_der: bytes) -> bool:
    return hashlib.sha256(root_ca_der).hexdigest() == INTEL_ROOT_CA_SHA256


def _check_simulation(draft: ReportDraft, policy: VerifierPolicy, root_ca_der: bytes | None) -> None:
    # A bundle may already have declared itself simulated; never downgrade that.
    draft.simulated |= root_ca_der is not None and not _is_intel_root(root_ca_der)
    if draft.simulated and not policy.allow_simulation:
        draft.fail(
            "simulation",
            SimulationNotAllowed("quote is signed by a simulation PKI; simulation not allowed"),
        )
    draft.ok("simulation", "SIMULATED, explicitly allowed" if draft.simulated else "not simulated")


def _dcap_verify(
    draft: ReportDraft, quote: bytes, collateral_json: str, now: int, root_ca_der: bytes | None
) -> None:
    import dcap_qvl  # party side only; keeps `import attestation.verifier.verify` cheap elsewhere

    try:
        collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    except (ValueError, TypeError):
        draft.fail(SIGNATURE_CHAIN, QuoteInvalid("the collateral is malformed"))
    try:
        if root_ca_der is None:
            verified = dcap_qvl.verify(quote, collateral, now)
        else:
            verified = dcap_qvl.verify_with_root_ca(quote, collateral, root_ca_der, now)
    except ValueError as exc:
        check, error = classify_dcap_error(str(exc))
        if check in ("tcb_status", "debug"):
            # dcap-qvl judges status and debug only after the chain and the dates held.
            draft.ok(SIGNATURE_CHAIN, "signatures and certificate chain verified")
            draft.ok(COLLATERAL_TIME, "collateral valid at the given time")
        draft.fail(check, error)
    draft.status = verified.status
    draft.advisory_ids = tuple(verified.advisory_ids)


def _check_tcb_status(draft: ReportDraft, policy: VerifierPolicy) -> None:
    if draft.status not in policy.allowed_statuses:
        draft.fail(
            "tcb_status",
            TcbStatusNotAllowed(f"TCB status {draft.status} is not allowed by the verifier policy"),
        )
    rejected = sorted(set(draft.advisory_ids) & set(policy.rejected_advisories))
    if rejected:
        draft.fail("tcb_status", TcbStatusNotAllowed(f"advisory rejected by policy: {', '.join(rejected)}"))
    draft.ok("tcb_status", f"{draft.status} is allowed")


def _check_measurement(draft: ReportDraft, fields: QuoteFields, policy: VerifierPolicy) -> None:
    enclaves, detail = policy.mr_enclaves, "MRENCLAVE in the allow-list"
    if not enclaves and policy.mr_signer is None:
        if not (draft.simulated and policy.allow_simulation):
            draft.fail(
                "measurement",
                MeasurementMismatch("no measurement configured (mr_enclaves or mr_signer)"),
            )
        enclaves, detail = (SIM_MR_ENCLAVE.hex(),), "simulation default MRENCLAVE"
    if enclaves and fields.mr_enclave.hex() not in enclaves:
        draft.fail("measurement", MeasurementMismatch("MRENCLAVE is not in the allow-list"))
    if policy.mr_signer is not None:
        if fields.mr_signer.hex() != policy.mr_signer:
            draft.fail("measurement", MeasurementMismatch("MRSIGNER is not the expected one"))
        if fields.isv_prod_id != policy.isv_prod_id:
            draft.fail("measurement", MeasurementMismatch("ISVPRODID is not the expected one"))
        if policy.min_isv_svn is not None and fields.isv_svn < policy.min_isv_svn:
            draft.fail("measurement", MeasurementMismatch("ISVSVN is below the minimum"))
        detail = "MRSIGNER, ISVPRODID and ISVSVN as required" + (
            " and MRENCLAVE in the allow-list" if policy.mr_enclaves else ""
        )
    draft.ok("measurement", detail)


def _check_report_data(draft: ReportDraft, fields: QuoteFields, expected: bytes | None) -> None:
    if expected is None:
        draft.ok("report_data", "not checked: no expected value was given")
    elif not hmac.compare_digest(fields.report_data, expected):
        draft.fail("report_data", ReportDataMismatch())
    else:
        draft.ok("report_data", "matches the expected value")


def _check_collateral_age(draft: ReportDraft, collateral_json: str, now: int, policy: VerifierPolicy) -> None:
    if policy.max_collateral_age is None:
        return
    try:
        age = now - intel_time(json.loads(json.loads(collateral_json)["tcb_info"])["issueDate"])
    except (ValueError, KeyError, TypeError):
        draft.fail("collateral_age", QuoteInvalid("the TCB info issue date is unreadable"))
    if age > policy.max_collateral_age:
        draft.fail("collateral_age", CollateralExpired("collateral is older than allowed"))
    draft.ok("collateral_age", f"TCB info issued {age} s before now")
