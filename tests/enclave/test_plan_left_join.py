"""``FROM conversions LEFT JOIN impressions``: every converter counts, the unexposed in a nil row.

Against the plaintext reference of ``test_analyses.people_data`` (which never binds the
contribution bounds), with no noise, so every released cell must be exact.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from protocol.errors import PolicyViolation, ProtocolError
from tests.conftest import bind_policy
from tests.enclave.test_analyses import CAMPAIGNS, CLAMP, _loaded, people_data
from tests.enclave.test_plans import _cents, _plan, _run, _spent
from tests.support.enclave_harness import EnclaveHarness


@pytest.fixture(scope="module")
def enclave(parties) -> EnclaveHarness:
    return _loaded(parties, bind_policy(parties))


def _left(group_by: list[str], select: list[tuple[str, str, str]],
          where: list[tuple[str, str, list[str]]] = ()) -> dict[str, Any]:
    return _plan(group_by, select, where) | {"datasets": ["conversions", "impressions"], "join": "left"}


def _reference(regions: set[int] | None = None) -> dict[int | None, dict[str, int]]:
    """Per campaign (None: no impression in the regions asked): the converters, their
    conversions and clamped value, each converter once in every campaign it saw."""
    impressions, conversions = people_data()
    conv: dict[bytes, list[int]] = defaultdict(list)
    for pid, value in zip(map(bytes, conversions["id"]), conversions["value"], strict=True):
        conv[pid].append(min(int(value), CLAMP))
    seen: dict[bytes, set[int]] = defaultdict(set)
    for pid, c, r in zip(map(bytes, impressions["id"]), impressions["campaign"], impressions["region"],
                         strict=True):
        if regions is None or int(r) in regions:
            seen[pid].add(int(c))
    cells: dict[int | None, list[bytes]] = defaultdict(list)
    for pid in conv:
        for campaign in seen.get(pid) or {None}:
            cells[campaign].append(pid)
    return {c: {"persons": len(p), "conversions": sum(len(conv[x]) for x in p),
                "value": sum(sum(conv[x]) for x in p)} for c, p in cells.items()}


def test_left_join_releases_each_campaign_and_the_unexposed(enclave: EnclaveHarness, parties) -> None:
    result = _run(enclave, parties["advertiser"], _left(
        ["impressions.campaign"],
        [("count_distinct", "person", "converters"), ("count", "conversions", "conversions"),
         ("sum", "conversions.value", "revenue")],
        [("impressions.region", "in", ["north", "south"])]))
    reference = _reference({0, 1})
    expected = {None if c is None else CAMPAIGNS[c]:
                [ref["persons"], ref["conversions"], _cents(ref["value"])]
                for c, ref in reference.items() if ref["persons"] >= 50}
    released = {row[0]: row[1:] for row in result.body["rows"]}
    assert None in expected and len(expected) >= 3  # the data has unexposed converters
    assert released == expected
    assert result.body["rows"][-1][0] is None  # the unexposed row comes last
    privacy = result.body["privacy"]
    # 8 campaigns + the unexposed: a converter moves from min(L0 = 4, 8) cohorts to that one
    assert privacy["cohorts_total"] == 9
    assert privacy["sensitivity"]["persons"] == 5
    assert result.body["params"]["plan"]["join"] == "left"


def test_left_join_without_group_by_counts_every_converter(enclave: EnclaveHarness, parties) -> None:
    result = _run(enclave, parties["publisher"], _left([], [("count_distinct", "person", "converters")]))
    _, conversions = people_data()
    assert result.body["rows"] == [[len(set(map(bytes, conversions["id"])))]]
    assert result.body["privacy"]["sensitivity"]["persons"] == 1


@pytest.mark.parametrize(("plan", "message"), [
    (_left(["conversions.nope"], [("count_distinct", "person", "x")]), "GROUP BY conversions.nope"),
    (_left([], [("count_distinct", "person", "x")]) | {
        "select": [{"fn": "histogram", "arg": "impressions", "as": "f", "max": 3}]},
     "with JOIN and no window"),
    (_left(["impressions.campaign"], [("count_distinct", "person", "x")]) | {"window": {
        "from": "impressions.ts", "to": "conversions.ts", "max_days": 7, "model": "last_touch"}}, "JOIN ON"),
    (_left([], [("count_distinct", "impressions.person", "x")]), "with JOIN and no window"),
])
def test_left_joins_outside_their_shape_are_refused_at_no_cost(enclave: EnclaveHarness, parties,
                                                               plan: dict[str, Any], message: str) -> None:
    before = _spent(enclave)
    with pytest.raises((PolicyViolation, ProtocolError), match=message):
        _run(enclave, parties["advertiser"], plan)
    assert _spent(enclave) == before


def test_a_join_other_than_left_is_malformed(enclave: EnclaveHarness, parties) -> None:
    with pytest.raises(ProtocolError, match="plan join"):
        _run(enclave, parties["advertiser"],
             _plan([], [("count_distinct", "person", "x")]) | {"join": "inner"})


def test_an_average_of_the_optional_side_is_refused_in_a_grouped_left_join() -> None:
    """The nil row has no rows of the optional dataset, so its AVG would be noise divided by
    noise; SUM and COUNT (noise around an exact zero) stay allowed."""
    from protocol.policy import parse_policy
    from protocol.query_plan import check_plan, parse_plan
    from tests.conftest import EXAMPLE_POLICY

    policy = parse_policy(EXAMPLE_POLICY.with_name("advertiser-publisher-events.toml").read_bytes())
    plan = {"v": 1, "datasets": ["impressions", "conversions"], "join": "left", "where": [],
            "group_by": [{"column": "conversions.ts", "trunc": "week", "as": "week"}],
            "select": [{"fn": "count_distinct", "arg": "person", "as": "persons"},
                       {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
    check_plan(policy, parse_plan(plan), "advertiser")  # SUM is fine
    plan["select"].append({"fn": "avg", "arg": "conversions.value", "as": "order_value"})
    with pytest.raises(PolicyViolation, match="select SUM and COUNT instead"):
        check_plan(policy, parse_plan(plan), "advertiser")
