"""``--collateral FILE`` / ``--pccs-url URL``: the party's own collateral overrides the host's.

No network: the PCCS fetcher is replaced. A throwaway simulation PKI provides quote and collateral.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os

import pytest

from attestation.insecure_simulation.pki import SimulationPki
from attestation.verifier import collateral as collateral_module
from attestation.verifier.verify import VerifierPolicy, evaluate_bundle
from cleanroom.collateral_source import add_collateral_arguments, collateral_from_args
from protocol.errors import AttestationError, CollateralExpired
from protocol.report_data import report_data

NOW = 1751328000
POLICY = b'collaboration = "demo"\n'
LATER = NOW + 60 * 24 * 3600  # the PKI's collateral minted at NOW has expired by then


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SimulationPki:
    return SimulationPki.create(tmp_path_factory.mktemp("sim") / "pki")


def parse(argv: list[str], *, required: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_collateral_arguments(parser, required=required)
    return parser.parse_args(argv)


def bundle_for(pki: SimulationPki, collateral: str | None) -> dict[str, object]:
    enc_pub, sig_pub, nonce = os.urandom(32), os.urandom(32), os.urandom(32)
    digest = hashlib.sha256(POLICY).digest()
    return {
        "format": 1,
        "mode": "simulation",
        "simulated": True,
        "quote": base64.b64encode(pki.issue_quote(report_data(enc_pub, sig_pub, digest, nonce))).decode(),
        "collateral": collateral,
        "enc_pub": enc_pub.hex(),
        "sig_pub": sig_pub.hex(),
        "policy": base64.b64encode(POLICY).decode(),
        "policy_hash": digest.hex(),
        "nonce": nonce.hex(),
        "simulation_root_ca": base64.b64encode(pki.root_ca_der).decode(),
    }


def test_no_flag_means_the_bundles_collateral() -> None:
    assert collateral_from_args(parse([]), b"quote") is None
    assert collateral_from_args(argparse.Namespace(), b"quote") is None  # command without the flags


def test_collateral_file(tmp_path) -> None:
    path = tmp_path / "collateral.json"
    path.write_bytes(b'{"mine": true}\xff')
    assert collateral_from_args(parse(["--collateral", str(path)]), b"quote") == '{"mine": true}\ufffd'


def test_unreadable_collateral_file_is_an_os_error(tmp_path) -> None:
    with pytest.raises(OSError):
        collateral_from_args(parse(["--collateral", str(tmp_path / "missing.json")]), b"quote")


def test_pccs_url_fetches_for_the_quote(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bytes]] = []
    monkeypatch.setattr(collateral_module, "fetch_from_pccs", lambda url, q: calls.append((url, q)) or "{}")
    assert collateral_from_args(parse(["--pccs-url", "https://pccs.example/"]), b"quote") == "{}"
    assert calls == [("https://pccs.example", b"quote")]


def test_pccs_failure_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(url: str, quote: bytes) -> str:
        raise AttestationError("collateral could not be fetched from the PCCS")

    monkeypatch.setattr(collateral_module, "fetch_from_pccs", down)
    with pytest.raises(AttestationError):
        collateral_from_args(parse(["--pccs-url", "https://pccs.example"]), b"quote")


@pytest.mark.parametrize(
    ("argv", "required"),
    [
        (["--collateral", "a.json", "--pccs-url", "https://p"], False),  # one or the other
        (["--pccs-url", "file:///etc/passwd"], False),
        ([], True),
    ],
)
def test_bad_flag_combinations(argv: list[str], required: bool) -> None:
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parse(argv, required=required)


def test_own_collateral_overrides_the_hosts(tmp_path, pki: SimulationPki) -> None:
    policy = VerifierPolicy(allow_simulation=True)
    bundle = bundle_for(pki, pki.collateral_json(NOW))  # expired at LATER
    with pytest.raises(CollateralExpired):
        evaluate_bundle(bundle, agreed_policy=POLICY, now=LATER, policy=policy).enclave()
    path = tmp_path / "fresh.json"
    path.write_text(pki.collateral_json(LATER))
    own = collateral_from_args(parse(["--collateral", str(path)]), base64.b64decode(bundle["quote"]))
    enclave = evaluate_bundle(bundle, agreed_policy=POLICY, now=LATER, policy=policy,
                              collateral=own).enclave()
    assert enclave.report.accepted


def test_own_expired_collateral_is_refused_even_if_the_hosts_is_fresh(tmp_path, pki: SimulationPki) -> None:
    bundle = bundle_for(pki, pki.collateral_json(LATER))
    path = tmp_path / "old.json"
    path.write_text(pki.collateral_json(NOW))
    own = collateral_from_args(parse(["--collateral", str(path)]), b"unused")
    with pytest.raises(CollateralExpired):
        evaluate_bundle(
            bundle,
            agreed_policy=POLICY,
            now=LATER,
            policy=VerifierPolicy(allow_simulation=True),
            collateral=own,
        ).enclave()
