"""The verifier on quotes from the simulation PKI: same code path, opt-in trust anchor."""

import pytest

from attestation.insecure_simulation.pki import SIM_MR_ENCLAVE, SIM_MR_SIGNER
from attestation.verifier.verify import VerifierPolicy, evaluate_quote
from protocol.errors import (
    DebugEnclave,
    MeasurementMismatch,
    QuoteInvalid,
    SimulationNotAllowed,
    TcbStatusNotAllowed,
)

RD = bytes(range(64))
ALLOW_SIM = VerifierPolicy(allow_simulation=True)


def accepted_report(*args, **kwargs):
    """What a caller that must not go on does: evaluate, then raise the first refusal's error."""
    return evaluate_quote(*args, **kwargs).require()


def verify(pki, policy, now, quote=None, **kwargs):
    return accepted_report(
        quote if quote is not None else pki.issue_quote(RD),
        pki.collateral_json(now),
        now=now,
        policy=policy,
        root_ca_der=pki.root_ca_der,
        **kwargs,
    )


def test_accepted_with_the_opt_in(sim_pki, now):
    report = verify(sim_pki, ALLOW_SIM, now, expected_report_data=RD)
    assert report.accepted and report.simulated
    assert report.status == "UpToDate"
    assert report.mr_enclave == SIM_MR_ENCLAVE.hex()
    assert report.checks[0].detail.startswith("SIMULATED")
    measurement = next(c for c in report.checks if c.name == "measurement")
    assert "simulation default" in measurement.detail
    assert "WARNING: SIMULATED" in "\n".join(report.summary_lines())
    assert report.to_json_dict()["simulated"] is True


def test_refused_without_the_opt_in(sim_pki, now):
    with pytest.raises(SimulationNotAllowed):
        verify(sim_pki, VerifierPolicy(mr_enclaves=(SIM_MR_ENCLAVE.hex(),)), now)


def test_refused_against_the_intel_root(sim_pki, now):
    quote = sim_pki.issue_quote(RD)
    with pytest.raises(QuoteInvalid, match="trusted root"):
        accepted_report(quote, sim_pki.collateral_json(now), now=now, policy=ALLOW_SIM)


def test_debug_enclave_is_refused(sim_pki, now):
    report = evaluate_quote(
        sim_pki.issue_quote(RD, debug=True),
        sim_pki.collateral_json(now),
        now=now,
        policy=ALLOW_SIM,
        root_ca_der=sim_pki.root_ca_der,
    )
    assert report.error == ("debug_enclave", "the enclave runs in debug mode")
    assert report.debug is True
    # dcap-qvl refuses debug itself, after the chain and dates held
    assert [(c.name, c.ok) for c in report.checks] == [
        ("simulation", True),
        ("signature_chain", True),
        ("collateral_time", True),
        ("debug", False),
    ]
    with pytest.raises(DebugEnclave):
        verify(sim_pki, ALLOW_SIM, now, quote=sim_pki.issue_quote(RD, debug=True))


def test_revoked_pck_is_refused(make_pki, now):
    pki = make_pki(revoke_pck=True)
    with pytest.raises(QuoteInvalid, match="revoked"):
        verify(pki, ALLOW_SIM, now)


def test_out_of_date_tcb_is_refused_by_default(make_pki, now):
    pki = make_pki(tcb_status="OutOfDate", advisory_ids=("INTEL-SA-00999",))
    with pytest.raises(TcbStatusNotAllowed, match="OutOfDate"):
        verify(pki, ALLOW_SIM, now)
    report = verify(pki, ALLOW_SIM.replace(allowed_statuses=("UpToDate", "OutOfDate")), now)
    assert (report.status, report.advisory_ids) == ("OutOfDate", ("INTEL-SA-00999",))
    with pytest.raises(TcbStatusNotAllowed, match="INTEL-SA-00999"):
        verify(
            pki,
            ALLOW_SIM.replace(allowed_statuses=("OutOfDate",), rejected_advisories=("INTEL-SA-00999",)),
            now,
        )


def test_revoked_tcb_level_is_refused(make_pki, now):
    with pytest.raises(TcbStatusNotAllowed, match="revoked"):
        verify(make_pki(tcb_status="Revoked"), ALLOW_SIM, now)


def test_named_measurements_replace_the_simulation_default(sim_pki, now):
    with pytest.raises(MeasurementMismatch, match="allow-list"):
        verify(sim_pki, ALLOW_SIM.replace(mr_enclaves=("ab" * 32,)), now)
    custom = sim_pki.issue_quote(RD, mr_enclave=b"\xab" * 32)
    assert verify(sim_pki, ALLOW_SIM.replace(mr_enclaves=("AB" * 32,)), now, quote=custom)
    with pytest.raises(MeasurementMismatch):
        verify(sim_pki, ALLOW_SIM, now, quote=custom)  # default is SIM_MR_ENCLAVE only


def test_mrsigner_rule_on_simulated_quotes(sim_pki, now):
    policy = ALLOW_SIM.replace(mr_signer=SIM_MR_SIGNER.hex(), isv_prod_id=5, min_isv_svn=2)
    assert verify(sim_pki, policy, now, quote=sim_pki.issue_quote(RD, isv_prod_id=5, isv_svn=3))
    with pytest.raises(MeasurementMismatch, match="ISVSVN"):
        verify(sim_pki, policy, now, quote=sim_pki.issue_quote(RD, isv_prod_id=5, isv_svn=1))
    both = policy.replace(mr_enclaves=("cd" * 32,))  # both rules named: both must hold
    with pytest.raises(MeasurementMismatch, match="allow-list"):
        verify(sim_pki, both, now, quote=sim_pki.issue_quote(RD, isv_prod_id=5, isv_svn=3))


def test_collateral_from_another_time_is_refused(sim_pki, now):
    from protocol.errors import CollateralExpired

    quote = sim_pki.issue_quote(RD)
    with pytest.raises(CollateralExpired):
        accepted_report(
            quote,
            sim_pki.collateral_json(now - 40 * 24 * 3600),
            now=now,
            policy=ALLOW_SIM,
            root_ca_der=sim_pki.root_ca_der,
        )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Verification failed: QE Identity expired", "collateral_expired"),
        (
            "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    CertRevoked",
            "quote_invalid",
        ),
        ("Verification failed: TCB status is invalid: Revoked", "tcb_status_not_allowed"),
        ("Verification failed: something new 0xdeadbeef", "quote_invalid"),
    ],
)
def test_dcap_messages_map_to_short_fixed_errors(text, code):
    from attestation.verifier.dcap_errors import classify_dcap_error

    _, error = classify_dcap_error(text)
    assert error.code == code
    assert "Verification failed" not in error.message and "deadbeef" not in error.message
