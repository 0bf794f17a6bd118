"""Fixtures for the party-side tests: a parsed policy, a stand-in enclave, attestation bundles.

The "enclave" here is just a pair of keys: these tests check the client's cryptography and
parsing, not the enclave (its own tests and the end-to-end tests do that). No network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from protocol.policy import Policy, parse_policy

NOW = int(time.time())
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


@dataclass(frozen=True)
class FakeEnclave:
    encryption: x25519.X25519PrivateKey
    signing: ed25519.Ed25519PrivateKey

    @property
    def enc_pub(self) -> bytes:
        return self.encryption.public_key().public_bytes(*_RAW)

    @property
    def sig_pub(self) -> bytes:
        return self.signing.public_key().public_bytes(*_RAW)


@pytest.fixture
def policy(policy_bytes: bytes) -> Policy:
    return parse_policy(policy_bytes)


def new_enclave() -> FakeEnclave:
    return FakeEnclave(x25519.X25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def enclave() -> FakeEnclave:
    return new_enclave()


@pytest.fixture
def other_enclave() -> FakeEnclave:
    return new_enclave()


@pytest.fixture
def now() -> int:
    """The time the simulated collateral was minted for (it is valid for 30 days)."""
    return NOW


@pytest.fixture(scope="module")
def sim_pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from attestation.insecure_simulation.pki import SimulationPki

    return SimulationPki.create(tmp_path_factory.mktemp("sim") / "pki")


@pytest.fixture
def make_bundle(sim_pki: Any):
    """A simulated attestation bundle binding an enclave's keys to some policy bytes."""
    from protocol.report_data import report_data

    def make(enclave: FakeEnclave, policy_bytes: bytes, nonce: bytes | None = None) -> dict:
        nonce = os.urandom(32) if nonce is None else nonce
        policy_hash = hashlib.sha256(policy_bytes).digest()
        quote = sim_pki.issue_quote(report_data(enclave.enc_pub, enclave.sig_pub, policy_hash, nonce))
        return {
            "format": 1,
            "mode": "simulation",
            "simulated": True,
            "quote": base64.b64encode(quote).decode(),
            "collateral": sim_pki.collateral_json(NOW),
            "enc_pub": enclave.enc_pub.hex(),
            "sig_pub": enclave.sig_pub.hex(),
            "policy": base64.b64encode(policy_bytes).decode(),
            "policy_hash": policy_hash.hex(),
            "nonce": nonce.hex(),
            "simulation_root_ca": base64.b64encode(sim_pki.root_ca_der).decode(),
        }

    return make


@pytest.fixture(autouse=True)
def _own_cleanroom_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test remembers enclave keys in its own $CLEANROOM_HOME: every test has a fresh
    enclave for the same collaboration id, which a shared memory would rightly refuse."""
    monkeypatch.setenv("CLEANROOM_HOME", str(tmp_path_factory.mktemp("cleanroom-home")))
    # The client profile's variables from the tester's shell must not change what a test runs.
    for name in ("CLEANROOM_HOST", "CLEANROOM_POLICY", "CLEANROOM_KEYS", "CLEANROOM_VERIFIER_POLICY",
                 "CLEANROOM_INSECURE_ALLOW_SIMULATION", "CLEANROOM_PROFILE"):
        monkeypatch.delenv(name, raising=False)
