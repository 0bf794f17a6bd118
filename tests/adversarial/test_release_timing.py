"""A result must not leave before the deadline of its own plan's worst case.

The enclave holds every result back until a deadline computed from the query's public shape
(``enclave/engine/release_timing.py``), so that the time a party waits for it cannot depend on
the other party's data. The deadline is a worst-case cost model; a plan it under-estimates
overruns on the right data, and the overrun (the release slips to the next doubling) says
something about that data. ``python -m benchmarks.release_floor`` measured the lift, a plan
that counts one dataset's own persons (``COUNT(DISTINCT i.person)``, which bounds every
impression row, matched or not), at up to 0.74 µs per declared row with 10M rows per dataset,
while every plan was padded as an ``aggregate``, 0.8 µs: no margin left, and on a busier
machine an overrun. Plans now have cost kinds of their own (``plan_cost_kind``).

Through a real host: the lift must not come back before its own kind's deadline. The check is a
lower bound (a sleep lasts at least as long as asked), so it holds on any machine; on the old
code the result came back at the ``aggregate`` deadline, a second too early.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from cleanroom.sql import compile_query
from enclave.engine.release_timing import PER_ROW_S_BY_KIND, release_deadline
from protocol.policy import parse_policy
from protocol.query_plan import check_plan, parse_plan
from tests.conftest import EXAMPLE_POLICY, bind_policy
from tests.support.deployment import HostDeployment

DECLARED_PER_DATASET = 1_250_000  # only the declared rows enter the deadline, not the uploaded
LIFT = """SELECT i.campaign, COUNT(DISTINCT i.person) AS exposed, COUNT(DISTINCT person) AS converters
FROM impressions i JOIN conversions c
GROUP BY i.campaign"""


def _csvs(directory: Path) -> tuple[Path, Path]:
    impressions, conversions = directory / "impressions.csv", directory / "conversions.csv"
    with impressions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "campaign", "age_band", "region"])
        for i in range(300):
            writer.writerow([f"lift{i}@example.com", ["spring_sale", "summer_run"][i % 2], "25-34", "north"])
    with conversions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "value"])
        for i in range(100, 400):
            writer.writerow([f"lift{i}@example.com", "12.50"])
    return impressions, conversions


def test_a_plan_counting_one_datasets_persons_is_held_to_its_own_kinds_deadline(
        tmp_path: Path, parties) -> None:
    text = EXAMPLE_POLICY.read_text()
    assert text.count("max_rows = 3_000_000") == 2
    policy_bytes = bind_policy(parties, text.replace("max_rows = 3_000_000",
                                                     f"max_rows = {DECLARED_PER_DATASET}"))
    policy = parse_policy(policy_bytes)
    compiled = compile_query(LIFT, policy, "advertiser")
    cells = sum(s.length for s in check_plan(policy, parse_plan(compiled.wire), "advertiser").statistics)
    declared = 2 * DECLARED_PER_DATASET
    deadline = release_deadline(cells, declared, "plan_dataset_persons")
    # what the old code padded every plan to, and what this test tells apart from the above
    assert deadline - release_deadline(cells, declared, "aggregate") > 0.5
    assert PER_ROW_S_BY_KIND["plan_dataset_persons"] > PER_ROW_S_BY_KIND["plan"]
    impressions, conversions = _csvs(tmp_path)
    (tmp_path / "deployment").mkdir()
    with HostDeployment(tmp_path / "deployment", policy_bytes) as host:
        client, enclave = host.verify_and_upload(parties, {"impressions": impressions,
                                                           "conversions": conversions})
        started = time.monotonic()
        result = client.query(enclave, parties["advertiser"], policy, "", {}, plan=compiled.wire, sql=LIFT)
        waited = time.monotonic() - started
    assert result.body["columns"][:3] == ["campaign", "exposed", "converters"]
    assert waited >= deadline, (waited, deadline)


@pytest.mark.parametrize(("select", "kind"), [
    ("COUNT(DISTINCT person) AS converters", "plan"),
    ("COUNT(DISTINCT i.person) AS exposed, SUM(c.value) AS revenue", "plan_dataset_persons"),
])
def test_plans_are_padded_by_what_they_count(parties, select: str, kind: str) -> None:
    from enclave.engine.release_timing import plan_cost_kind

    policy = parse_policy(bind_policy(parties))
    sql = f"SELECT i.region, {select} FROM impressions i JOIN conversions c GROUP BY i.region"
    assert plan_cost_kind(parse_plan(compile_query(sql, policy, "publisher").wire)) == kind
