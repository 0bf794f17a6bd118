"""The host tampers with what it stores between restarts: ciphertexts and the sealed state file.

Each test gets its own deployment (``fresh_deployment``): they corrupt state on purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from cleanroom.client import Client
from cleanroom.keys import PartyKeys
from protocol.errors import CleanroomError
from protocol.policy import Policy
from tests.adversarial.kit import MarkedData, assert_no_leak, assert_still_serving
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow


def _load_both(host: HostDeployment, client: Client, enclave: Any, marked: MarkedData, policy: Policy,
               parties: dict[str, PartyKeys]) -> tuple[Any, Any]:
    impressions = client.upload(enclave, parties["publisher"], policy, "impressions",
                                marked.impressions(policy))
    conversions = client.upload(enclave, parties["advertiser"], policy, "conversions",
                                marked.conversions())
    return impressions, conversions


def test_truncated_ciphertext_is_quarantined_and_queries_are_refused(
        fresh_deployment: HostDeployment, verify: Callable[[HostDeployment], Any],
        marked: MarkedData, policy: Policy, parties: dict[str, PartyKeys]) -> None:
    host = fresh_deployment
    client = host.client
    impressions, _ = _load_both(host, client, verify(host), marked, policy, parties)
    stored = host.state / "uploads" / f"{impressions.upload_id.hex()}.upload"
    size = stored.stat().st_size

    host.stop()
    with stored.open("r+b") as f:  # cut inside a chunk record, as a torn copy would
        f.truncate(size - 1000)
    host.start()

    quarantined = host.state / "uploads" / "quarantine" / stored.name
    assert quarantined.exists() and not stored.exists()
    # The host names the cause: its own stored copy is damaged.
    assert (f"stored upload {impressions.upload_id.hex()} refused on replay: state_invalid"
            in host.log_text())
    listing = {u["upload_id"]: u for u in host.request("GET", "/v1/uploads").json()["uploads"]}
    # The enclave still lists what it sealed, and says it is missing from memory.
    assert listing[impressions.upload_id.hex()]["present"] is False

    enclave = verify(host)
    audit_before = host.request("GET", "/v1/audit").json()["entries"]
    with pytest.raises(CleanroomError) as refused:
        host.client.query(enclave, parties["advertiser"], policy, "overlap", {"group_by": []})
    assert refused.value.code == "state_invalid"
    assert "replayed" in refused.value.message  # names the cause: uploads not replayed
    # The budget was not charged for a refused query: the refusal comes before the ledger, so
    # the enclave recorded nothing (no query_run, no budget_charged).
    assert host.request("GET", "/v1/audit").json()["entries"] == audit_before
    assert_no_leak(host, marked)
    assert_still_serving(host)


def _sealed_file(host: HostDeployment, policy: Policy) -> Any:
    return host.state / "enclave" / f"collaboration-{hashlib.sha256(policy.raw).hexdigest()}.sealed"


def test_rolled_back_sealed_state_is_detected(
        fresh_deployment: HostDeployment, verify: Callable[[HostDeployment], Any],
        marked: MarkedData, policy: Policy, parties: dict[str, PartyKeys]) -> None:
    """The host restores an earlier sealed state file and restarts the enclave.

    The enclave cannot tell a stale sealed file from a fresh one (Gramine's encrypted files
    do not protect against rollback): it unseals it, its ledger forgetting the charges made
    since. What stops the attack is the audit head: the next receipt or result carries a head
    that is not a continuation of the one this party already saw (lower, or forked and run
    forward), and the client refuses it with ``rollback_detected``.
    """
    host = fresh_deployment
    client = host.client  # one client for the whole story: it is what remembers audit heads
    enclave = verify(host)
    _load_both(host, client, enclave, marked, policy, parties)
    sealed = _sealed_file(host, policy)
    snapshot = sealed.read_bytes()

    spent = [client.query(enclave, parties["advertiser"], policy, "overlap", {"group_by": []})
             for _ in range(2)]
    remaining_before = spent[-1].privacy["budget_remaining"]
    late = client.upload(enclave, parties["advertiser"], policy, "conversions", marked.conversions(),
                         mode="append")

    host.stop()
    sealed.write_bytes(snapshot)
    host.start()

    try:
        after = client.query(enclave, parties["advertiser"], policy, "overlap", {"group_by": []})
    except CleanroomError as exc:
        detected: str | None = exc.code
        remaining_after = None
    else:
        detected = None
        remaining_after = after.privacy["budget_remaining"]
    assert detected == "rollback_detected", (
        f"rolled-back state served: budget remaining went from {remaining_before} "
        f"back up to {remaining_after}")
    # The upload acknowledged after the snapshot is not in the stale manifest: its replay was
    # refused and the host set it aside, rather than the enclave re-accepting it unnoticed.
    assert (host.state / "uploads" / "quarantine" / f"{late.upload_id.hex()}.upload").exists()
    assert_no_leak(host, marked)
    assert_still_serving(host)
