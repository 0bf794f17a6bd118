"""The verifier on a genuine Intel SGX quote (shared/attestation-samples), at a pinned time."""

import hashlib

import pytest

from attestation.verifier.quote_layout import QUOTE_V3
from attestation.verifier.verify import INTEL_ROOT_CA_SHA256, VerifierPolicy, evaluate_quote
from protocol.errors import (
    CollateralExpired,
    MeasurementMismatch,
    QuoteInvalid,
    ReportDataMismatch,
    SimulationNotAllowed,
    TcbStatusNotAllowed,
)

pytestmark = pytest.mark.samples


@pytest.fixture
def policy(real_sample) -> VerifierPolicy:
    return VerifierPolicy(
        mr_enclaves=(real_sample.expected["mr_enclave"],),
        allowed_statuses=(real_sample.expected["expect"]["status"],),
    )


def accepted_report(*args, **kwargs):
    """What a caller that must not go on does: evaluate, then raise the first refusal's error."""
    return evaluate_quote(*args, **kwargs).require()


def verify(sample, policy, now, **kwargs):
    return accepted_report(sample.quote, sample.collateral, now=now, policy=policy, **kwargs)


def flipped(quote: bytes, offset: int) -> bytes:
    out = bytearray(quote)
    out[offset] ^= 0x01
    return bytes(out)


def test_real_quote_is_accepted_with_expected_figures(real_sample, policy, now):
    exp = real_sample.expected
    report = verify(real_sample, policy, now, expected_report_data=bytes.fromhex(exp["report_data"]))
    assert report.accepted and report.error is None
    assert report.simulated is False
    assert report.status == "ConfigurationAndSWHardeningNeeded" == exp["expect"]["status"]
    assert list(report.advisory_ids) == exp["expect"]["advisory_ids"]
    assert report.mr_enclave == exp["mr_enclave"]
    assert report.mr_signer == exp["mr_signer"]
    assert (report.isv_prod_id, report.isv_svn) == (exp["isv_prod_id"], exp["isv_svn"])
    assert report.debug is False
    assert report.report_data == exp["report_data"]
    assert [c.name for c in report.checks] == [
        "simulation",
        "signature_chain",
        "collateral_time",
        "tcb_status",
        "debug",
        "measurement",
        "report_data",
    ]
    assert all(c.ok for c in report.checks)


def test_window_edges_are_inclusive(real_sample, policy):
    first, last = real_sample.expected["collateral_valid_now_range_inclusive"]
    assert verify(real_sample, policy, first).accepted
    assert verify(real_sample, policy, last).accepted


@pytest.mark.parametrize("side", ["before", "after", "crl"])
def test_outside_the_collateral_window(real_sample, policy, side):
    first, last = real_sample.expected["collateral_valid_now_range_inclusive"]
    now = {"before": first - 1, "after": last + 1, "crl": 1775215318}[side]
    with pytest.raises(CollateralExpired) as info:
        verify(real_sample, policy, now)
    assert "Verification failed" not in info.value.message  # no library text echoed


@pytest.mark.parametrize(
    ("region", "index"),
    [
        ("mr_enclave", 0),
        ("report_data", 0),
        ("report_data", 63),
        ("attributes", 0),
        ("qe_report", 0),
        ("qe_report", 200),
        ("qe_report_signature", 0),
        ("attestation_key", 0),
        ("attestation_key", 63),
        ("isv_signature", 10),
    ],
)
def test_flipped_bit_is_refused(real_sample, policy, now, region, index):
    offset = QUOTE_V3[region][0] + index
    with pytest.raises(QuoteInvalid):
        accepted_report(flipped(real_sample.quote, offset), real_sample.collateral, now=now, policy=policy)


def test_truncated_quote_is_refused(real_sample, policy, now):
    with pytest.raises(QuoteInvalid, match="malformed"):
        accepted_report(real_sample.quote[:1000], real_sample.collateral, now=now, policy=policy)


def test_edited_collateral_is_refused(real_sample, policy, now):
    edited = real_sample.collateral.replace('"tcbEvaluationDataNumber\\":17', '"x\\":17', 1)
    assert edited != real_sample.collateral
    with pytest.raises(QuoteInvalid):
        accepted_report(real_sample.quote, edited, now=now, policy=policy)
    with pytest.raises(QuoteInvalid, match="malformed"):
        accepted_report(real_sample.quote, "{}", now=now, policy=policy)


