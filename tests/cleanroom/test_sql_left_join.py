"""SQL -> plan for ``LEFT JOIN`` and a template's ``GROUP BY :param`` (``cleanroom.sql``).

The enclave's rules for both are ``check_plan``'s (tests/enclave/test_plan_left_join.py,
test_template_group_params.py); here: the compiler writes the plan those tests run, refuses
every other join kind by name, and keeps parameters to templates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cleanroom.sql import compile_query
from cleanroom.sql.compiler import compile_plan, compile_template
from protocol.errors import InvalidInput, PolicyViolation
from protocol.policy import parse_policy
from protocol.query_plan import check_plan, parse_plan
from tests.support.sql_policy import sql_policy_text, sql_time_policy_text

ROOT = Path(__file__).resolve().parents[2]
POLICY = parse_policy(sql_policy_text((ROOT / "policies" / "advertiser-publisher.toml").read_text()).encode())
CONVERTERS = ("SELECT i.campaign, COUNT(DISTINCT person) AS converters, COUNT(c.*) AS conversions, "
              "SUM(c.value) AS revenue FROM conversions c {join} impressions i{on} GROUP BY i.campaign")
CANONICAL = {"v": 1, "datasets": ["conversions", "impressions"], "join": "left", "where": [],
             "group_by": ["impressions.campaign"],
             "select": [{"fn": "count_distinct", "arg": "person", "as": "converters"},
                        {"fn": "count", "arg": "conversions", "as": "conversions"},
                        {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}


@pytest.mark.parametrize(("join", "on"), [("LEFT JOIN", ""), ("LEFT OUTER JOIN", ""),
                                          ("left outer join", " ON c.person = i.person"),
                                          ("LEFT JOIN", " ON i.person = c.person")])
def test_left_join_compiles_to_the_kept_dataset_first(join: str, on: str) -> None:
    query = compile_query(CONVERTERS.format(join=join, on=on), POLICY, "advertiser")
    assert query.wire == CANONICAL
    assert query.plan.left_join and query.plan.datasets[0] == "conversions"
    campaigns = len(POLICY.dataset("impressions").dimension("campaign").values)  # type: ignore[union-attr]
    assert query.check.n_cohorts == campaigns + 1  # the unexposed: one more, nil-keyed row


def test_an_inner_join_plan_has_no_join_field() -> None:
    inner = compile_query(CONVERTERS.format(join="JOIN", on=""), POLICY, "advertiser")
    assert "join" not in inner.wire and {**inner.wire, "join": "left"} == CANONICAL


def test_left_join_keeps_where_and_an_ungrouped_count() -> None:
    query = compile_query("SELECT COUNT(DISTINCT person) AS converters FROM conversions LEFT JOIN "
                          "impressions WHERE impressions.region IN ('north')", POLICY, "publisher")
    assert query.wire["join"] == "left" and query.wire["group_by"] == []
    assert query.wire["where"] == [{"column": "impressions.region", "op": "in", "values": ["north"]}]
    assert query.check.n_cohorts == 1


@pytest.mark.parametrize(("sql", "message"), [
    # grouped by the kept dataset's own column: COUNT(DISTINCT c.person) with JOIN says that
    ("SELECT c.channel, COUNT(DISTINCT person) AS n FROM conversions c LEFT JOIN impressions i "
     "GROUP BY c.channel", "FROM conversions LEFT JOIN impressions: GROUP BY the columns of impressions"),
    ("SELECT COUNT(DISTINCT i.person) AS n FROM conversions c LEFT JOIN impressions i",
     "SELECT COUNT_DISTINCT(impressions.person)"),
    ("SELECT i.campaign, HISTOGRAM(c.*, 3) AS f FROM conversions c LEFT JOIN impressions i "
     "GROUP BY i.campaign",
     "SELECT HISTOGRAM(conversions)"),
])
def test_the_enclaves_left_join_rules_refuse_locally_with_its_message(sql: str, message: str) -> None:
    with pytest.raises(PolicyViolation) as local:
        compile_query(sql, POLICY, "advertiser")
    assert local.value.message.startswith(message)
    with pytest.raises(PolicyViolation) as enclave:
        check_plan(POLICY, compile_plan(sql, POLICY), "advertiser")
    assert enclave.value.message == local.value.message


def test_a_left_join_has_no_time_window() -> None:
    policy = parse_policy(sql_time_policy_text((ROOT / "policies" / "advertiser-publisher.toml").read_text())
                          .encode())
    sql = ("SELECT i.campaign, COUNT(DISTINCT person) AS n FROM conversions c LEFT JOIN impressions i "
           "ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY GROUP BY i.campaign")
    plan = compile_plan(sql, policy)
    assert plan.left_join and plan.window is not None  # the compiler writes what the SQL says ...
    with pytest.raises(PolicyViolation, match="FROM conversions LEFT JOIN impressions: a time window"):
        compile_query(sql, policy, "advertiser")  # ... and the enclave's rule refuses it, here too


@pytest.mark.parametrize(("join", "named"), [
    ("RIGHT JOIN", "RIGHT JOIN"), ("RIGHT OUTER JOIN", "RIGHT OUTER JOIN"), ("FULL JOIN", "FULL JOIN"),
    ("FULL OUTER JOIN", "FULL OUTER JOIN"), ("CROSS JOIN", "CROSS JOIN"), ("OUTER JOIN", "OUTER JOIN"),
    ("LEFT SEMI JOIN", "LEFT SEMI JOIN"), ("LEFT ANTI JOIN", "LEFT ANTI JOIN"),
    ("NATURAL LEFT JOIN", "NATURAL JOIN"),
])
def test_other_join_kinds_are_refused_naming_what_is_supported(join: str, named: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        compile_plan(f"SELECT COUNT(c.*) AS n FROM conversions c {join} impressions i", POLICY)
    message = refused.value.message
    assert message.startswith(f"{named} at line 1") and "is not supported" in message
    assert "LEFT JOIN" in message and "JOIN b" in message
    if join.startswith("RIGHT"):
        assert "FROM b LEFT JOIN a" in message  # the way to write it


SEGMENTS = ("SELECT :by, COUNT(DISTINCT person) AS users, COUNT(i.*) AS impressions "
            "FROM impressions i JOIN conversions c GROUP BY :by")


def test_group_by_a_parameter_compiles_to_a_param_slot() -> None:
    plan, params = compile_template(SEGMENTS, POLICY)
    assert plan["group_by"] == [{"param": "by"}] and params == {"by": "GROUP BY"}
    assert plan["select"] == [{"fn": "count_distinct", "arg": "person", "as": "users"},
                              {"fn": "count", "arg": "impressions", "as": "impressions"}]
    # Filled in as the enclave does, the plan is an ordinary one.
    assert parse_plan({**plan, "group_by": ["impressions.region"]}).output_columns == [
        "region", "users", "impressions"]


def test_group_parameters_mix_with_columns_where_parameters_and_positions() -> None:
    plan, params = compile_template(
        "SELECT i.region, :by, COUNT(DISTINCT person) AS users, COUNT(*) AS imps FROM conversions c "
        "LEFT JOIN impressions i WHERE i.campaign IN (:campaigns) GROUP BY 1, 2", POLICY)
    assert plan["group_by"] == ["impressions.region", {"param": "by"}] and plan["join"] == "left"
    assert plan["where"] == [{"column": "impressions.campaign", "op": "in", "values": {"param": "campaigns"}}]
    assert params == {"campaigns": "impressions.campaign", "by": "GROUP BY"}
    # COUNT(*) counts the GROUP BY dataset: the named column's, whatever the request adds
    assert plan["select"][1] == {"fn": "count", "arg": "impressions", "as": "imps"}
    _, unselected = compile_template(SEGMENTS.replace("SELECT :by, ", "SELECT "), POLICY)
    assert unselected == {"by": "GROUP BY"}  # selecting the chosen columns is optional, as for columns


@pytest.mark.parametrize(("sql", "words"), [
    (SEGMENTS.replace("GROUP BY :by", "GROUP BY i.campaign"), ["SELECT :by", "GROUP BY :by"]),
    (SEGMENTS.replace("SELECT :by,", "SELECT :by AS seg,"), ["renaming :by", "their own names"]),
    (SEGMENTS.replace("GROUP BY :by", "GROUP BY :by, :by"), ["GROUP BY names :by twice"]),
    (SEGMENTS.replace("JOIN conversions c", "JOIN conversions c WHERE i.region IN (:by)"),
     ["GROUP BY :by", "already the values of impressions.region"]),
    (SEGMENTS.replace("COUNT(i.*)", "COUNT(*)"), ["COUNT(*)", "leaves to the request", "COUNT(a.*)"]),
    (SEGMENTS.replace(":by", "?"), ["a parameter without a name", ":name"]),
])
def test_misused_group_parameters_are_refused_by_name(sql: str, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as refused:
        compile_template(sql, POLICY)
    for word in words:
        assert word in refused.value.message, (word, refused.value.message)


@pytest.mark.parametrize("sql", [SEGMENTS, SEGMENTS.replace("SELECT :by, ", "SELECT "),
                                 "SELECT COUNT(c.*) AS n FROM impressions i JOIN conversions c "
                                 "WHERE i.region IN (:regions)"])
def test_parameters_belong_to_templates(sql: str) -> None:
    with pytest.raises(InvalidInput, match="parameters belong to a policy template's SQL"):
        compile_plan(sql, POLICY)
