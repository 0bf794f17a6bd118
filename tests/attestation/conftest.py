"""Fixtures for the attestation tests: the real Intel samples and a simulation PKI.

The samples live outside the project (../shared/attestation-samples, or the directory named by
CLEANROOM_ATTESTATION_SAMPLES). Without them the tests that need them skip, except under
CI=true, where a missing sample is a failure. No test touches the network or the wall clock.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from attestation.insecure_simulation.pki import SimulationPki

NOW = 1751328000  # 2025-07-01T00:00:00Z, inside the real sample's collateral window
_DEFAULT_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "attestation-samples"


@dataclass(frozen=True)
class RealSample:
    quote: bytes
    collateral: str
    intel_root_der: bytes
    expected: dict[str, Any]


@pytest.fixture(scope="session")
def now() -> int:
    return NOW


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    directory = Path(os.environ.get("CLEANROOM_ATTESTATION_SAMPLES", _DEFAULT_SAMPLES))
    if not (directory / "expected.json").is_file():
        reason = f"attestation samples not found in {directory}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required when CI=true)")
        pytest.skip(reason + " (set CLEANROOM_ATTESTATION_SAMPLES)")
    return directory


@pytest.fixture(scope="session")
def real_sample(samples_dir: Path) -> RealSample:
    manifest = json.loads((samples_dir / "expected.json").read_text())
    entry = manifest["samples"][0]
    return RealSample(
        quote=(samples_dir / entry["quote_file"]).read_bytes(),
        collateral=(samples_dir / entry["collateral_file"]).read_text(),
        intel_root_der=(samples_dir / manifest["intel_root_ca_file"]).read_bytes(),
        expected=entry,
    )


@pytest.fixture(scope="module")
def sim_pki(tmp_path_factory: pytest.TempPathFactory) -> SimulationPki:
    return SimulationPki.create(tmp_path_factory.mktemp("sim") / "pki")


@pytest.fixture(scope="module")
def make_pki(tmp_path_factory: pytest.TempPathFactory):
    """Factory for PKIs whose collateral says something else (OutOfDate, revoked, ...)."""

    def make(**settings: Any) -> SimulationPki:
        return SimulationPki.create(tmp_path_factory.mktemp("sim") / "pki", **settings)

    return make
