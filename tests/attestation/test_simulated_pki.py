"""The simulation PKI produces quotes that dcap-qvl verifies through its real code path."""

import json
import stat

import dcap_qvl
import pytest
from cryptography import x509

from attestation.insecure_simulation import der as _sim_der
from attestation.insecure_simulation.pki import SIM_MR_ENCLAVE, SIM_MR_SIGNER, SimulationPki
from attestation.verifier.quote_layout import parse_quote_fields

RD = bytes(range(64))


def collateral(pki: SimulationPki, now: int) -> dcap_qvl.QuoteCollateralV3:
    return dcap_qvl.QuoteCollateralV3.from_json(pki.collateral_json(now))


def test_sim_measurements_are_fixed_and_obviously_fake():
    import hashlib

    assert hashlib.sha256(b"cleanroom/simulation/mrenclave/v1").digest() == SIM_MR_ENCLAVE
    assert hashlib.sha256(b"cleanroom/simulation/mrsigner/v1").digest() == SIM_MR_SIGNER


@pytest.mark.parametrize("now", [1751328000, 1800000000])
def test_quote_verifies_against_the_simulation_root(sim_pki, now):
    quote = sim_pki.issue_quote(RD)
    report = dcap_qvl.verify_with_root_ca(quote, collateral(sim_pki, now), sim_pki.root_ca_der, now)
    assert report.status == "UpToDate"
    assert report.advisory_ids == []
    body = json.loads(report.to_json())["report"]["SgxEnclave"]
    assert body["mr_enclave"] == SIM_MR_ENCLAVE.hex()
    assert body["mr_signer"] == SIM_MR_SIGNER.hex()
    assert body["report_data"] == RD.hex()


def test_quote_is_refused_against_the_intel_root(sim_pki, now):
    quote = sim_pki.issue_quote(RD)
    with pytest.raises(ValueError, match="Verification failed"):
        dcap_qvl.verify(quote, collateral(sim_pki, now), now)


def test_collateral_window(sim_pki, now):
    quote = sim_pki.issue_quote(RD)
    col = collateral(sim_pki, now)
    dcap_qvl.verify_with_root_ca(quote, col, sim_pki.root_ca_der, now - 3600)
    with pytest.raises(ValueError, match="future"):
        dcap_qvl.verify_with_root_ca(quote, col, sim_pki.root_ca_der, now - 3601)
    with pytest.raises(ValueError, match="xpired"):
        dcap_qvl.verify_with_root_ca(quote, col, sim_pki.root_ca_der, now + 31 * 24 * 3600)


def test_quote_layout_round_trip(sim_pki):
    mr_enclave, mr_signer = b"\xaa" * 32, b"\xbb" * 32
    quote = sim_pki.issue_quote(
        RD, mr_enclave=mr_enclave, mr_signer=mr_signer, isv_prod_id=3, isv_svn=9, debug=True
    )
    f = parse_quote_fields(quote)
    assert (f.version, f.att_key_type, f.tee_type) == (3, 2, 0)
    assert f.qe_vendor_id.hex() == "939a7233f79c4ca9940a0db3957f0607"
    assert (f.mr_enclave, f.mr_signer, f.report_data) == (mr_enclave, mr_signer, RD)
    assert (f.isv_prod_id, f.isv_svn, f.debug) == (3, 9, True)
    assert parse_quote_fields(sim_pki.issue_quote(RD)).debug is False
    # signature_data_len covers exactly the rest of the quote
    assert int.from_bytes(quote[432:436], "little") == len(quote) - 436


def test_pck_extension_parses_like_intels(sim_pki):
    parsed = dcap_qvl.parse_quote(sim_pki.issue_quote(RD))
    assert parsed.ca() == "processor"
    assert parsed.fmspc() == "00C1EA000000"
    ext = parsed.pck_extension()
    assert ext is not None
    assert len(ext.ppid) == 16
    assert ext.sgx_type == 0
    assert ext.pce_svn == 13


def test_der_encoder_matches_known_encodings():
    assert _sim_der.der_oid("1.2.840.113741.1.13.1").hex() == "06092a864886f84d010d01"
    assert _sim_der.der_int(0).hex() == "020100"
    assert _sim_der.der_int(127).hex() == "02017f"
    assert _sim_der.der_int(255).hex() == "020200ff"
    assert _sim_der.der(0x04, bytes(200))[:3].hex() == "0481c8"


def test_pck_leaf_carries_the_sgx_extension(sim_pki):
    pem = (sim_pki.directory / "pck.cert.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.2.840.113741.1.13.1"))
    assert not ext.critical


def test_files_are_private_and_reload(tmp_path, now):
    directory = tmp_path / "pki"
    pki = SimulationPki.create(directory)
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    loaded = SimulationPki.load(directory)
    assert loaded.root_ca_der == pki.root_ca_der
    again = SimulationPki.load_or_create(directory)
    assert again.root_ca_der == pki.root_ca_der
    quote = loaded.issue_quote(RD)
    dcap_qvl.verify_with_root_ca(quote, collateral(pki, now), pki.root_ca_der, now)
    with pytest.raises(FileExistsError):
        SimulationPki.create(directory)


def test_load_or_create_creates_once(tmp_path):
    first = SimulationPki.load_or_create(tmp_path / "pki")
    assert SimulationPki.load_or_create(tmp_path / "pki").root_ca_der == first.root_ca_der


def test_settings_are_persisted(make_pki):
    pki = make_pki(tcb_status="OutOfDate", advisory_ids=("INTEL-SA-00999",), revoke_pck=True)
    loaded = SimulationPki.load(pki.directory)
    assert (loaded.tcb_status, loaded.advisory_ids, loaded.revoke_pck) == (
        "OutOfDate",
        ("INTEL-SA-00999",),
        True,
    )


def test_unknown_tcb_status_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="TCB status"):
        SimulationPki.create(tmp_path / "pki", tcb_status="Fine")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"report_data": bytes(63)},
        {"mr_enclave": bytes(31)},
        {"mr_signer": bytes(33)},
        {"isv_prod_id": -1},
        {"isv_svn": 65536},
    ],
)
def test_issue_quote_validates_inputs(sim_pki, kwargs):
    args = {"report_data": RD, **kwargs}
    with pytest.raises(ValueError):
        sim_pki.issue_quote(**args)
