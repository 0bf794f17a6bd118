"""A party's day through the real ``cleanroom`` CLI against a real host and enclave on loopback.

* the advertiser runs an aggregate with ``--save`` and ``--output r.csv``; the ``cleanroom check``
  line printed after saving is followed literally and verifies;
* the publisher, a recipient that did not run the query, finds it with ``results list`` and
  fetches it with ``results get`` by a 12-digit prefix;
* ``budget`` shows what is left as decimals, from the enclave's signed statement;
* an activation goes to a file, and ``match-back`` turns its digests into the advertiser's own
  rows by hashing its file again.

The numbers carry real noise, so only their shape and the exact bookkeeping are checked.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
from collections.abc import Iterator

import pytest

from cleanroom.cli import main
from protocol.policy import parse_policy
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow
CAMPAIGNS = ["spring_sale", "summer_run"]
ALLOW_SIMULATION = "--insecure-allow-simulation"


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory, parties, policy_bytes) -> Iterator[dict]:
    from attestation.verifier.verify import VerifierPolicy

    tmp = tmp_path_factory.mktemp("party-cli")
    home = os.environ.get("CLEANROOM_HOME")
    os.environ["CLEANROOM_HOME"] = str(tmp / "home")  # this enclave is new to this party
    impressions, conversions = tmp / "impressions.csv", tmp / "conversions.csv"
    with impressions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "campaign", "age_band", "region"])
        for i in range(1200):
            writer.writerow([f"person{i}@example.com", CAMPAIGNS[i % 2], "25-34", "north"])
    with conversions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "value", "crm_id"])
        for i in range(600, 1800):
            writer.writerow([f"  Person{i}@Example.COM ", "19.99", f"crm-{i}"])
    keys = {p: str(parties[p].save(tmp / "keys")[0]) for p in parties}
    try:
        with HostDeployment(tmp, policy_bytes) as host:
            client, policy = host.client, parse_policy(policy_bytes)
            enclave = client.verify(policy_bytes, VerifierPolicy(allow_simulation=True))
            client.upload(enclave, parties["publisher"], policy, "impressions", impressions)
            client.upload(enclave, parties["advertiser"], policy, "conversions", conversions)
            yield {"url": host.url, "policy": str(host.policy_path), "keys": keys, "tmp": tmp,
                   "conversions": conversions}
    finally:
        if home is None:
            os.environ.pop("CLEANROOM_HOME", None)
        else:
            os.environ["CLEANROOM_HOME"] = home


def _online(room: dict, party: str, *argv: str) -> list[str]:
    return [*argv, "--host", room["url"], "--policy", room["policy"], "--keys", room["keys"][party],
            ALLOW_SIMULATION]


def test_results_reach_every_recipient_and_the_check_hint_works(room, capsys) -> None:
    tmp = room["tmp"]
    saved, exported = tmp / "r.json", tmp / "r.csv"
    assert main(_online(room, "advertiser", "query", "conversions_by_segment", "--group-by",
                        "impressions.campaign", "--metric", "conversions.value",
                        "--save", str(saved), "--output", str(exported))) == 0
    _, err = capsys.readouterr()
    header, *rows = list(csv.reader(exported.read_text().splitlines()))
    assert header == ["campaign", "users", "users_ci95", "rows", "rows_ci95", "value_sum",
                      "value_sum_ci95", "value_mean_per_user", "value_mean_per_user_ci95"]
    assert rows and all(row[2] and row[4] and row[6] for row in rows)

    hint = shlex.split(err.split("check it offline with `")[1].split("`")[0])
    assert hint[:2] == ["cleanroom", "check"]
    assert main(hint[1:]) == 0  # the printed command, followed literally
    checked = capsys.readouterr().out
    query_id = checked.split("query ")[1].split()[0]
    assert len(query_id) == 64 and "result signature: ok" in checked

    assert main(["results", "list", "--host", room["url"], "--keys", room["keys"]["publisher"]]) == 0
    assert query_id in capsys.readouterr().out
    assert main(_online(room, "publisher", "results", "get", query_id[:12], "--format", "json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["query_id"] == query_id and doc["requested_by"] == "advertiser"
    assert doc["columns"][0] == "campaign" and len(doc["ci95_half_width"]) == len(doc["rows"])

    assert main(["budget", "--host", room["url"], "--policy", room["policy"], ALLOW_SIMULATION]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1]}
    assert lines["conversions"][1:4] == ["6", "0.6", "5.4"]  # one aggregate of ε 0.6 so far
    assert lines["impressions"][1:4] == ["6", "0.6", "5.4"]


def test_activation_goes_to_a_file_and_maps_back_to_own_rows(room, capsys) -> None:
    tmp = room["tmp"]
    ids = tmp / "ids.csv"
    assert main(_online(room, "advertiser", "query", "activate_converters", "--cohort",
                        "impressions.campaign=spring_sale", "--output", str(ids))) == 0
    out, _ = capsys.readouterr()
    assert out == ""  # everything went to the file
    digests = ids.read_text().splitlines()
    # p600..p1198, even: spring_sale. True size 300 against min_cohort_size 50 and noise scale
    # 10: the gate refuses it with probability about e^-25.
    assert digests[0] == "id_sha256" and len(digests) - 1 == 300

    matched = tmp / "matched.csv"
    assert main(["match-back", str(ids), "--input", str(room["conversions"]), "--dataset",
                 "conversions", "--policy", room["policy"], "--output", str(matched)]) == 0
    header, *rows = list(csv.reader(matched.read_text().splitlines()))
    assert header == ["email", "value", "crm_id"]
    assert sorted(row[2] for row in rows) == sorted(f"crm-{i}" for i in range(600, 1200, 2))
    assert rows[0][0] == "  Person600@Example.COM "  # the row as it is in the party's file
    assert "300 of 1,200 rows" in capsys.readouterr().err
