"""The README's party walk-through, followed literally from "Save those flags once" to the audit.

Every ``cleanroom`` command of those steps runs, in order, through the real CLI against a real
host and enclave, in a fresh directory holding ``policy.toml``, ``keys/advertiser.key.json`` and
``conversions.csv``, with its own ``$CLEANROOM_HOME``. Only the placeholders change: ``HOST:8700``
becomes the test host, ``ID`` the id of the result just saved, and the verifier-policy line takes
the README's own demo-host alternative (``insecure-allow-simulation true``).
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shlex
from pathlib import Path

import pytest

from cleanroom.cli import main
from protocol.policy import parse_policy
from protocol.wire import unpack_document
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def _walk_through() -> list[str]:
    text = README.read_text()
    steps = text[text.index("**3. Save those flags once.**"):text.index("## Documentation")]
    lines = []
    for block in re.findall(r"^```\n(.*?)^```", steps, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("cleanroom "):
                lines.append(line)
    return lines


def _argv(line: str, url: str, saved: Path) -> list[str]:
    if line.startswith("cleanroom profile set verifier-policy") and "insecure-allow-simulation true" in line:
        line = "cleanroom profile set insecure-allow-simulation true"  # the README's demo-host line
    line = re.sub(r"\s+#.*$", "", line).replace("http://HOST:8700", url)
    argv = shlex.split(line)[1:]
    if argv[:2] == ["results", "get"] and saved.exists():
        body = unpack_document("signed", base64.b64decode(json.loads(saved.read_text())["signed"]))
        argv[2] = unpack_document("result", body["body"])["query_id"].hex()
    return argv


def test_the_readme_walk_through_works_as_written(tmp_path, parties, policy_bytes, monkeypatch, capsys):
    from attestation.verifier.verify import VerifierPolicy

    work = tmp_path / "party"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("CLEANROOM_HOME", str(tmp_path / "home"))
    (work / "policy.toml").write_bytes(policy_bytes)
    parties["advertiser"].save(work / "keys")
    with (work / "conversions.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "value"])
        writer.writerows([f"person{i}@example.com", "19.99"] for i in range(300, 900))
    impressions = tmp_path / "impressions.csv"
    with impressions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "campaign", "age_band", "region"])
        writer.writerows([f"person{i}@example.com", "spring_sale", "25-34", "north"] for i in range(900))
    lines = _walk_through()
    assert len(lines) >= 15
    (tmp_path / "host").mkdir()
    with HostDeployment(tmp_path / "host", policy_bytes) as host:
        # The other party's data, uploaded on its own machine (not part of this party's steps).
        client = host.client
        policy = parse_policy(policy_bytes)
        enclave = client.verify(policy_bytes, VerifierPolicy(allow_simulation=True))
        client.upload(enclave, parties["publisher"], policy, "impressions", impressions)
        for line in lines:
            argv = _argv(line, host.url, work / "r.json")
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 0, f"{line}\n{err[-2000:]}"
    assert (work / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (work / "audit.json").exists()
