"""SQL -> plan for time (``DATE_TRUNC``, time bounds, windows) and lift: golden plans and refusals.

Policy: the SQL variant with a timestamp ``ts`` on both datasets and an ``arm`` dimension on
impressions (``tests/support/sql_policy.py``). Both datasets have ``ts``, so it is qualified.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cleanroom.sql import compile_query, output_columns
from cleanroom.sql.compiler import compile_plan
from protocol.errors import InvalidInput, PolicyViolation
from protocol.policy import parse_policy
from protocol.query_plan import check_plan
from tests.support.sql_policy import sql_time_policy_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies" / "advertiser-publisher.toml"
POLICY = parse_policy(sql_time_policy_text(EXAMPLE.read_text()).encode())
JOIN = "FROM impressions i JOIN conversions c"
N = f"SELECT COUNT(c.*) AS n {JOIN}"
WINDOW = {"from": "impressions.ts", "to": "conversions.ts", "max_days": 7, "model": "last_touch"}


def _unix(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())


OCT1 = _unix(2026, 10, 1)


def _plan(where=(), group_by=(), select=(), window=None) -> dict:
    plan = {"v": 1, "datasets": ["impressions", "conversions"], "where": list(where),
            "group_by": list(group_by), "select": [{"fn": f, "arg": a, "as": n} for f, a, n in select]}
    return plan if window is None else {**plan, "window": window}


def _bound(column: str, op: str, value: int) -> dict:
    return {"column": column, "op": op, "values": [value]}


WEEK = {"column": "conversions.ts", "trunc": "week", "as": "week"}
GOLDEN = {
    "the spec's attribution example (last touch by default)": (
        """SELECT i.campaign, DATE_TRUNC('week', c.ts) AS week,
                  COUNT(DISTINCT person) AS converters, SUM(c.value) AS revenue
           FROM impressions i JOIN conversions c
                ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY
           WHERE i.region IN ('north', 'south') AND i.ts >= DATE '2026-10-01'
           GROUP BY i.campaign, week""",
        _plan(where=[{"column": "impressions.region", "op": "in", "values": ["north", "south"]},
                     _bound("impressions.ts", "ge", OCT1)],
              group_by=["impressions.campaign", WEEK],
              select=[("count_distinct", "person", "converters"), ("sum", "conversions.value", "revenue")],
              window=WINDOW)),
    "FIRST_TOUCH, INTERVAL 7 DAY, a person equality too, GROUP BY positions": (
        f"SELECT i.campaign, DATE_TRUNC('week', c.ts) AS week, COUNT(*) AS conversions {JOIN} "
        "ON FIRST_TOUCH(c.ts BETWEEN i.ts AND i.ts + INTERVAL 7 DAY) AND i.person = c.person GROUP BY 1, 2",
        _plan(group_by=["impressions.campaign", WEEK], select=[("count", "conversions", "conversions")],
              window={**WINDOW, "model": "first_touch"})),
    "LAST_TOUCH spelled out, INTERVAL '14 days', the person equality first": (
        f"SELECT COUNT(DISTINCT person) AS users {JOIN} "
        "ON i.person = c.person AND LAST_TOUCH((c.ts BETWEEN i.ts AND i.ts + INTERVAL '14 days'))",
        _plan(select=[("count_distinct", "person", "users")], window={**WINDOW, "max_days": 14})),
    "day and month buckets by alias; GROUP BY order is plan order": (
        f"SELECT DATE_TRUNC('day', i.ts) AS day, COUNT(i.*) AS imps {JOIN} GROUP BY day, i.campaign",
        _plan(group_by=[{"column": "impressions.ts", "trunc": "day", "as": "day"}, "impressions.campaign"],
              select=[("count", "impressions", "imps")])),
    "a bucket written out again in GROUP BY; upper-case unit": (
        f"SELECT DATE_TRUNC('MONTH', c.ts) AS month, SUM(c.value) AS revenue {JOIN} "
        "GROUP BY DATE_TRUNC('MONTH', c.ts)",
        _plan(group_by=[{"column": "conversions.ts", "trunc": "month", "as": "month"}],
              select=[("sum", "conversions.value", "revenue")])),
    "all four comparisons, either side; TIMESTAMP with Z, with an offset, without a zone": (
        f"{N} WHERE c.ts > TIMESTAMP '2026-10-01T00:00:00Z' "
        "AND TIMESTAMP '2026-10-01T12:00:00+02:00' <= i.ts AND c.ts < '2026-11-01' "
        "AND '2026-12-01 06:30:00' > i.ts",
        _plan(where=[_bound("conversions.ts", "gt", OCT1), _bound("impressions.ts", "ge", OCT1 + 10 * 3600),
                     _bound("conversions.ts", "lt", _unix(2026, 11, 1)),
                     _bound("impressions.ts", "lt", _unix(2026, 12, 1, 6, 30))],
              select=[("count", "conversions", "n")])),
    "BETWEEN two dates is ge and le (the end date's midnight)": (
        f"{N} WHERE c.ts BETWEEN DATE '2026-10-01' AND '2026-10-31'",
        _plan(where=[_bound("conversions.ts", "ge", OCT1),
                     _bound("conversions.ts", "le", _unix(2026, 10, 31))],
              select=[("count", "conversions", "n")])),
    "lift: COUNT(DISTINCT i.person) counts all of impressions' persons in the arm": (
        f"SELECT i.arm, COUNT(DISTINCT i.person) AS exposed, COUNT(DISTINCT person) AS converters {JOIN} "
        "GROUP BY i.arm",
        _plan(group_by=["impressions.arm"], select=[("count_distinct", "impressions.person", "exposed"),
                                                    ("count_distinct", "person", "converters")])),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_time_plan(name: str) -> None:
    sql, expected = GOLDEN[name]
    query = compile_query(sql, POLICY, "advertiser")
    assert query.wire == expected
    assert query.check == check_plan(POLICY, query.plan, "advertiser")


def test_output_columns_of_buckets_and_lift() -> None:
    plan = compile_plan(f"SELECT DATE_TRUNC('week', c.ts) AS week, COUNT(c.*) AS n {JOIN} GROUP BY week",
                        POLICY)
    assert output_columns(plan) == ["week", "n", "persons"]
    lift = compile_query(f"SELECT i.arm, COUNT(DISTINCT i.person) AS exposed {JOIN} GROUP BY 1", POLICY,
                         "advertiser")
    assert lift.columns == ["arm", "exposed", "persons"]  # the release gate is still appended
    assert [s.name for s in lift.check.statistics] == ["persons", "persons:impressions"]


_W = "ON c.ts BETWEEN i.ts AND i.ts + INTERVAL"
REFUSED = {
    "a window in hours": (f"{N} {_W} '7' HOUR", ["INTERVAL '7' HOUR", "whole number of days"]),
    "a window in weeks": (f"{N} {_W} '1 week'", ["WEEK", "days"]),
    "a fractional window": (f"{N} {_W} '1.5' DAY", ["1.5 days"]),
    "NOT BETWEEN in ON": (f"{N} ON c.ts NOT BETWEEN i.ts AND i.ts + INTERVAL '7' DAY",
                          ["join condition", "line 1, column 65"]),
    "another upper bound": (f"{N} ON c.ts BETWEEN i.ts AND c.ts + INTERVAL '7' DAY",
                            ["upper bound", "impressions.ts + INTERVAL"]),
    "an upper bound without an interval": (f"{N} ON c.ts BETWEEN i.ts AND i.ts",
                                           ["upper bound"]),
    "a window on dimensions": (
        f"{N} ON c.region BETWEEN i.ts AND i.ts + INTERVAL '7' DAY",
        ["conversions.region in a time window", "not a timestamp"]),
    "a window within one dataset": (f"{N} ON i.ts BETWEEN i.ts AND i.ts + INTERVAL "
                                    "'7' DAY", ["within one dataset"]),
    "two windows": (f"{N} {_W} '7' DAY AND c.ts BETWEEN i.ts AND i.ts + INTERVAL "
                    "'3' DAY", ["second time window"]),
    "ANY_TOUCH": (f"{N} ON ANY_TOUCH(c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY)",
                  ["join condition", "ANY_TOUCH"]),
    "a window in WHERE": (f"{N} WHERE c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY",
                          ["time window in WHERE", "ON"]),
    "two columns compared": (f"{N} WHERE c.ts >= i.ts", ["comparing two columns"]),
    "= on a timestamp": (f"{N} WHERE c.ts = '2026-10-01'",
                         ["= on the timestamp conversions.ts", ">="]),
    "IN on a timestamp": (f"{N} WHERE c.ts IN ('2026-10-01')", ["IN on the timestamp"]),
    "a comparison on a dimension": (f"{N} WHERE i.campaign >= 'a'",
                                    [">= on impressions.campaign", "not a timestamp"]),
    "a number as a time": (f"{N} WHERE c.ts >= 1790000000",
                           ["the literal 1790000000 as a time", "DATE '"]),
    "a bad date": (f"{N} WHERE c.ts >= DATE '2026-13-01'", ["'2026-13-01'", "date"]),
    "a date-time as a DATE": (f"{N} WHERE c.ts >= DATE '2026-10-01T05:00:00'",
                              ["YYYY-MM-DD"]),
    "fractional seconds": (f"{N} WHERE c.ts >= TIMESTAMP '2026-10-01T00:00:00.5Z'",
                           ["fractional seconds"]),
    "an INTERVAL as a time": (f"{N} WHERE c.ts >= DATE '2026-10-01' + INTERVAL '1' DAY",
                              ["arithmetic (+) as a time"]),
    "DATE_TRUNC to a quarter": (f"SELECT DATE_TRUNC('quarter', c.ts) AS q, COUNT(c.*) AS n {JOIN} GROUP BY q",
                                ["DATE_TRUNC to 'QUARTER'", "'day', 'week', 'month'"]),
    "DATE_TRUNC of a dimension": (f"SELECT DATE_TRUNC('day', c.region) AS d, COUNT(c.*) AS n {JOIN} "
                                  "GROUP BY d",
                                  ["DATE_TRUNC of conversions.region"]),
    "a bucket without AS": (f"SELECT DATE_TRUNC('day', c.ts), COUNT(c.*) AS n {JOIN} GROUP BY 1",
                            ["time bucket without AS"]),
    "a bucket only in GROUP BY": (f"{N} GROUP BY DATE_TRUNC('day', c.ts)",
                                  ["time bucket without AS"]),
    "a bucket outside GROUP BY": (f"SELECT DATE_TRUNC('day', c.ts) AS d, COUNT(c.*) AS n {JOIN}",
                                  ["outside GROUP BY"]),
    "a bucket under another name": (
        f"SELECT DATE_TRUNC('day', c.ts) AS d, DATE_TRUNC('day', c.ts) AS e, COUNT(c.*) AS n {JOIN} "
        "GROUP BY d",
        ["AS e outside GROUP BY"]),
    "GROUP BY a raw timestamp": (f"{N} GROUP BY c.ts",
                                 ["GROUP BY the timestamp conversions.ts", "DATE_TRUNC"]),
    "a raw timestamp in SELECT": (f"SELECT c.ts, COUNT(c.*) AS n {JOIN}",
                                  ["timestamp conversions.ts in SELECT"]),
    "the same bucket twice": (
        f"SELECT DATE_TRUNC('day', c.ts) AS d, COUNT(c.*) AS n {JOIN} GROUP BY d, DATE_TRUNC('day', c.ts)",
        ["twice"]),
    "a bucket called persons": (f"SELECT DATE_TRUNC('day', c.ts) AS persons, COUNT(c.*) AS n {JOIN} "
                                "GROUP BY 1",
                                ["persons", "reserved"]),
    "an unqualified ts is ambiguous": (f"{N} WHERE ts >= '2026-10-01'", ["ambiguous"]),
    "COUNT(DISTINCT i.person) AS persons": (f"SELECT COUNT(DISTINCT i.person) AS persons {JOIN}",
                                            ["reserved"]),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_time_construct_is_named(name: str) -> None:
    sql, words = REFUSED[name]
    with pytest.raises(InvalidInput) as refused:
        compile_query(sql, POLICY, "advertiser")
    for word in words:
        assert word in refused.value.message, (word, refused.value.message)


OUT_OF_RULES = {
    "a window longer than max_window_days": (f"{N} {_W} '15' DAY",
                                             "JOIN ON conversions.ts BETWEEN impressions.ts AND +15 days: "
                                             "the rules allow windows of at most 14 days"),
    "an attributed query counting impressions": (f"SELECT COUNT(i.*) AS n {JOIN} {_W} '7' DAY",
                                                 "SELECT COUNT(impressions): an attributed query counts"),
    "the exposed of a lift with a window": (f"SELECT COUNT(DISTINCT i.person) AS e {JOIN} {_W} '7' DAY",
                                            "SELECT COUNT_DISTINCT(impressions.person)"),
    "the exposed of a lift grouped by the other dataset": (
        f"SELECT COUNT(DISTINCT i.person) AS e {JOIN} GROUP BY c.channel", "SELECT COUNT_DISTINCT"),
}


@pytest.mark.parametrize("name", OUT_OF_RULES)
def test_out_of_rule_time_query_gets_the_enclaves_message(name: str) -> None:
    sql, message = OUT_OF_RULES[name]
    with pytest.raises(PolicyViolation) as refused:
        compile_query(sql, POLICY, "advertiser")
    assert refused.value.message.startswith(message), refused.value.message
    with pytest.raises(PolicyViolation) as direct:
        check_plan(POLICY, compile_plan(sql, POLICY), "advertiser")
    assert direct.value.message == refused.value.message


def test_explain_names_the_window_rule_and_the_exposed_statistic() -> None:
    from cleanroom.sql.explain import explain, render_explain

    sql = (f"SELECT i.campaign, DATE_TRUNC('week', c.ts) AS week, COUNT(DISTINCT person) AS users {JOIN} "
           "ON FIRST_TOUCH(c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY) GROUP BY 1, 2")
    report = explain(compile_query(sql, POLICY, "advertiser"), POLICY)
    assert report["rows"] == 8 * 18  # campaigns x the weeks of Sept-Dec 2026 (Monday to Monday)
    lines = report["rules"]["impressions"]
    assert "max_window_days 14: 7-day window impressions.ts -> conversions.ts (first touch)" in lines
    assert any("DATE_TRUNC('week', conversions.ts)" in line for line in report["rules"]["conversions"])
    lift = f"SELECT i.arm, COUNT(DISTINCT i.person) AS exposed {JOIN} GROUP BY i.arm"
    report = explain(compile_query(lift, POLICY, "advertiser"), POLICY)
    exposed = next(c for c in report["output"] if c["column"] == "exposed")
    assert exposed["statistic"] == "persons:impressions" and exposed["noise_std"] > 0
    assert [c["column"] for c in report["output"]] == ["arm", "exposed", "persons"]
    assert "persons:impressions" in render_explain(report)


def test_conversion_lag_compiles_to_a_lag_key_of_the_window() -> None:
    sql = ("SELECT DATEDIFF('day', i.ts, c.ts) AS lag, COUNT(*) AS conversions "
           "FROM impressions i JOIN conversions c ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY "
           "GROUP BY lag")
    plan = compile_plan(sql, POLICY)
    assert plan.to_wire()["group_by"] == [{"column": "conversions.ts", "trunc": "lag_days", "as": "lag"}]
    assert output_columns(plan) == ["lag", "conversions", "persons"]
    assert check_plan(POLICY, plan, "advertiser").n_cohorts == 8  # 0..7 days


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT DATEDIFF('hour', i.ts, c.ts) AS lag, COUNT(*) AS n FROM impressions i JOIN conversions c "
     "ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY GROUP BY lag", "other units than 'day'"),
    ("SELECT DATEDIFF('day', c.ts, i.ts) AS lag, COUNT(*) AS n FROM impressions i JOIN conversions c "
     "ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY GROUP BY lag", "the window's later timestamp"),
    ("SELECT DATEDIFF('day', i.ts, c.ts) AS lag, COUNT(*) AS n FROM impressions i JOIN conversions c "
     "GROUP BY lag", "a lag is of the window's later timestamp"),
])
def test_a_lag_outside_an_attribution_window_is_refused(sql: str, message: str) -> None:
    with pytest.raises((InvalidInput, PolicyViolation), match=message):
        compile_query(sql, POLICY, "advertiser")
