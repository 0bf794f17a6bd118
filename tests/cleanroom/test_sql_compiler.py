"""SQL -> plan (``cleanroom.sql``): golden plans for the dialect, one refusal per construct outside it.

Policy: the example policy with dimensions on conversions (``tests/support/sql_policy.py``), so
both datasets can be grouped and filtered and an unqualified ``region`` is ambiguous.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cleanroom.sql import compile_query, output_columns
from cleanroom.sql.compiler import compile_plan
from protocol.errors import InvalidInput, PolicyViolation
from protocol.policy import parse_policy
from protocol.query_plan import check_plan
from tests.support.sql_policy import sql_policy_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies" / "advertiser-publisher.toml"
POLICY = parse_policy(sql_policy_text(EXAMPLE.read_text()).encode())
JOIN = "FROM impressions i JOIN conversions c"
ALL = ["impressions", "conversions"]


def _plan(datasets=ALL, where=(), group_by=(), select=()) -> dict:
    return {"v": 1, "datasets": list(datasets), "where": list(where), "group_by": list(group_by),
            "select": [{"fn": f, "arg": a, "as": n} for f, a, n in select]}


GOLDEN = {
    "the spec's example": (
        """SELECT i.campaign,
                  COUNT(DISTINCT person)  AS converters,
                  SUM(c.value)            AS revenue,
                  AVG(c.value)            AS order_value
           FROM impressions i JOIN conversions c ON i.person = c.person
           WHERE i.region IN ('north', 'south') AND i.age_band <> '65+'
           GROUP BY i.campaign""",
        _plan(where=[{"column": "impressions.region", "op": "in", "values": ["north", "south"]},
                     {"column": "impressions.age_band", "op": "not_in", "values": ["65+"]}],
              group_by=["impressions.campaign"],
              select=[("count_distinct", "person", "converters"), ("sum", "conversions.value", "revenue"),
                      ("avg", "conversions.value", "order_value")])),
    "no GROUP BY, no ON, no aliases": (
        "SELECT COUNT(DISTINCT person) AS users FROM impressions JOIN conversions",
        _plan(select=[("count_distinct", "person", "users")])),
    "FROM order is kept; ON either way round; INNER JOIN": (
        "SELECT COUNT(c.*) AS n FROM conversions c INNER JOIN impressions i ON c.person = i.person",
        _plan(datasets=["conversions", "impressions"], select=[("count", "conversions", "n")])),
    "COUNT(*) counts the group-by dataset; COUNT(c.value) and COUNT(i.*) the named one": (
        f"SELECT campaign, COUNT(*) AS imps, COUNT(c.value) AS convs, COUNT(i.*) AS again {JOIN} "
        "GROUP BY campaign",
        _plan(group_by=["impressions.campaign"],
              select=[("count", "impressions", "imps"), ("count", "conversions", "convs"),
                      ("count", "impressions", "again")])),
    "COUNT(*) of conversions' rows when grouping by its channel": (
        f"SELECT c.channel, COUNT(*) AS conversions, SUM(value) AS revenue {JOIN} GROUP BY c.channel",
        _plan(group_by=["conversions.channel"],
              select=[("count", "conversions", "conversions"), ("sum", "conversions.value", "revenue")])),
    "=, !=, NOT IN, a literal on the left, parentheses; values sorted and deduplicated": (
        f"SELECT COUNT(DISTINCT person) AS users {JOIN} "
        "WHERE (campaign = 'loyalty' AND 'web' != c.channel) "
        "AND i.region NOT IN ('west', 'east', 'west')",
        _plan(where=[{"column": "impressions.campaign", "op": "in", "values": ["loyalty"]},
                     {"column": "conversions.channel", "op": "not_in", "values": ["web"]},
                     {"column": "impressions.region", "op": "not_in", "values": ["east", "west"]}],
              select=[("count_distinct", "person", "users")])),
    "GROUP BY positions and select-list columns; plan order is GROUP BY order": (
        f"SELECT i.age_band, campaign, COUNT(DISTINCT person) AS users {JOIN} GROUP BY 2, 1",
        _plan(group_by=["impressions.campaign", "impressions.age_band"],
              select=[("count_distinct", "person", "users")])),
    "group-by columns need not be selected; the dataset's own name qualifies too": (
        f"SELECT SUM(conversions.value) AS revenue {JOIN} GROUP BY impressions.region",
        _plan(group_by=["impressions.region"], select=[("sum", "conversions.value", "revenue")])),
    "keywords and unquoted names in any case": (
        "select Campaign, count(distinct PERSON) as Users from IMPRESSIONS i join CONVERSIONS c "
        "where I.REGION in ('north') group by CAMPAIGN",
        _plan(where=[{"column": "impressions.region", "op": "in", "values": ["north"]}],
              group_by=["impressions.campaign"], select=[("count_distinct", "person", "users")])),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_plan(name: str) -> None:
    sql, expected = GOLDEN[name]
    query = compile_query(sql, POLICY, "advertiser")
    assert query.wire == expected
    assert query.sql == sql
    assert query.check == check_plan(POLICY, query.plan, "advertiser")


def test_output_columns_follow_the_spec() -> None:
    plan = compile_plan(f"SELECT region, COUNT(c.*) AS n {JOIN} GROUP BY region, i.campaign"
                        .replace("region,", "i.region,"), POLICY)
    assert output_columns(plan) == ["region", "campaign", "n", "persons"]
    plan = compile_plan(f"SELECT COUNT(DISTINCT person) AS users {JOIN}", POLICY)
    assert output_columns(plan) == ["users"]


# (sql, the words the message must contain: the construct, and where it is when sqlglot knows)
REFUSED = {
    "OR": (f"SELECT COUNT(c.*) AS n {JOIN}\nWHERE campaign = 'loyalty' OR campaign = 'clearance'",
           ["OR", "line 2, column 7", "AND"]),
    "NOT of a comparison": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE NOT campaign = 'loyalty'", ["NOT"]),
    "LIKE": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE campaign LIKE 'l%'", ["LIKE"]),
    "BETWEEN": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE value BETWEEN 1 AND 2", ["BETWEEN"]),
    "a comparison": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE value > 10", [">"]),
    "IS NULL": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE campaign IS NULL", ["IS"]),
    "a number as a value": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE campaign = 3",
                            ["the literal 3 as a value"]),
    "a double-quoted value": (f'SELECT COUNT(c.*) AS n {JOIN} WHERE campaign = "loyalty"',
                              ['"loyalty" as a value', "single quotes"]),
    "IN with a subquery": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE campaign IN (SELECT 1)", ["subquery"]),
    "a filter on person": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE person = 'x'", ["filter on person"]),
    "RIGHT JOIN": ("SELECT COUNT(c.*) AS n FROM impressions i RIGHT JOIN conversions c", ["RIGHT JOIN",
                                                                                           "LEFT JOIN"]),
    "CROSS JOIN": ("SELECT COUNT(c.*) AS n FROM impressions i CROSS JOIN conversions c", ["CROSS JOIN"]),
    "NATURAL JOIN": ("SELECT COUNT(c.*) AS n FROM impressions i NATURAL JOIN conversions c", ["NATURAL"]),
    "USING": ("SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c USING (person)", ["USING"]),
    "a comma join": ("SELECT COUNT(c.*) AS n FROM impressions i, conversions c", ["comma join"]),
    "another join condition": (
        "SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c ON i.region = c.region",
        ["join condition", "a.person = b.person"]),
    "a person join plus more": (
        "SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c ON i.person = c.person AND "
        "i.region = c.region", ["join condition"]),
    "three datasets": ("SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c JOIN impressions j",
                       ["more than two datasets"]),
    "a self-join": ("SELECT COUNT(i.*) AS n FROM impressions i JOIN impressions j", ["with itself"]),
    "a subquery in FROM": ("SELECT COUNT(*) AS n FROM (SELECT 1) s JOIN conversions c", ["subquery"]),
    "a schema-qualified table": ("SELECT COUNT(c.*) AS n FROM db.impressions i JOIN conversions c",
                                 ["db.impressions"]),
    "WITH": (f"WITH q AS (SELECT 1) SELECT COUNT(c.*) AS n {JOIN}", ["WITH"]),
    "UNION": (f"SELECT COUNT(c.*) AS n {JOIN} UNION SELECT COUNT(c.*) AS n {JOIN}", ["UNION"]),
    "not a SELECT": ("DELETE FROM impressions", ["DELETE"]),
    "two statements": (f"SELECT COUNT(c.*) AS n {JOIN}; SELECT 1", ["one SELECT", "2"]),
    "HAVING": (f"SELECT campaign, COUNT(c.*) AS n {JOIN} GROUP BY campaign HAVING COUNT(c.*) > 5",
               ["HAVING"]),
    "ORDER BY": (f"SELECT campaign, COUNT(c.*) AS n {JOIN} GROUP BY campaign ORDER BY n", ["ORDER BY"]),
    "LIMIT": (f"SELECT campaign, COUNT(c.*) AS n {JOIN} GROUP BY campaign LIMIT 3", ["LIMIT"]),
    "SELECT DISTINCT": (f"SELECT DISTINCT campaign, COUNT(c.*) AS n {JOIN} GROUP BY campaign",
                        ["SELECT DISTINCT"]),
    "SELECT *": (f"SELECT * {JOIN}", ["SELECT *", "column 8"]),
    "MIN": (f"SELECT MIN(c.value) AS low {JOIN}", ["function MIN"]),
    "an unknown function": (f"SELECT FOO(c.value) AS x {JOIN}", ["function FOO"]),
    "arithmetic": (f"SELECT SUM(c.value) * 2 AS x {JOIN}", ["arithmetic (*)"]),
    "a window function": (f"SELECT SUM(c.value) OVER () AS x {JOIN}", ["window function"]),
    "FILTER": (f"SELECT COUNT(c.*) FILTER (WHERE channel = 'web') AS x {JOIN}", ["FILTER"]),
    "CASE": (f"SELECT SUM(CASE WHEN channel = 'web' THEN value END) AS x {JOIN}", ["SUM of CASE"]),
    "SUM of a dimension": (f"SELECT SUM(i.campaign) AS x {JOIN}", ["SUM(impressions.campaign)",
                                                                  "not a metric"]),
    "SUM(DISTINCT)": (f"SELECT SUM(DISTINCT c.value) AS x {JOIN}", ["SUM(DISTINCT"]),
    "COUNT(DISTINCT) of a column": (f"SELECT COUNT(DISTINCT c.value) AS x {JOIN}",
                                    ["COUNT(DISTINCT c.value)", "persons only"]),
    "COUNT(person)": (f"SELECT COUNT(person) AS x {JOIN}", ["COUNT(person)", "COUNT(DISTINCT person)"]),
    "COUNT(1)": (f"SELECT COUNT(1) AS x {JOIN}", ["COUNT(1)"]),
    "COUNT(*) without GROUP BY": (f"SELECT COUNT(*) AS x {JOIN}", ["COUNT(*)", "COUNT(a.*)"]),
    "an aggregate without AS": (f"SELECT COUNT(c.*) {JOIN}", ["without AS"]),
    "a column outside GROUP BY": (f"SELECT campaign, COUNT(c.*) AS n {JOIN}", ["outside an aggregate"]),
    "a renamed group-by column": (f"SELECT campaign AS cmp, COUNT(c.*) AS n {JOIN} GROUP BY campaign",
                                  ["renaming a group-by column"]),
    "no aggregate": (f"SELECT campaign {JOIN} GROUP BY campaign", ["without aggregates"]),
    "a literal in SELECT": (f"SELECT 1 AS one, COUNT(c.*) AS n {JOIN}", ["the literal 1"]),
    "GROUP BY a metric": (f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY value", ["GROUP BY conversions.value"]),
    "GROUP BY an aggregate position": (f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY 1", ["GROUP BY"]),
    "GROUP BY a position past the list": (f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY 3", ["GROUP BY 3"]),
    "GROUP BY an expression": (f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY LOWER(campaign)", ["GROUP BY"]),
    "GROUP BY ROLLUP": (f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY ROLLUP (campaign)", ["ROLLUP"]),
    "GROUP BY ALL": (f"SELECT campaign, COUNT(c.*) AS n {JOIN} GROUP BY ALL", ["GROUP BY ALL"]),
    "GROUP BY a column twice": (f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY campaign, i.campaign", ["twice"]),
    "an ambiguous column": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE region = 'north'",
                            ["'region'", "ambiguous", "impressions", "conversions"]),
    "an unknown column": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE colour = 'red'", ["'colour'"]),
    "an unknown alias": (f"SELECT COUNT(x.*) AS n {JOIN}", ["'x'", "alias"]),
    "a column the dataset lacks": (f"SELECT SUM(i.value) AS n {JOIN}", ["impressions has no column 'value'"]),
    "an upper-case quoted name": (f'SELECT COUNT(c.*) AS "N" {JOIN}', ["AS 'N'"]),
    "a name used twice": (f"SELECT campaign, COUNT(c.*) AS campaign {JOIN} GROUP BY campaign",
                          ["already has a column"]),
    "persons for another aggregate": (f"SELECT COUNT(c.*) AS persons {JOIN}", ["reserved"]),
    "a syntax error": ("SELECT FROM WHERE", ["syntax error", "line 1, column 17", "'WHERE'"]),
    "an unterminated string": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE campaign = 'x", ["syntax error"]),
    "an empty query": ("   ", ["empty"]),
    "a query longer than a request carries": (f"SELECT COUNT(c.*) AS n {JOIN} " + " " * 16_384,
                                              ["16,384 bytes"]),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_construct_is_named(name: str) -> None:
    sql, words = REFUSED[name]
    with pytest.raises(InvalidInput) as refused:
        compile_query(sql, POLICY, "advertiser")
    for word in words:
        assert word in refused.value.message, (word, refused.value.message)
    assert "Traceback" not in refused.value.message


# Out of the rules: refused locally with exactly the message check_plan (the enclave) gives.
OUT_OF_RULES = {
    "an undeclared value": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE campaign = 'nope'",
                            "WHERE impressions.campaign: 'nope' is not a declared value"),
    "more group-by columns than max_group_by": (
        f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY campaign, age_band, i.region",
        "GROUP BY: more columns than the rules allow"),
    "group-by columns of two datasets": (f"SELECT COUNT(c.*) AS n {JOIN} GROUP BY campaign, channel",
                                         "GROUP BY: columns must come from one dataset"),
    "one dataset alone": ("SELECT COUNT(c.*) AS n FROM conversions c",
                          "FROM: a query must join exactly the datasets impressions and conversions"),
    "an unknown dataset": ("SELECT COUNT(c.*) AS n FROM impressions i JOIN sales c",
                           "FROM sales: the policy has no such dataset"),
    "a filter on a metric": (f"SELECT COUNT(c.*) AS n {JOIN} WHERE value = '5'",
                             "WHERE conversions.value: "),
}


@pytest.mark.parametrize("name", OUT_OF_RULES)
def test_out_of_rule_query_gets_the_enclaves_message(name: str) -> None:
    sql, message = OUT_OF_RULES[name]
    with pytest.raises(PolicyViolation) as refused:
        compile_query(sql, POLICY, "advertiser")
    # The enclave's words; the lead may extend a rule's explanation after them.
    assert refused.value.message.startswith(message)
    assert refused.value.message == _enclave_message(sql)


def _enclave_message(sql: str) -> str:
    """What check_plan itself says about the compiled plan (the compiler's own FROM check aside)."""
    try:
        plan = compile_plan(sql, POLICY)
    except PolicyViolation as exc:
        return exc.message
    with pytest.raises(PolicyViolation) as direct:
        check_plan(POLICY, plan, "advertiser")
    return direct.value.message


def test_rules_are_per_requester_and_per_dataset() -> None:
    text = sql_policy_text(EXAMPLE.read_text())
    # Only the advertiser may query its conversions; the publisher may not touch them.
    rules = text.split("[datasets.rules]")
    assert len(rules) == 3
    rules[2] = rules[2].replace('requesters = ["advertiser", "publisher"]', 'requesters = ["advertiser"]', 1)
    policy = parse_policy("[datasets.rules]".join(rules).encode())
    sql = f"SELECT COUNT(DISTINCT person) AS users {JOIN}"
    assert compile_query(sql, policy, "advertiser").check.requester == "advertiser"
    with pytest.raises(PolicyViolation) as refused:
        compile_query(sql, policy, "publisher")
    assert refused.value.message == "FROM conversions: party 'publisher' may not query conversions"
    plan = compile_plan(sql, policy)
    with pytest.raises(PolicyViolation) as direct:
        check_plan(policy, plan, "publisher")
    assert direct.value.message == refused.value.message


def test_a_metric_aggregate_the_owner_does_not_allow() -> None:
    text = sql_policy_text(EXAMPLE.read_text()).replace('metrics = { value = ["sum", "avg"] }',
                                                        'metrics = { value = ["sum"] }')
    policy = parse_policy(text.encode())
    compile_query(f"SELECT SUM(c.value) AS s {JOIN}", policy, "advertiser")
    with pytest.raises(PolicyViolation, match=r"SELECT AVG\(conversions.value\): the owner's rule"):
        compile_query(f"SELECT AVG(c.value) AS s {JOIN}", policy, "advertiser")


def test_histogram_compiles_with_its_bucket_columns() -> None:
    policy = parse_policy(EXAMPLE.read_bytes())
    compiled = compile_query("SELECT i.campaign, COUNT(DISTINCT person) AS reach, HISTOGRAM(i.*, 3) AS f "
                             "FROM impressions i JOIN conversions c GROUP BY i.campaign", policy, "publisher")
    assert compiled.wire["select"][1] == {"fn": "histogram", "arg": "impressions", "as": "f", "max": 3}
    assert output_columns(compiled.plan) == ["campaign", "reach", "f_1", "f_2", "f_3_plus"]
    for bad in ("HISTOGRAM(i.*)", "HISTOGRAM(i.*, 1)", "HISTOGRAM(i.campaign, 3)", "HISTOGRAM(i.*, '3')"):
        with pytest.raises(InvalidInput, match="HISTOGRAM"):
            compile_query(f"SELECT i.campaign, {bad} AS f FROM impressions i JOIN conversions c "
                          "GROUP BY i.campaign", policy, "publisher")
