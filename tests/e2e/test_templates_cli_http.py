"""A policy template run through the real CLI against a real host (the events example policy).

``cleanroom query weekly_revenue --param campaigns=...`` runs the template's plan with those
values; a wrong parameter is refused on the party's machine, before anything is sent. A GROUP BY
parameter takes the columns in the order asked (``--param by=a,b``), or ``--group-by`` for a
template with one; the LEFT JOIN template's unexposed converters come last, shown as ``(none)``.
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
        # p800..p1099 converted without any impression: the LEFT JOIN's unexposed row
        writer.writerows([f"p{i}@x.com", "20.00", f"2026-10-{1 + i % 28:02d}T12:00:00Z"] for i in range(1100))
    keys = str(parties["publisher"].save(tmp_path / "keys")[0])
    advertiser = str(parties["advertiser"].save(tmp_path / "advertiser-keys")[0])
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
        # The request orders the chosen columns; the result's columns follow it.
        segments = [*base[:1], "conversions_by_segment", *base[2:]]
        assert main([*segments, "--param", "by=impressions.region,impressions.campaign", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["columns"] == ["region", "campaign", "users", "impressions", "value_sum", "order_value"]
        assert doc["params"]["template_params"] == {"by": ["impressions.region", "impressions.campaign"]}
        assert ["north", "spring_sale"] in [row[:2] for row in doc["rows"]]
        # --group-by for the one GROUP BY parameter; the unexposed converters last, as (none)
        attribution = ["query", "campaign_attribution", *base[2:]]
        attribution[attribution.index("--keys") + 1] = advertiser
        assert main([*attribution, "--group-by", "impressions.campaign"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].startswith("campaign_attribution (template: by = impressions.campaign)")
        header = next(i for i, line in enumerate(table) if line.startswith("campaign "))
        rows = table[header + 2:]  # up to the notes (a nil row's, the noise's) or the footer
        end = next(i for i, line in enumerate(rows) if not line or line.startswith(("note:", "(none):")))
        rows = rows[:end]
        assert rows[-1].startswith("(none) "), table
        assert {"spring_sale", "summer_run"} <= {r.split()[0] for r in rows}
        assert any(line.startswith("(none): the persons of conversions with no impressions row")
                   for line in table)
