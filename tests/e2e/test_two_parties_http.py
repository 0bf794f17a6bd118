"""Two parties -> real host (gunicorn, loopback HTTP) -> real enclave child process.

Nothing is faked: the host is `python -m host.cli serve`, the enclave is `python -m enclave`
in simulation mode, and the parties use the library the CLI is built on. The released numbers
carry real discrete Laplace noise, so they are compared with the plaintext truth within bounds
that a correct mechanism misses with probability below 1e-8.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attestation.verifier.verify import VerifierPolicy
from protocol.crypto import QUERY_LABEL
from protocol.errors import InvalidInput, PolicyViolation
from protocol.policy import parse_policy
from protocol.wire import pack_document
from tests.support.deployment import HostDeployment, enclave_pids, http

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
ALLOW_SIMULATION = VerifierPolicy(allow_simulation=True)
CAMPAIGNS = ["spring_sale", "summer_run"]


def _write_csvs(tmp: Path) -> tuple[Path, Path, int]:
    """People p0..p899; the publisher saw p0..p599, the advertiser converted p300..p899."""
    impressions = tmp / "impressions.csv"
    with impressions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "campaign", "age_band", "region", "unused_column"])
        for i in range(600):
            for _ in range(1 + i % 2):  # several rows for some people
                writer.writerow([f"  Person{i}@Example.COM ", CAMPAIGNS[i % 2], "25-34", "north", "x"])
    conversions = tmp / "conversions.csv"
    with conversions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "value"])
        for i in range(300, 900):
            writer.writerow([f"person{i}@example.com", "19.99"])
    return impressions, conversions, 300  # p300..p599 are in both


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, parties, policy_bytes) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("e2e")
    with HostDeployment(tmp, policy_bytes) as host:
        yield {"client": host.client, "policy": parse_policy(policy_bytes), "policy_bytes": policy_bytes,
               "tmp": tmp, "state": host.state, "host": host, "url": host.url}


def _raw(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict]:
    reply = http(url, method, body)
    return reply.status, reply.json()


def test_two_parties_end_to_end(deployment, parties) -> None:
    client, policy, tmp = deployment["client"], deployment["policy"], deployment["tmp"]
    impressions, conversions, true_overlap = _write_csvs(tmp)

    publisher = client.verify(deployment["policy_bytes"], ALLOW_SIMULATION)
    advertiser = client.verify(deployment["policy_bytes"], ALLOW_SIMULATION)
    assert publisher.simulated and publisher.sig_pub == advertiser.sig_pub

    receipt = client.upload(publisher, parties["publisher"], policy, "impressions", impressions)
    assert receipt.rows == 900 and receipt.simulated
    client.upload(advertiser, parties["advertiser"], policy, "conversions", conversions)
    assert {u["dataset"] for u in client.uploads()} == {"impressions", "conversions"}

    overlap = client.query(advertiser, parties["advertiser"], policy, "overlap", {"group_by": []})
    (count,), = overlap.rows
    # scale 1/0.2 = 5: |noise| > 100 has probability about 2·e^-20.
    assert abs(count - true_overlap) <= 100
    assert overlap.simulated and overlap.privacy["mechanism"]

    by_campaign = client.query(publisher, parties["publisher"], policy, "overlap",
                               {"group_by": ["impressions.campaign"]})
    released = {row[0]: row[1] for row in by_campaign.rows}
    # p300..p599 split evenly over the two campaigns; scale L0/0.2 = 20 -> |noise| ≤ 400 w.p. 1-4e-9.
    # Public cohort keys: an empty campaign may be released too, with pure noise as its count.
    for campaign, users in released.items():
        assert abs(users - (150 if campaign in CAMPAIGNS else 0)) <= 400, campaign

    aggregate = client.query(advertiser, parties["advertiser"], policy, "conversions_by_segment",
                             {"group_by": ["impressions.campaign"], "metric": "conversions.value"})
    assert aggregate.columns == ["campaign", "users", "rows", "value_sum", "value_mean_per_user"]
    assert aggregate.privacy["budget_remaining"] == {"impressions": "5", "conversions": "5"}


def test_bad_inputs_get_clear_errors_and_the_host_keeps_serving(deployment, parties, tmp_path) -> None:
    client, policy, url = deployment["client"], deployment["policy"], deployment["url"]
    enclave = client.verify(deployment["policy_bytes"], ALLOW_SIMULATION)

    missing_id = tmp_path / "no-id.csv"
    missing_id.write_text("mail,value\na@b.c,1.00\n")
    with pytest.raises(InvalidInput, match="email"):
        client.upload(enclave, parties["advertiser"], policy, "conversions", missing_id)
    wrong_type = tmp_path / "wrong-type.csv"
    wrong_type.write_text("email,value\na@b.c,lots\n")
    with pytest.raises(InvalidInput, match="value"):
        client.upload(enclave, parties["advertiser"], policy, "conversions", wrong_type)

    status, body = _raw(f"{url}/v1/queries", "POST", b"{not json")
    assert status == 400 and body["error"]["code"] == "bad_message"
    status, body = _raw(f"{url}/v1/uploads", "POST", b"\x00\x00\x00\x05hello")
    assert status == 400 and body["error"]["code"] == "bad_message"
    status, body = _raw(f"{url}/v1/no-such-thing")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert "Traceback" not in json.dumps(body)

    with pytest.raises(PolicyViolation):
        client.query(enclave, parties["publisher"], policy, "overlap", {"group_by": ["impressions.region"]})
    assert client.health()["status"] == "ok"


def test_replayed_and_forged_requests_over_http(deployment, parties) -> None:
    policy, url = deployment["policy"], deployment["url"]
    request = pack_document("query_request", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": "advertiser", "analysis": "overlap", "params": {"group_by": []},
        "nonce": os.urandom(16), "issued_at": int(time.time()),
    })
    signature = parties["advertiser"].sign(QUERY_LABEL, request)
    body = json.dumps({"request": base64.b64encode(request).decode(),
                       "signature": base64.b64encode(signature).decode()})
    first, _ = _raw(f"{url}/v1/queries", "POST", body.encode())
    second, reply = _raw(f"{url}/v1/queries", "POST", body.encode())
    assert (first, second) == (200, 409) and reply["error"]["code"] == "replay"

    forged = json.loads(body)
    forged["signature"] = base64.b64encode(bytes(64)).decode()
    status, reply = _raw(f"{url}/v1/queries", "POST", json.dumps(forged).encode())
    assert status == 403 and reply["error"]["code"] == "bad_signature"


def test_enclave_death_is_reported_then_recovered_with_data(deployment, parties) -> None:
    client, policy, state = deployment["client"], deployment["policy"], deployment["state"]
    before = client.verify(deployment["policy_bytes"], ALLOW_SIMULATION)
    uploads_before = {u["upload_id"] for u in client.uploads()}
    pids = enclave_pids(state)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)

    status, body = _raw(f"{deployment['url']}/v1/health")
    assert status == 503 and body["error"]["code"] == "enclave_unavailable"
    deployment["host"].wait_until_healthy()

    after = client.verify(deployment["policy_bytes"], ALLOW_SIMULATION)
    assert after.sig_pub == before.sig_pub  # same sealed keys
    assert {u["upload_id"] for u in client.uploads()} == uploads_before
    result = client.query(after, parties["advertiser"], policy, "overlap", {"group_by": []})
    assert abs(result.rows[0][0] - 300) <= 100
