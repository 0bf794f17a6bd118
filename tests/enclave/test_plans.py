"""Free-form query plans (docs/query-language.md) against an independent plaintext reference.

The data of ``test_analyses.people_data`` never binds the contribution bounds (at most 3
campaigns and 8 impressions per campaign per person, at most 3 conversions), so with no noise
every released cell must equal the reference exactly.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from cleanroom.result_open import open_result
from protocol.crypto import QUERY_LABEL
from protocol.errors import PolicyViolation, ProtocolError
from protocol.wire import pack_document, unpack_document
from tests.conftest import bind_policy
from tests.enclave.test_analyses import CAMPAIGNS, CLAMP, _loaded, people_data
from tests.support.enclave_harness import EnclaveHarness

REGIONS = ["north", "south", "east", "west", "central"]


@pytest.fixture(scope="module")
def enclave(parties) -> EnclaveHarness:
    return _loaded(parties, bind_policy(parties))


def _plan(group_by: list[str], select: list[tuple[str, str, str]],
          where: list[tuple[str, str, list[str]]] = ()) -> dict[str, Any]:
    return {"v": 1, "datasets": ["impressions", "conversions"],
            "where": [{"column": c, "op": op, "values": v} for c, op, v in where],
            "group_by": group_by, "select": [{"fn": f, "arg": a, "as": n} for f, a, n in select]}


def _run(enclave: EnclaveHarness, keys: Any, plan: dict[str, Any], sql: str | None = None) -> Any:
    request = pack_document("query_request", {
        "collaboration_id": enclave.policy.collaboration_id, "policy_hash": enclave.policy.hash,
        "party": keys.party_id, "analysis": "", "params": {}, "nonce": os.urandom(16),
        "issued_at": int(time.time()), "plan": plan, **({"sql": sql} if sql else {})})
    reply = enclave.call("query", {"request": request, "signature": keys.sign(QUERY_LABEL, request)})
    return open_result(reply["results"][keys.party_id], keys=keys, policy=enclave.policy,
                       sig_pub=enclave.ready["sig_pub"], query_id=reply["query_id"])


def _reference(regions: set[int] | None = None) -> dict[int, dict[str, int]]:
    """Per campaign: matched persons, their impression rows, their conversion rows and clamped
    value (person-level: a person's conversions count once in every campaign they were in)."""
    impressions, conversions = people_data()
    conv: dict[bytes, list[int]] = defaultdict(list)
    for pid, value in zip(map(bytes, conversions["id"]), conversions["value"], strict=True):
        conv[pid].append(min(int(value), CLAMP))
    cells: dict[int, dict[str, Any]] = defaultdict(lambda: {"persons": set(), "rows": 0})
    for pid, c, r in zip(map(bytes, impressions["id"]), impressions["campaign"], impressions["region"],
                         strict=True):
        if pid in conv and (regions is None or int(r) in regions):
            cells[int(c)]["persons"].add(pid)
            cells[int(c)]["rows"] += 1
    return {c: {"persons": len(cell["persons"]), "rows": cell["rows"],
                "conversions": sum(len(conv[p]) for p in cell["persons"]),
                "value": sum(sum(conv[p]) for p in cell["persons"])} for c, cell in cells.items()}


def _cents(value: int) -> str:
    return str(Decimal(value).scaleb(-2))


def test_group_by_with_own_and_other_datasets_aggregates(enclave: EnclaveHarness, parties) -> None:
    result = _run(enclave, parties["advertiser"], _plan(
        ["impressions.campaign"],
        [("count_distinct", "person", "users"), ("count", "impressions", "impressions"),
         ("count", "conversions", "conversions"), ("sum", "conversions.value", "revenue"),
         ("avg", "conversions.value", "order_value")],
        [("impressions.region", "in", ["north", "south"])]), sql="SELECT ...")
    reference = _reference({0, 1})
    assert result.body["columns"] == ["campaign", "users", "impressions", "conversions", "revenue",
                                      "order_value"]
    released = {row[0]: row[1:] for row in result.body["rows"]}
    expected = {CAMPAIGNS[c]: [ref["persons"], ref["rows"], ref["conversions"], _cents(ref["value"]),
                               _cents(ref["value"] // ref["conversions"])]
                for c, ref in reference.items() if ref["persons"] >= 50}
    assert released.keys() == expected.keys() and len(expected) >= 2
    for campaign, row in released.items():
        assert row[:4] == expected[campaign][:4]
        assert abs(Decimal(row[4]) - Decimal(expected[campaign][4])) <= Decimal("0.01")
    assert result.body["kind"] == "plan" and result.body["params"]["sql"] == "SELECT ..."
    assert result.body["params"]["plan"]["where"][0]["values"] == ["north", "south"]
    meta = result.body["privacy"]
    assert meta["column_statistics"]["order_value"] == ["sum:conversions.value", "count:conversions"]
    assert set(meta["noise_scale"]) == {"persons", "count:impressions", "count:conversions",
                                        "sum:conversions.value"}


def test_without_group_by_one_row_of_every_matched_person(enclave: EnclaveHarness, parties) -> None:
    result = _run(enclave, parties["publisher"], _plan([], [("sum", "conversions.value", "revenue")]))
    impressions, conversions = people_data()
    matched = set(map(bytes, impressions["id"])) & set(map(bytes, conversions["id"]))
    total = sum(min(int(v), CLAMP) for pid, v in zip(map(bytes, conversions["id"]), conversions["value"],
                                                    strict=True) if pid in matched)
    assert result.body["columns"] == ["revenue", "persons"]  # the gate is released too
    assert result.body["rows"] == [[_cents(total), len(matched)]]


def test_not_in_excludes_the_listed_values(enclave: EnclaveHarness, parties) -> None:
    result = _run(enclave, parties["advertiser"], _plan(
        ["impressions.campaign"], [("count_distinct", "person", "users")],
        [("impressions.region", "not_in", ["east", "west", "central"])]))
    reference = _reference({0, 1})
    assert {r[0]: r[1] for r in result.body["rows"]} == {
        CAMPAIGNS[c]: ref["persons"] for c, ref in reference.items() if ref["persons"] >= 50}


@pytest.mark.parametrize(("plan", "message"), [
    (_plan(["impressions.campaign"], [("sum", "impressions.campaign", "x")]), "not a metric"),
    (_plan(["impressions.nope"], [("count_distinct", "person", "x")]), "GROUP BY impressions.nope"),
    (_plan([], [("count_distinct", "person", "x")], [("impressions.region", "in", ["mars"])]),
     "'mars' is not a declared value"),
    (_plan(["impressions.campaign", "impressions.region", "impressions.age_band"],
           [("count_distinct", "person", "x")]), "GROUP BY: more columns than the rules allow"),
    ({**_plan([], [("count_distinct", "person", "x")]), "datasets": ["impressions"]},
     "FROM: a query must join"),
])
def test_out_of_rule_plans_are_refused_before_any_charge(enclave: EnclaveHarness, parties,
                                                         plan: dict[str, Any], message: str) -> None:
    before = _spent(enclave)
    with pytest.raises(PolicyViolation) as refused:
        _run(enclave, parties["advertiser"], plan)
    assert message in refused.value.message
    assert _spent(enclave) == before


def _spent(enclave: EnclaveHarness) -> dict[str, str]:
    status = unpack_document("budget_status", enclave.call("budget", {})["status"])
    return {name: entry["spent"] for name, entry in status["datasets"].items()}


def test_a_malformed_plan_is_a_protocol_error(enclave: EnclaveHarness, parties) -> None:
    with pytest.raises(ProtocolError, match="plan"):
        _run(enclave, parties["advertiser"], {"v": 2})


def test_a_histogram_plan_is_the_reach_and_frequency_report(enclave: EnclaveHarness, parties) -> None:
    """The reach_frequency analysis, written as a plan, releases the same cells and sensitivities."""
    from tests.enclave.test_analyses import _reach_reference

    result = _run(enclave, parties["advertiser"], _plan(
        ["impressions.campaign"], [("count_distinct", "person", "reach")]) | {
        "select": [{"fn": "count_distinct", "arg": "person", "as": "reach"},
                   {"fn": "histogram", "arg": "impressions", "as": "frequency", "max": 5}]})
    expected = [[CAMPAIGNS[c], sum(h), *h] for c, h in sorted(_reach_reference(5).items()) if sum(h) >= 50]
    assert result.body["rows"] == expected and len(expected) == 2
    assert result.body["columns"] == ["campaign", "reach", "frequency_1", "frequency_2", "frequency_3",
                                      "frequency_4", "frequency_5_plus"]
    assert result.body["privacy"]["sensitivity"] == {"persons": 4, "histogram:impressions": 4}
    assert result.body["privacy"]["column_statistics"]["frequency_5_plus"] == ["histogram:impressions"]


@pytest.mark.parametrize(("select", "message"), [
    ({"fn": "histogram", "arg": "impressions", "as": "f", "max": 9}, "above the rows kept per person"),
    ({"fn": "histogram", "arg": "conversions", "as": "f", "max": 3}, "the rows of the GROUP BY dataset"),
])
def test_histograms_outside_their_bounds_are_refused(enclave: EnclaveHarness, parties, select: dict,
                                                     message: str) -> None:
    plan = _plan(["impressions.campaign"], [("count_distinct", "person", "reach")])
    with pytest.raises(PolicyViolation, match=message):
        _run(enclave, parties["advertiser"], plan | {"select": [select]})
