"""evaluate_bundle: the host's attestation bundle, checked in order with one error per failure."""

import base64
import hashlib
import os

import pytest

from attestation.verifier.verify import BoundKeys, VerifierPolicy, evaluate_bundle
from protocol.errors import (
    PolicyMismatch,
    ProtocolError,
    QuoteInvalid,
    ReportDataMismatch,
    SimulationNotAllowed,
    StaleNonce,
)
from protocol.report_data import report_data

POLICY = b'collaboration = "demo"\n'
ALLOW_SIM = VerifierPolicy(allow_simulation=True)


def pinned_enclave(bundle, **kwargs):
    """What every caller does: evaluate, then take the keys or the first refusal's error."""
    return evaluate_bundle(bundle, **kwargs).enclave()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def keys():
    return os.urandom(32), os.urandom(32), os.urandom(32)  # enc_pub, sig_pub, nonce


def make_bundle(pki, now, keys, **edits):
    """A bundle whose quote binds ``keys`` and POLICY; ``edits`` then alter fields."""
    enc_pub, sig_pub, nonce = keys
    policy = POLICY
    rd = report_data(enc_pub, sig_pub, hashlib.sha256(policy).digest(), nonce)
    bundle = {
        "format": 1,
        "mode": "simulation",
        "simulated": True,
        "quote": b64(pki.issue_quote(rd)),
        "collateral": pki.collateral_json(now),
        "enc_pub": enc_pub.hex(),
        "sig_pub": sig_pub.hex(),
        "policy": b64(policy),
        "policy_hash": hashlib.sha256(policy).hexdigest(),
        "nonce": nonce.hex(),
        "simulation_root_ca": b64(pki.root_ca_der),
    }
    bundle.update(edits)
    return bundle


def test_valid_bundle_yields_the_enclave_keys(sim_pki, now, keys):
    enc_pub, sig_pub, nonce = keys
    bundle = make_bundle(sim_pki, now, keys)
    enclave = pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM, nonce=nonce)
    assert (enclave.enc_pub, enclave.sig_pub) == (enc_pub, sig_pub)
    assert enclave.policy_hash == hashlib.sha256(POLICY).digest()
    assert enclave.simulated and enclave.report.accepted and enclave.report.simulated
    assert [c.name for c in enclave.report.checks] == [
        "bundle",
        "simulation",
        "signature_chain",
        "collateral_time",
        "tcb_status",
        "debug",
        "measurement",
        "report_data",
        "policy_hash",
        "nonce",
    ]


def test_simulated_bundle_needs_the_opt_in(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys)
    with pytest.raises(SimulationNotAllowed):
        pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=VerifierPolicy())


def test_swapped_key_is_a_report_data_mismatch(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys, enc_pub=os.urandom(32).hex())
    with pytest.raises(ReportDataMismatch):
        pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM)


def test_substituted_policy_is_a_report_data_mismatch(sim_pki, now, keys):
    other = b'collaboration = "other"\n'
    edits = {"policy": b64(other), "policy_hash": hashlib.sha256(other).hexdigest()}
    bundle = make_bundle(sim_pki, now, keys, **edits)  # the quote still binds POLICY
    with pytest.raises(ReportDataMismatch):
        pinned_enclave(bundle, agreed_policy=other, now=now, policy=ALLOW_SIM)


def test_enclave_running_another_policy_is_a_policy_mismatch(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys)
    with pytest.raises(PolicyMismatch):
        pinned_enclave(bundle, agreed_policy=b"something else", now=now, policy=ALLOW_SIM)


def test_pinned_policy_hash(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys)
    pinned = ALLOW_SIM.replace(expected_policy_hash=hashlib.sha256(POLICY).hexdigest())
    assert pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=pinned)
    with pytest.raises(PolicyMismatch, match="pinned"):
        pinned_enclave(
            bundle,
            agreed_policy=POLICY,
            now=now,
            policy=ALLOW_SIM.replace(expected_policy_hash="00" * 32),
        )


def test_wrong_nonce_is_stale(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys)
    with pytest.raises(StaleNonce):
        pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM, nonce=os.urandom(32))


def test_replayed_bundle_with_edited_nonce_is_a_report_data_mismatch(sim_pki, now, keys):
    fresh = os.urandom(32)
    bundle = make_bundle(sim_pki, now, keys, nonce=fresh.hex())  # quote bound to the old nonce
    with pytest.raises(ReportDataMismatch):
        pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM, nonce=fresh)


def test_missing_collateral(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys, collateral=None)
    with pytest.raises(QuoteInvalid, match="collateral"):
        pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM)
    enclave = pinned_enclave(
        bundle,
        agreed_policy=POLICY,
        now=now,
        policy=ALLOW_SIM,
        collateral=sim_pki.collateral_json(now),
    )
    assert enclave.report.accepted


@pytest.mark.parametrize(
    "edit",
    [
        {"format": 2},
        {"format": True},
        {"mode": "tdx"},
        {"mode": "sgx"},  # disagrees with simulated=True
        {"simulated": "yes"},
        {"simulation_root_ca": None},
        {"quote": "not base64!"},
        {"enc_pub": "zz" * 32},
        {"sig_pub": "00" * 31},
        {"nonce": 5},
        {"policy_hash": "00" * 32},
        {"collateral": 7},
        {"extra": 1},
    ],
)
def test_malformed_bundle_is_a_protocol_error(sim_pki, now, keys, edit):
    bundle = make_bundle(sim_pki, now, keys)
    bundle.update(edit)
    with pytest.raises(ProtocolError):
        pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM)


