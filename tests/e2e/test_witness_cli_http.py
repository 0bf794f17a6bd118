"""``cleanroom witness --once`` through the real CLI.

A witnessed query waits until both owners' witnesses have co-signed it, then runs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from attestation.verifier.verify import VerifierPolicy
from cleanroom.cli import main
from cleanroom.keys import PartyKeys
from protocol.policy import parse_policy
from tests.adversarial.kit import MarkedData
from tests.conftest import EXAMPLE_POLICY, bind_policy
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow


def test_the_witness_command_co_signs_and_the_query_runs(tmp_path: Path, parties: dict[str, PartyKeys],
                                                         capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLEANROOM_HOME", str(tmp_path / "home"))
    text = EXAMPLE_POLICY.read_text().replace("max_rows = 3_000_000", "max_rows = 20_000")
    raw = bind_policy(parties, text.replace('refresh = "none"', 'refresh = "none"\nwitness = "owners"', 1))
    policy = parse_policy(raw)
    marked = MarkedData(tmp_path)
    keys = {p: str(parties[p].save(tmp_path / "keys")[0]) for p in parties}
    (tmp_path / "host").mkdir()
    with HostDeployment(tmp_path / "host", raw) as host:
        client = host.client
        enclave = client.verify(raw, VerifierPolicy(allow_simulation=True))
        client.upload(enclave, parties["publisher"], policy, "impressions", marked.impressions(policy))
        client.upload(enclave, parties["advertiser"], policy, "conversions", marked.conversions())
        answer: dict[str, Any] = {}
        asking = threading.Thread(target=lambda: answer.setdefault("result", client.query(
            enclave, parties["advertiser"], policy, "overlap", {"group_by": []}, approval_timeout=60)))
        asking.start()
        common = ["--host", host.url, "--policy", str(host.policy_path), "--insecure-allow-simulation",
                  "--once"]
        signed: list[str] = []
        for _ in range(100):  # each owner's witness, run as a cron job would run it
            for party in ("publisher", "advertiser"):
                state = tmp_path / f"{party}-witness.json"
                assert main(["witness", "--keys", keys[party], "--state", str(state), *common]) == 0
                signed.append(capsys.readouterr().out)
            asking.join(0.2)
            if not asking.is_alive():
                break
        asking.join(60)
        assert answer["result"].body["kind"] == "overlap"
        assert any("co-signed query" in out for out in signed)
        assert (tmp_path / "publisher-witness.json").exists()
    # --status reads only the state file: no host is needed.
    assert main(["witness", "--status", "--keys", keys["publisher"], "--policy", str(tmp_path / "host" /
                 "policy.toml"), "--state", str(tmp_path / "publisher-witness.json"),
                 "--host", "http://127.0.0.1:9"]) == 0
    out = capsys.readouterr().out
    assert "1 proposal(s) co-signed" in out
    assert "impressions: epsilon 0.2 of 6 co-signed (advertiser 0.2)" in out
