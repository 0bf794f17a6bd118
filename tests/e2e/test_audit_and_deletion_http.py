"""Audit log and deletion through the real host, enclave and `cleanroom` CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from attestation.verifier.verify import VerifierPolicy
from cleanroom.cli import main as cleanroom_main
from protocol.errors import ConflictError
from protocol.policy import parse_policy
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow
ALLOW_SIMULATION = VerifierPolicy(allow_simulation=True)


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, policy_bytes: bytes) -> Iterator[HostDeployment]:
    with HostDeployment(tmp_path_factory.mktemp("audit-e2e"), policy_bytes) as deployment:
        yield deployment


def test_delete_then_audit_download_and_verify_offline(host, parties, tmp_path, capsys,
                                                       monkeypatch) -> None:
    policy = parse_policy(host.policy_bytes)
    client = host.client
    enclave = client.verify(host.policy_bytes, ALLOW_SIMULATION)
    impressions = _csv(tmp_path / "i.csv", ["email", "campaign", "age_band", "region"],
                       [[f"p{i}@x.org", "spring_sale", "18-24", "north"] for i in range(400)])
    conversions = _csv(tmp_path / "c.csv", ["email", "value"],
                       [[f"p{i}@x.org", "10.00"] for i in range(200, 600)])
    client.upload(enclave, parties["publisher"], policy, "impressions", impressions)
    receipt = client.upload(enclave, parties["advertiser"], policy, "conversions", conversions)
    stored = host.state / "uploads" / f"{receipt.upload_id.hex()}.upload"
    assert stored.exists()
    client.query(enclave, parties["advertiser"], policy, "overlap", {"group_by": []})

    body = client.delete(enclave, parties["advertiser"], policy, "conversions")
    assert body["upload_ids"] == [receipt.upload_id] and body["rows_deleted"] == 400
    assert not stored.exists()  # the host dropped the ciphertext too
    assert {u["dataset"] for u in client.uploads()} == {"impressions"}
    with pytest.raises(ConflictError):
        client.query(enclave, parties["advertiser"], policy, "overlap", {"group_by": []})

    # The whole story is in the audit log, which verifies offline with the CLI, against the
    # head this party's client remembered from its receipts and results.
    import shutil
    shutil.copytree(host.work / "audit-heads", tmp_path / "home" / "heads")
    monkeypatch.setenv("CLEANROOM_HOME", str(tmp_path / "home"))
    saved = tmp_path / "audit.json"
    assert cleanroom_main(["audit", "download", "--host", host.url, "-o", str(saved)]) == 0
    assert cleanroom_main(["audit", "verify", str(saved), "--policy", str(host.policy_path),
                           "--insecure-allow-simulation"]) == 0
    out = capsys.readouterr().out
    for kind in ("upload_accepted", "query_run", "budget_charged", "result_released",
                 "dataset_deleted"):
        assert kind in out
    assert "audit log verified: 6 entries" in out  # 2 uploads, 3 for the query, 1 deletion
    assert "contains the head this party last saw (entry 6)" in out

    # A host that drops an entry from what it serves is caught.
    doc = json.loads(saved.read_text())
    del doc["entries"][2]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    assert cleanroom_main(["audit", "verify", str(tampered), "--policy", str(host.policy_path),
                           "--insecure-allow-simulation"]) == 1
    assert "chain breaks" in capsys.readouterr().err

    # So is one that cuts entries off the end: the log alone is consistent, the party's head is not.
    doc = json.loads(saved.read_text())
    doc["entries"] = doc["entries"][:-1]
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(doc))
    assert cleanroom_main(["audit", "verify", str(cut), "--policy", str(host.policy_path),
                           "--insecure-allow-simulation"]) == 1
    assert "cut off" in capsys.readouterr().err


def test_the_audit_endpoint_serves_entries_after_a_sequence_number(host) -> None:
    everything = host.request("GET", "/v1/audit").json()["entries"]
    assert host.request("GET", f"/v1/audit?after={len(everything) - 1}").json()["entries"] == everything[-1:]
    reply = host.request("GET", "/v1/audit?after=-1")
    assert reply.status == 400 and reply.code == "bad_message"
