"""A policy template run through the real CLI against a real host (the events example policy).

``cleanroom query weekly_revenue --param campaigns=...`` runs the template's plan with those
values; a wrong parameter is refused on the party's machine, before anything is sent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from attestation.verifier.verify import VerifierPolicy
from cleanroom.cli import main
from cleanroom.keys import bind_keys_into_policy
from protocol.policy import parse_policy
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow
EVENTS = Path(__file__).resolve().parents[2] / "policies" / "advertiser-publisher-events.toml"


def test_a_template_through_the_cli(tmp_path: Path, parties, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CLEANROOM_HOME", str(tmp_path / "home"))
    raw, _ = bind_keys_into_policy(EVENTS.read_bytes(), {p: k.public() for p, k in parties.items()})
    policy = parse_policy(raw)
    impressions, conversions = tmp_path / "i.csv", tmp_path / "c.csv"
    with impressions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "campaign", "age_band", "region", "arm", "ts"])
        writer.writerows([f"p{i}@x.com", ["spring_sale", "summer_run"][i % 2], "25-34", "north", "test",
                          f"2026-10-{1 + i % 28:02d}T10:00:00Z"] for i in range(800))
    with conversions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "value", "ts"])
        writer.writerows([f"p{i}@x.com", "20.00", f"2026-10-{1 + i % 28:02d}T12:00:00Z"] for i in range(800))
    keys = str(parties["publisher"].save(tmp_path / "keys")[0])
    (tmp_path / "host").mkdir()
    with HostDeployment(tmp_path / "host", raw) as host:
        client = host.client
        enclave = client.verify(raw, VerifierPolicy(allow_simulation=True))
        client.upload(enclave, parties["publisher"], policy, "impressions", impressions)
        client.upload(enclave, parties["advertiser"], policy, "conversions", conversions)
        base = ["query", "weekly_revenue", "--host", host.url, "--policy", str(host.policy_path),
                "--keys", keys, "--insecure-allow-simulation"]
        assert main([*base, "--param", "campaigns=spring_sale,summer_run", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["columns"] == ["week", "buyers", "revenue"] and doc["rows"]
        assert doc["analysis"] == "weekly_revenue"
        # Refused on this machine: an undeclared value, and a parameter the template lacks.
        offline = ["query", "weekly_revenue", "--host", "http://127.0.0.1:9", "--policy",
                   str(host.policy_path), "--keys", keys, "--insecure-allow-simulation"]
        assert main([*offline, "--param", "campaigns=winter_socks"]) == 1
        assert "'winter_socks' is not a declared value" in capsys.readouterr().err
        assert main([*offline, "--param", "regions=north"]) == 1
        assert "params must be exactly ['campaigns']" in capsys.readouterr().err