def test_missing_field_and_non_object(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys)
    del bundle["nonce"]
    with pytest.raises(ProtocolError, match="missing bundle field: nonce"):
        pinned_enclave(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM)
    with pytest.raises(ProtocolError):
        pinned_enclave([], agreed_policy=POLICY, now=now, policy=ALLOW_SIM)  # type: ignore[arg-type]


def test_the_report_says_why_without_raising(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys)
    report = evaluate_bundle(bundle, agreed_policy=b"other", now=now, policy=ALLOW_SIM)
    assert not report.accepted
    assert report.error == ("policy_mismatch", "the enclave runs a different collaboration policy")
    assert report.checks[-1].name == "policy_hash"
    bad = evaluate_bundle({"format": 1}, agreed_policy=POLICY, now=now, policy=ALLOW_SIM)
    assert bad.error is not None and bad.error[0] == "bad_message"
    assert [c.name for c in bad.checks] == ["bundle"]


@pytest.mark.samples
def test_real_sgx_bundle_goes_through_the_intel_root(real_sample, now, keys):
    enc_pub, sig_pub, nonce = keys
    bundle = {
        "format": 1,
        "mode": "sgx",
        "simulated": False,
        "quote": b64(real_sample.quote),
        "collateral": real_sample.collateral,
        "enc_pub": enc_pub.hex(),
        "sig_pub": sig_pub.hex(),
        "policy": b64(POLICY),
        "policy_hash": hashlib.sha256(POLICY).hexdigest(),
        "nonce": nonce.hex(),
        "simulation_root_ca": None,
    }
    policy = VerifierPolicy(
        mr_enclaves=(real_sample.expected["mr_enclave"],),
        allowed_statuses=(real_sample.expected["expect"]["status"],),
    )
    # Genuine quote, but its REPORTDATA ("Hello, world!") does not bind these keys.
    report = evaluate_bundle(bundle, agreed_policy=POLICY, now=now, policy=policy)
    assert not report.simulated
    assert report.error is not None and report.error[0] == "report_data_mismatch"
    assert [c.ok for c in report.checks][:-1] == [True] * (len(report.checks) - 1)


def test_enclave_raises_the_exact_class_of_the_first_refusal(sim_pki, now, keys):
    bundle = make_bundle(sim_pki, now, keys)
    report = evaluate_bundle(bundle, agreed_policy=POLICY, now=now, policy=ALLOW_SIM, nonce=os.urandom(32))
    assert not report.accepted and report.bound_keys is None  # a refused bundle's keys are unproven
    for demand in (report.require, report.enclave):
        with pytest.raises(StaleNonce, match="requested nonce"):
            demand()


def test_an_accepted_report_binds_the_keys(sim_pki, now, keys):
    enc_pub, sig_pub, nonce = keys
    report = evaluate_bundle(make_bundle(sim_pki, now, keys), agreed_policy=POLICY, now=now,
                             policy=ALLOW_SIM, nonce=nonce)
    assert report.require() is report
    assert report.bound_keys == BoundKeys(enc_pub, sig_pub, hashlib.sha256(POLICY).digest())
    enclave = report.enclave()
    assert enclave.report is report and enclave.simulated
    assert report.to_json_dict().keys() == {  # the JSON report is unchanged: no keys in it
        "accepted", "simulated", "status", "advisory_ids", "mr_enclave", "mr_signer",
        "isv_prod_id", "isv_svn", "debug", "report_data", "checks", "error"}


def test_a_bare_quote_report_binds_no_keys(sim_pki, now):
    from attestation.verifier.verify import evaluate_quote

    report = evaluate_quote(sim_pki.issue_quote(bytes(64)), sim_pki.collateral_json(now), now=now,
                            policy=ALLOW_SIM, root_ca_der=sim_pki.root_ca_der)
    assert report.require() is report
    with pytest.raises(TypeError, match="bare quote"):
        report.enclave()


def test_a_callers_own_check_refuses_an_accepted_report(sim_pki, now, keys):
    report = evaluate_bundle(make_bundle(sim_pki, now, keys), agreed_policy=POLICY, now=now,
                             policy=ALLOW_SIM)
    refused = report.refused_by("same_enclave", PolicyMismatch("not the enclave seen before"))
    assert report.accepted  # the original is untouched
    assert not refused.accepted and refused.bound_keys is None
    assert refused.checks[-1] == ("same_enclave", False, "not the enclave seen before")
    assert refused.error == ("policy_mismatch", "not the enclave seen before")
    with pytest.raises(PolicyMismatch, match="seen before"):
        refused.enclave()
    # The first refusal stands: a later check cannot replace it.
    assert refused.refused_by("other", StaleNonce()) is refused


def test_a_report_built_by_hand_raises_by_its_error_code():
    from attestation.verifier.verify import VerificationReport

    report = VerificationReport(
        accepted=False, simulated=False, status=None, advisory_ids=(), mr_enclave=None,
        mr_signer=None, isv_prod_id=None, isv_svn=None, debug=None, report_data=None, checks=(),
        error=("report_data_mismatch", "not bound"),
    )
    with pytest.raises(ReportDataMismatch, match="not bound"):
        report.require()
