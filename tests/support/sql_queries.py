"""Random SQL queries within the rules of the SQL policy variant, and DuckDB's exact answer to each
(``tests/e2e/test_sql_vs_duckdb.py``; its docstring has the LEFT JOIN reference's argument).

A *spec* is a seeded draw of GROUP BY columns, WHERE predicates, aggregates, aliases and SQL
styles (a LEFT JOIN either way round when asked); ``spec_sql`` writes it as SQL text in a random
style, and ``duckdb_exact`` / ``duckdb_exact_left`` compute its exact per-cohort answer in DuckDB
over the parties' CSV files, without noise or bounding: persons, rows of each dataset and the
sum in cents.
"""

from __future__ import annotations

import random

import duckdb

from tests.support.sql_policy import CHANNELS

__all__ = ["AGE_BANDS", "CAMPAIGNS", "REGIONS", "VALUES", "duckdb_exact", "duckdb_exact_left",
           "random_spec", "spec_sql"]

CAMPAIGNS = ["spring_sale", "summer_run", "trail_launch", "back_to_school", "winter_boots",
             "holiday_gift", "clearance", "loyalty"]
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
REGIONS = ["north", "south", "east", "west", "central"]
VALUES = {("impressions", "campaign"): CAMPAIGNS, ("impressions", "age_band"): AGE_BANDS,
          ("impressions", "region"): REGIONS, ("conversions", "channel"): CHANNELS,
          ("conversions", "region"): REGIONS}


def random_spec(rng: random.Random, left: bool = False) -> dict:
    kept = rng.choice(["conversions", "conversions", "impressions"]) if left else None
    if kept is not None:  # a LEFT JOIN groups by the other dataset's columns, or not at all
        group_ds = rng.choices([_other(kept), None], weights=[5, 1])[0]
    else:
        group_ds = rng.choices(["impressions", "conversions", None], weights=[6, 3, 1])[0]
    group: list[str] = []
    if group_ds is not None:
        columns = [c for (d, c) in VALUES if d == group_ds]
        group = rng.sample(columns, rng.choice([1, 1, 2]))
    where = []
    for _ in range(rng.choice([0, 1, 1, 2])):
        dataset, column = rng.choice(list(VALUES))
        values = VALUES[(dataset, column)]
        op = rng.choice(["=", "<>", "in", "not_in"])
        chosen = rng.sample(values, 1 if op in ("=", "<>") else rng.randint(1, min(3, len(values) - 1)))
        where.append((dataset, column, op, chosen))
    choices = ["distinct", "count_i", "count_c", "sum", "avg"] + (["count_star"] if group else [])
    if kept == "impressions" and group:  # the (none) row has no conversions: AVG is refused there
        choices.remove("avg")
    picked = rng.sample(choices, rng.randint(1, 3))
    if "avg" in picked:  # checked as the released SUM / COUNT of the same noisy vectors
        picked += [a for a in ("sum", "count_c") if a not in picked]
    return {"group_ds": group_ds, "group": group, "where": where, "aggregates": picked,
            "aliases": rng.random() < 0.7, "on": rng.random() < 0.5, "positions": rng.random() < 0.3,
            "select_groups": rng.random() < 0.8, "qualify": rng.random() < 0.5, "kept": kept,
            "outer": rng.random() < 0.5}


def _other(dataset: str) -> str:
    return "conversions" if dataset == "impressions" else "impressions"


def spec_sql(spec: dict) -> str:
    q = {"impressions": "i", "conversions": "c"} if spec["aliases"] else {
        "impressions": "impressions", "conversions": "conversions"}

    def col(dataset: str, column: str) -> str:  # region is in both datasets; others may go unqualified
        return f"{q[dataset]}.{column}" if spec["qualify"] or column == "region" else column

    text = {"distinct": "COUNT(DISTINCT person) AS users", "count_i": f"COUNT({q['impressions']}.*) AS imps",
            "count_c": f"COUNT({col('conversions', 'value')}) AS convs", "count_star": "COUNT(*) AS own_rows",
            "sum": f"SUM({col('conversions', 'value')}) AS revenue",
            "avg": f"AVG({q['conversions']}.value) AS aov"}
    groups = [col(spec["group_ds"], g) for g in spec["group"]]
    select = (groups if spec["select_groups"] else []) + [text[a] for a in spec["aggregates"]]
    first = spec["kept"] or "impressions"
    join = ("LEFT OUTER JOIN" if spec["outer"] else "LEFT JOIN") if spec["kept"] else "JOIN"
    sql = f"SELECT {', '.join(select)}\nFROM {first}" + (f" {q[first]}" if spec["aliases"] else "")
    sql += f" {join} {_other(first)}" + (f" {q[_other(first)]}" if spec["aliases"] else "")
    if spec["on"]:
        sql += f" ON {q['impressions']}.person = {q['conversions']}.person"
    predicates = []
    for dataset, column, op, values in spec["where"]:
        quoted = ", ".join(f"'{v}'" for v in values)
        rendered = {"=": f"= {quoted}", "<>": f"{'<>' if len(quoted) % 2 else '!='} {quoted}",
                    "in": f"IN ({quoted})", "not_in": f"NOT IN ({quoted})"}[op]
        predicates.append(f"{col(dataset, column)} {rendered}")
    if predicates:
        sql += "\nWHERE " + " AND ".join(predicates)
    if groups:
        positions = spec["positions"] and spec["select_groups"]
        by = [str(i + 1) for i in range(len(groups))] if positions else groups
        sql += "\nGROUP BY " + ", ".join(by)
    return sql


