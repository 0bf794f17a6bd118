"""GET /v1/attestation: bundle shape, nonces, caching, simulated quotes."""

from __future__ import annotations

import base64
import hashlib
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask.testing import FlaskClient

from protocol.report_data import report_data

BUNDLE_KEYS = {"format", "mode", "simulated", "quote", "collateral", "enc_pub", "sig_pub",
               "policy", "policy_hash", "nonce", "simulation_root_ca"}


class FakePki:
    instances: ClassVar[list[FakePki]] = []

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.quotes: list[bytes] = []
        self.root_ca_der = b"fake root ca der"

    @classmethod
    def load_or_create(cls, directory: Any) -> FakePki:
        pki = cls(Path(directory))
        cls.instances.append(pki)
        return pki

    def issue_quote(self, report_data: bytes) -> bytes:
        self.quotes.append(report_data)
        return b"QUOTE" + report_data

    def collateral_json(self, now: int) -> str:
        return f'{{"issued": {now}}}'


@pytest.fixture
def fake_pki(monkeypatch: pytest.MonkeyPatch) -> type[FakePki]:
    module = types.ModuleType("attestation.insecure_simulation.pki")
    module.SimulationPki = FakePki  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "attestation.insecure_simulation.pki", module)
    FakePki.instances = []
    return FakePki


def test_simulated_bundle_shape(
    client: FlaskClient, fake_pki: type[FakePki], policy_file: Path, state_dir: Path
) -> None:
    response = client.get("/v1/attestation")
    assert response.status_code == 200
    bundle = response.get_json()
    assert set(bundle) == BUNDLE_KEYS
    policy = policy_file.read_bytes()
    policy_hash = hashlib.sha256(policy).digest()
    enc_pub, sig_pub = bytes.fromhex(bundle["enc_pub"]), bytes.fromhex(bundle["sig_pub"])
    assert bundle["format"] == 1
    assert bundle["mode"] == "simulation"
    assert bundle["simulated"] is True
    assert base64.b64decode(bundle["policy"]) == policy
    assert bundle["policy_hash"] == policy_hash.hex()
    assert bundle["nonce"] == "00" * 32
    expected = report_data(enc_pub, sig_pub, policy_hash)
    assert base64.b64decode(bundle["quote"]) == b"QUOTE" + expected
    assert bundle["collateral"].startswith('{"issued": ')
    assert base64.b64decode(bundle["simulation_root_ca"]) == b"fake root ca der"
    assert fake_pki.instances[0].directory == state_dir / "simulation-pki"


def test_nonce_is_bound_and_not_cached(client: FlaskClient, fake_pki: type[FakePki]) -> None:
    nonce = bytes(range(32))
    first = client.get(f"/v1/attestation?nonce={nonce.hex()}").get_json()
    second = client.get(f"/v1/attestation?nonce={nonce.hex().upper()}").get_json()
    assert first["nonce"] == second["nonce"] == nonce.hex()
    rd = report_data(bytes.fromhex(first["enc_pub"]), bytes.fromhex(first["sig_pub"]),
                     bytes.fromhex(first["policy_hash"]), nonce)
    assert base64.b64decode(first["quote"]) == b"QUOTE" + rd
    assert len(fake_pki.instances[0].quotes) == 2


def test_nonce_less_bundle_is_cached_per_enclave_start(
    client: FlaskClient, fake_pki: type[FakePki]
) -> None:
    first = client.get("/v1/attestation").get_json()
    assert client.get("/v1/attestation").get_json() == first
    assert len(fake_pki.instances) == 1 and len(fake_pki.instances[0].quotes) == 1


@pytest.mark.parametrize("nonce", ["", "00", "zz" * 32, "00" * 33])
def test_bad_nonce(client: FlaskClient, nonce: str) -> None:
    response = client.get(f"/v1/attestation?nonce={nonce}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_message"


def test_with_the_real_simulation_pki(client: FlaskClient, state_dir: Path) -> None:
    pytest.importorskip("attestation.insecure_simulation.pki")
    x509 = pytest.importorskip("cryptography.x509")
    bundle = client.get("/v1/attestation").get_json()
    assert bundle["simulated"] is True
    root = x509.load_der_x509_certificate(base64.b64decode(bundle["simulation_root_ca"]))
    assert "SIMULATION" in root.subject.rfc4514_string()
    quote = base64.b64decode(bundle["quote"])
    policy_hash = bytes.fromhex(bundle["policy_hash"])
    rd = report_data(bytes.fromhex(bundle["enc_pub"]), bytes.fromhex(bundle["sig_pub"]),
                     policy_hash)
    assert rd in quote  # the quote's report body carries the enclave's REPORTDATA
    assert (state_dir / "simulation-pki").is_dir()


def test_real_quote_gets_the_configured_collateral(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_ENCLAVE_QUOTE", "a real quote")
    collateral = tmp_path / "collateral.json"
    collateral.write_text('{"tcb_info": "..."}')
    bundle = make_app(CLEANROOM_COLLATERAL_FILE=str(collateral)).test_client().get(
        "/v1/attestation").get_json()
    assert bundle["simulated"] is False
    assert base64.b64decode(bundle["quote"]) == b"a real quote"
    assert bundle["collateral"] == '{"tcb_info": "..."}'
    assert bundle["simulation_root_ca"] is None
    without = make_app().test_client().get("/v1/attestation").get_json()
    assert without["collateral"] is None