def test_other_mrenclave_is_refused(real_sample, policy, now):
    with pytest.raises(MeasurementMismatch, match="allow-list"):
        verify(real_sample, policy.replace(mr_enclaves=("00" * 32,)), now)


def test_no_measurement_configured_is_refused(real_sample, policy, now):
    with pytest.raises(MeasurementMismatch, match="no measurement configured"):
        verify(real_sample, policy.replace(mr_enclaves=()), now)


def test_mrsigner_rule(real_sample, policy, now):
    exp = real_sample.expected
    by_signer = policy.replace(mr_enclaves=(), mr_signer=exp["mr_signer"], isv_prod_id=0, min_isv_svn=0)
    assert verify(real_sample, by_signer, now).accepted
    with pytest.raises(MeasurementMismatch, match="ISVSVN"):
        verify(real_sample, by_signer.replace(min_isv_svn=1), now)
    with pytest.raises(MeasurementMismatch, match="ISVPRODID"):
        verify(real_sample, by_signer.replace(isv_prod_id=1), now)
    with pytest.raises(MeasurementMismatch, match="MRSIGNER"):
        verify(real_sample, by_signer.replace(mr_signer="11" * 32), now)


def test_up_to_date_only_policy_refuses(real_sample, policy, now):
    with pytest.raises(TcbStatusNotAllowed, match="ConfigurationAndSWHardeningNeeded"):
        verify(real_sample, policy.replace(allowed_statuses=("UpToDate",)), now)


def test_rejected_advisory_refuses(real_sample, policy, now):
    with pytest.raises(TcbStatusNotAllowed, match="INTEL-SA-00615"):
        verify(real_sample, policy.replace(rejected_advisories=("intel-sa-00615",)), now)


def test_report_data_mismatch(real_sample, policy, now):
    with pytest.raises(ReportDataMismatch):
        verify(real_sample, policy, now, expected_report_data=bytes(64))


def test_max_collateral_age(real_sample, policy, now):
    issued = real_sample.expected["collateral_valid_now_range_inclusive"][0]
    assert verify(real_sample, policy.replace(max_collateral_age=now - issued), now).accepted
    with pytest.raises(CollateralExpired, match="older"):
        verify(real_sample, policy.replace(max_collateral_age=now - issued - 1), now)


def test_explicit_intel_root_is_not_simulation(real_sample, policy, now):
    root = real_sample.intel_root_der
    assert hashlib.sha256(root).hexdigest() == INTEL_ROOT_CA_SHA256
    report = verify(real_sample, policy, now, root_ca_der=root)
    assert report.accepted and not report.simulated


def test_real_quote_against_a_simulation_root(real_sample, policy, now, sim_pki):
    with pytest.raises(SimulationNotAllowed):
        verify(real_sample, policy, now, root_ca_der=sim_pki.root_ca_der)
    with pytest.raises(QuoteInvalid, match="trusted root"):
        verify(real_sample, policy.replace(allow_simulation=True), now, root_ca_der=sim_pki.root_ca_der)


def test_evaluate_returns_a_refused_report(real_sample, policy, now):
    report = evaluate_quote(
        real_sample.quote,
        real_sample.collateral,
        now=now,
        policy=policy.replace(allowed_statuses=("UpToDate",)),
    )
    assert not report.accepted
    assert report.error is not None and report.error[0] == "tcb_status_not_allowed"
    assert report.checks[-1].name == "tcb_status" and not report.checks[-1].ok
    doc = report.to_json_dict()
    assert doc["error"]["code"] == "tcb_status_not_allowed"
    assert doc["status"] == "ConfigurationAndSWHardeningNeeded"
    assert any("REFUSED" in line for line in report.summary_lines())


def test_caller_mistakes_raise(real_sample, policy):
    with pytest.raises(ValueError, match="now"):
        verify(real_sample, policy, -1)
    with pytest.raises(ValueError, match="now"):
        verify(real_sample, policy, 1751328000.0)
    with pytest.raises(ValueError, match="64 bytes"):
        verify(real_sample, policy, 1751328000, expected_report_data=b"short")