_SUMS = {"impressions": "0", "conversions": "CAST(round(value * 100) AS BIGINT)"}


def _filters(spec: dict) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {"impressions": [], "conversions": []}
    for dataset, column, op, values in spec["where"]:
        listed = ", ".join(f"'{v}'" for v in values)
        filters[dataset].append(f"{column} {'NOT IN' if op in ('<>', 'not_in') else 'IN'} ({listed})")
    return filters


def duckdb_exact(db: duckdb.DuckDBPyConnection, spec: dict) -> dict[tuple, dict[str, int]]:
    """DuckDB's exact answer per cohort: persons, rows of each dataset, the sum in cents."""
    filters = _filters(spec)

    def where(dataset: str) -> str:
        return " AND ".join(filters[dataset]) or "TRUE"

    group_ds, group = spec["group_ds"], spec["group"]
    keys = ", ".join(group)
    own = group_ds or "impressions"
    other = "conversions" if own == "impressions" else "impressions"
    cohort = f"{keys}, " if group else ""
    rows = db.execute(f"""
        WITH i AS (SELECT * FROM impressions WHERE {where('impressions')}),
             c AS (SELECT * FROM conversions WHERE {where('conversions')}),
             m AS (SELECT person FROM i INTERSECT SELECT person FROM c),
             g AS (SELECT {cohort} person, COUNT(*) AS n, SUM({_SUMS[own]}) AS s
                   FROM {own[0]} WHERE person IN (SELECT person FROM m) GROUP BY {cohort} person),
             o AS (SELECT person, COUNT(*) AS n, SUM({_SUMS[other]}) AS s
                   FROM {other[0]} WHERE person IN (SELECT person FROM m) GROUP BY person)
        SELECT {cohort} COUNT(*), SUM(g.n), SUM(g.s), SUM(o.n), SUM(o.s)
        FROM g JOIN o USING (person) {'GROUP BY ' + keys if group else ''}""").fetchall()
    out = {}
    for row in rows:
        labels, (persons, own_n, own_s, other_n, other_s) = tuple(row[: len(group)]), row[len(group):]
        counts = {own: int(own_n or 0), other: int(other_n or 0)}
        out[labels] = {"persons": int(persons), "count:impressions": counts["impressions"],
                       "count:conversions": counts["conversions"],
                       "sum:conversions.value": int((own_s if own == "conversions" else other_s) or 0)}
    return out


def duckdb_exact_left(db: duckdb.DuckDBPyConnection, spec: dict) -> dict[tuple, dict[str, int]]:
    """DuckDB's exact answer per cohort of ``kept LEFT JOIN other`` (None keys: the unexposed):
    the persons, each person's rows of ``kept`` once per cohort, ``other``'s rows in the cohort."""
    kept = spec["kept"]
    other, group, filters = _other(kept), spec["group"], _filters(spec)

    def where(dataset: str, alias: str = "") -> str:
        return " AND ".join(alias + f for f in filters[dataset]) or "TRUE"

    keys = ", ".join(f"o.{g}" for g in group)
    cohort, by = (f"{keys}, ", f"GROUP BY {keys}") if group else ("", "")
    rows = db.execute(f"""
        WITH kp AS (SELECT person, COUNT(*) AS n, SUM({_SUMS[kept]}) AS s FROM {kept}
                    WHERE {where(kept)} GROUP BY person),
             o AS (SELECT {''.join(f'{g}, ' for g in group)} person, COUNT(*) AS n,
                          SUM({_SUMS[other]}) AS s
                   FROM {other} WHERE {where(other)} GROUP BY {''.join(f'{g}, ' for g in group)} person)
        SELECT {cohort} COUNT(*), SUM(kp.n), SUM(kp.s), SUM(o.n), SUM(o.s)
        FROM kp LEFT JOIN o ON kp.person = o.person {by}""").fetchall()
    plain = {tuple(r[: len(group)]): r[-1] for r in db.execute(f"""
        SELECT {cohort} COUNT(DISTINCT k.person) FROM {kept} k LEFT JOIN {other} o
        ON k.person = o.person AND {where(other, 'o.')} WHERE {where(kept, 'k.')} {by}""").fetchall()}
    out = {}
    for row in rows:
        labels, (persons, kept_n, kept_s, other_n, other_s) = tuple(row[: len(group)]), row[len(group):]
        assert plain[labels] == persons, (spec, labels)  # the reference is the LEFT JOIN's answer
        counts, sums = {kept: kept_n, other: other_n}, {kept: kept_s, other: other_s}
        out[labels] = {"persons": int(persons), "count:impressions": int(counts["impressions"] or 0),
                       "count:conversions": int(counts["conversions"] or 0),
                       "sum:conversions.value": int(sums["conversions"] or 0)}
    assert len(plain) == len(out)
    return out
