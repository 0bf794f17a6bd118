"""Fixtures of the adversarial suite: a real host + enclave per module, marked party data.

The host is the attacker here, so tests reach past the parties' client: they send raw record
streams and JSON bodies, kill the enclave, and edit the host's state directory between restarts.
Modules that corrupt stored state use ``fresh_deployment`` (one host per test) so no corruption
leaks into another test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.policy import Policy, parse_policy
from tests.adversarial.kit import ALLOW_SIMULATION, MarkedData
from tests.support.deployment import HostDeployment


@pytest.fixture(scope="session")
def policy(policy_bytes: bytes) -> Policy:
    return parse_policy(policy_bytes)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, policy_bytes: bytes) -> Iterator[HostDeployment]:
    with HostDeployment(tmp_path_factory.mktemp("adversarial"), policy_bytes) as host:
        yield host


@pytest.fixture
def fresh_deployment(tmp_path: Path, policy_bytes: bytes) -> Iterator[HostDeployment]:
    (tmp_path / "deployment").mkdir()
    with HostDeployment(tmp_path / "deployment", policy_bytes) as host:
        yield host


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> MarkedData:
    return MarkedData(tmp_path_factory.mktemp("marked-data"))


@pytest.fixture
def verify(policy_bytes: bytes) -> Callable[[HostDeployment], Any]:
    """Verify a deployment's attestation as a party would; returns the pinned enclave."""

    def run(host: HostDeployment) -> Any:
        return host.client.verify(policy_bytes, ALLOW_SIMULATION)

    return run
