"""Time through the real host and enclave: windows, buckets and time filters against DuckDB, and a lift.

The policy variant has a timestamp ``ts`` on both datasets and an ``arm`` dimension on
impressions (``tests/support/sql_time_policy_text``). The parties' CSVs carry ISO 8601 times in
several spellings (``Z``, an offset, none: UTC), which the client converts
(``cleanroom/time_values.py``) and DuckDB parses on its own. A seeded generator writes queries with
7-day (and 3- and 14-day) last-touch and first-touch attribution by campaign and week, time
filters, day and month buckets; each released cell is compared with DuckDB's exact answer by the
z-score method of ``test_sql_vs_duckdb.py`` (its docstring has the argument). DuckDB attributes
with the window join and ``row_number() OVER (PARTITION BY conversion ORDER BY i.ts DESC,
campaign code DESC)`` for last touch (equal times go to the later declared value), ascending for
first touch; its weeks start on Monday, as the enclave's do. Some persons have two impressions at
the same second, so the tie rule is exercised.

Bounding never binds: at most 3 rows per person in each dataset and L0 = Linf = 3, so a person has
at most 3 attributed conversions (cells), 3 rows per bucket and 3 rows of the other dataset.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest

from attestation.verifier.verify import VerifierPolicy
from cleanroom.sql import compile_query
from protocol.policy import parse_policy
from tests.conftest import EXAMPLE_POLICY, bind_policy
from tests.e2e.test_sql_vs_duckdb import FAR, Z_MAX, _sigma
from tests.support.deployment import HostDeployment
from tests.support.sql_policy import ARMS, CHANNELS, e2e_policy_text, sql_time_policy_text
from tests.support.sql_queries import CAMPAIGNS, REGIONS

pytestmark = pytest.mark.slow
SEED = 20261101
N_QUERIES = 15  # + the lift: 16 queries of ε 1 within each dataset's budget of 20
ROWS = 3  # = L0 = Linf
DAY = 86_400
OCT1 = int(dt.datetime(2026, 10, 1, tzinfo=dt.UTC).timestamp())
STATS = ("persons", "count:impressions", "count:conversions", "sum:conversions.value")


def _iso(seconds: int, style: int) -> str:
    """One instant in one of the spellings the client accepts: Z, +02:00, -05:00, or no zone."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    zone = (dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5)), None)[style]
    if zone is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(zone).isoformat().replace("+00:00", "Z")


def _write_csvs(tmp: Path, rng: random.Random) -> tuple[Path, Path]:
    """Persons 0..29999 saw 1-3 impressions in October and November (a person's arm is fixed);
    10000..34999 may convert, test-arm persons more often, mostly within 12 days of an impression."""
    impressions, conversions = tmp / "impressions.csv", tmp / "conversions.csv"
    seen: dict[int, list[int]] = {}
    arm: dict[int, str] = {}
    with impressions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "campaign", "age_band", "region", "arm", "ts"])
        for person in range(30_000):
            arm[person] = rng.choice(ARMS)
            times = [OCT1 + rng.randrange(61 * DAY) for _ in range(rng.randint(1, ROWS))]
            if len(times) > 1 and rng.random() < 0.1:
                times[1] = times[0]  # a tie: two campaigns at the same second
            seen[person] = times
            for t in times:
                writer.writerow([f"user{person}@example.com", rng.choice(CAMPAIGNS[: 3 + person % 6]),
                                 rng.choice(["18-24", "25-34"]), rng.choice(REGIONS), arm[person],
                                 _iso(t, rng.choice([0, 0, 1, 3]))])
    with conversions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "value", "channel", "region", "ts"])
        for person in range(10_000, 35_000):
            if person in arm and rng.random() > (0.8 if arm[person] == "test" else 0.6):
                continue
            for _ in range(rng.randint(1, ROWS)):
                base = rng.choice(seen[person]) if person in seen else OCT1 + rng.randrange(70 * DAY)
                t = base + rng.randrange(12 * DAY)
                writer.writerow([f"user{person}@example.com", f"{rng.randint(0, 5000) / 100:.2f}",
                                 rng.choice(CHANNELS), rng.choice(REGIONS),
                                 _iso(t, rng.choice([0, 1, 2, 3]))])
    return impressions, conversions


# --- the generator: a spec, its SQL in a random style, DuckDB's exact answer -------------------

def _bound_sql(rng: random.Random, day: str) -> str:
    return rng.choice([f"DATE '{day}'", f"TIMESTAMP '{day}T00:00:00Z'", f"'{day}'"])


def _random_spec(rng: random.Random, n: int) -> dict:
    window = n % 5 < 3  # 9 attributed queries, 6 with buckets of one dataset
    where: list[tuple] = []
    if window:
        model = ("last_touch", "first_touch")[n % 2]
        keys = rng.choice([[("i", "campaign", None), ("c", "ts", "week")], [("i", "campaign", None)],
                           [("c", "ts", "week")], [("i", "region", None), ("c", "channel", None)]])
        spec = {"window": (model, rng.choice([7, 7, 3, 14])), "keys": keys}
    else:
        side = rng.choice(["i", "c"])
        unit = rng.choice(["day", "month", "week"])
        other = rng.choice([None, "campaign" if side == "i" else "channel"])
        keys = [(side, "ts", unit), *([(side, other, None)] if other else [])]
        spec = {"window": None, "keys": keys}
        if unit == "day":  # a fortnight of days, the rest of the declared range are empty cells
            start = 1 + rng.randrange(16)
            where.append((side, "between", f"2026-10-{start:02d}", f"2026-10-{start + 14:02d}"))
    if rng.random() < 0.4:
        where.append(("i", "region", rng.sample(REGIONS, 3)))
    if rng.random() < 0.4:
        where.append(("c", rng.choice([">=", ">"]), f"2026-10-{rng.randint(5, 25):02d}"))
    if rng.random() < 0.3:
        where.append(("i", rng.choice(["<", "<="]), f"2026-11-{rng.randint(5, 25):02d}"))
    aggregates = ["distinct", *rng.sample(["count", "sum"], rng.randint(0, 2))]
    if rng.random() < 0.3:
        aggregates = ["distinct", "count", "sum", "avg"]
    own = "c" if spec["window"] is not None else spec["keys"][0][0]
    counted = "c" if "avg" in aggregates else own  # AVG is checked as SUM / COUNT of conversions
    return {**spec, "where": where, "aggregates": aggregates, "positions": rng.random() < 0.3,
            "counted": counted}


def _key_sql(key: tuple) -> str:
    side, column, unit = key
    return f"{side}.{column}" if unit is None else f"DATE_TRUNC('{unit}', {side}.ts) AS {side}_{unit}"


def _sql(spec: dict, rng: random.Random) -> str:
    own = spec["keys"][0][0] if spec["window"] is None else "c"
    counted = spec["counted"]
    count = rng.choice(["COUNT(*)", f"COUNT({own}.*)"]) if counted == own else f"COUNT({counted}.*)"
    text = {"distinct": "COUNT(DISTINCT person) AS users", "count": f"{count} AS n",
            "sum": "SUM(c.value) AS revenue", "avg": "AVG(c.value) AS aov"}
    select = [*map(_key_sql, spec["keys"]), *(text[a] for a in spec["aggregates"])]
    sql = f"SELECT {', '.join(select)}\nFROM impressions i JOIN conversions c"
    if spec["window"] is not None:
        model, days = spec["window"]
        between = rng.choice([f"c.ts BETWEEN i.ts AND i.ts + INTERVAL '{days}' DAY",
                              f"c.ts BETWEEN i.ts AND i.ts + INTERVAL {days} DAY",
                              f"c.ts BETWEEN i.ts AND i.ts + INTERVAL '{days} days'"])
        if model == "first_touch":
            between = f"FIRST_TOUCH({between})"
        elif rng.random() < 0.5:
            between = f"LAST_TOUCH({between})"
        sql += f"\n  ON {between}" + (" AND i.person = c.person" if rng.random() < 0.5 else "")
    predicates = []
    for side, op, *values in spec["where"]:
        if op == "region":
            predicates.append(f"i.region IN ({', '.join(repr(v) for v in values[0])})")
        elif op == "between":
            low, high = _bound_sql(rng, values[0]), _bound_sql(rng, values[1])
            predicates.append(f"{side}.ts BETWEEN {low} AND {high}")
        elif rng.random() < 0.5:
            predicates.append(f"{side}.ts {op} {_bound_sql(rng, values[0])}")
        else:  # the bound on the left, the comparison turned round
            flipped = {">=": "<=", ">": "<", "<": ">", "<=": ">="}[op]
            predicates.append(f"{_bound_sql(rng, values[0])} {flipped} {side}.ts")
    if predicates:
        sql += "\nWHERE " + " AND ".join(predicates)
    names = [f"{s}.{c}" if u is None else f"{s}_{u}" for s, c, u in spec["keys"]]
    by = [str(i + 1) for i in range(len(names))] if spec["positions"] else names
    return sql + "\nGROUP BY " + ", ".join(by)


def _filters(spec: dict) -> dict[str, str]:
    parts: dict[str, list[str]] = {"i": [], "c": []}
    for side, op, *values in spec["where"]:
        if op == "region":
            parts[side].append(f"region IN ({', '.join(repr(v) for v in values[0])})")
        elif op == "between":
            parts[side].append(f"ts_s BETWEEN {_epoch(values[0])} AND {_epoch(values[1])}")
        else:
            parts[side].append(f"ts_s {op} {_epoch(values[0])}")
    return {side: " AND ".join(p) or "TRUE" for side, p in parts.items()}


def _epoch(day: str) -> str:
    return f"epoch(TIMESTAMPTZ '{day} 00:00:00+00')::BIGINT"


def _label(side: str, column: str, unit: str | None, prefix: str = "") -> str:
    if unit is None:
        return f"{prefix}{column}"
    return f"strftime(date_trunc('{unit}', make_timestamp({prefix}ts_s * 1000000)), '%Y-%m-%d')"


def _exact(db: duckdb.DuckDBPyConnection, spec: dict) -> dict[tuple, dict[str, int]]:
    where = _filters(spec)
    if spec["window"] is not None:
        model, days = spec["window"]
        order = "DESC" if model == "last_touch" else "ASC"
        i_key = next((c for s, c, _ in spec["keys"] if s == "i"), None)
        declared = CAMPAIGNS if i_key == "campaign" else REGIONS  # the tie-break: the declared code
        tie = f"list_position({declared}, i.{i_key})" if i_key else "0"
        keys = [_label(s, c, u, "i_" if s == "i" else "") for s, c, u in spec["keys"]]
        rows = db.execute(f"""
            WITH i AS (SELECT * FROM impressions WHERE {where['i']}),
                 c AS (SELECT *, row_number() OVER () AS cid FROM conversions WHERE {where['c']}),
                 credited AS (
                     SELECT c.*, i.campaign AS i_campaign, i.region AS i_region,
                            row_number() OVER (PARTITION BY c.cid
                                               ORDER BY i.ts_s {order}, {tie} {order}) AS rn
                     FROM c JOIN i ON c.person = i.person AND c.ts_s BETWEEN i.ts_s AND i.ts_s + {days * DAY})
            SELECT {', '.join(keys)}, COUNT(DISTINCT person), 0, COUNT(*), SUM(cents)
            FROM credited WHERE rn = 1 GROUP BY ALL""").fetchall()
    else:
        own = spec["keys"][0][0]
        other = "c" if own == "i" else "i"
        keys = [_label(s, c, u) for s, c, u in spec["keys"]]
        cents = {"i": "0", "c": "cents"}
        rows = db.execute(f"""
            WITH i AS (SELECT * FROM impressions WHERE {where['i']}),
                 c AS (SELECT * FROM conversions WHERE {where['c']}),
                 m AS (SELECT person FROM i INTERSECT SELECT person FROM c),
                 g AS (SELECT {', '.join(keys)}, person, COUNT(*) AS n, SUM({cents[own]}) AS s
                       FROM {own} WHERE person IN (SELECT person FROM m) GROUP BY ALL),
                 o AS (SELECT person, COUNT(*) AS n, SUM({cents[other]}) AS s
                       FROM {other} WHERE person IN (SELECT person FROM m) GROUP BY person)
            SELECT g.* EXCLUDE (person, n, s), COUNT(*), SUM(g.n), SUM(g.s), SUM(o.n), SUM(o.s)
            FROM g JOIN o USING (person) GROUP BY ALL""").fetchall()
    out = {}
    k = len(spec["keys"])
    for row in rows:
        labels, values = tuple(row[:k]), [int(v or 0) for v in row[k:]]
        if spec["window"] is not None:
            out[labels] = dict(zip(STATS, values, strict=True))
        else:
            counts = {own: values[1], other: values[3]}
            out[labels] = {"persons": values[0], "count:impressions": counts["i"],
                           "count:conversions": counts["c"],
                           "sum:conversions.value": values[2] if own == "c" else values[4]}
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, parties) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("sql-time-e2e")
    rng = random.Random(SEED)
    text = e2e_policy_text(sql_time_policy_text(EXAMPLE_POLICY.read_text(), max_rows=80_000),
                           epsilon="1.0", bound=ROWS)
    policy_bytes = bind_policy(parties, text)
    policy = parse_policy(policy_bytes)
    impressions, conversions = _write_csvs(tmp, rng)
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")  # a time without a zone is UTC, as the policy's are
    for name, path in (("impressions", impressions), ("conversions", conversions)):
        db.execute(f"CREATE TABLE {name} AS SELECT email AS person, * EXCLUDE (email), "
                   f"epoch(CAST(ts AS TIMESTAMPTZ))::BIGINT AS ts_s "
                   f"FROM read_csv('{path}', header = true, all_varchar = true)")
    db.execute("ALTER TABLE conversions ADD COLUMN cents BIGINT")
    db.execute("UPDATE conversions SET cents = CAST(round(CAST(value AS DECIMAL(10, 2)) * 100) AS BIGINT)")
    with HostDeployment(tmp, policy_bytes) as host:
        client = host.client
        enclave = client.verify(policy_bytes, VerifierPolicy(allow_simulation=True))
        client.upload(enclave, parties["publisher"], policy, "impressions", impressions)
        client.upload(enclave, parties["advertiser"], policy, "conversions", conversions)
        yield {"client": client, "enclave": enclave, "policy": policy, "db": db, "rng": rng,
               "policy_path": host.policy_path}


ALIASES = {"distinct": "users", "count": "n", "sum": "revenue"}


def _check_cells(result, spec: dict, exact: dict, min_persons: int, sql: str) -> list[float]:
    """Every released cell within Z_MAX σ of DuckDB's; the far cells' z-scores (one per vector)."""
    scales = {name: Fraction(t) for name, t in result.privacy["noise_scale"].items()}
    k = len(spec["keys"])
    released = {tuple(row[:k]): dict(zip(result.columns, row, strict=True)) for row in result.rows}
    assert len(released) == len(result.rows), sql
    gate = Z_MAX * _sigma(scales["persons"])
    for labels, truth in exact.items():
        if truth["persons"] >= min_persons + gate:
            assert labels in released, (sql, labels, truth)
    count_stat = {"c": "count:conversions", "i": "count:impressions"}[spec["counted"]]
    stat_of = {"distinct": "persons", "count": count_stat, "sum": "sum:conversions.value"}
    zs = []
    for labels, row in released.items():
        truth = exact.get(labels, dict.fromkeys(STATS, 0))
        assert row["users"] >= min_persons, (sql, labels, row)
        for aggregate in (a for a in spec["aggregates"] if a != "avg"):
            stat = stat_of[aggregate]
            value = row[ALIASES[aggregate]]
            noisy = int(Decimal(value) * 100) if stat.startswith("sum:") else value
            sigma = _sigma(scales[stat])
            z = (noisy - truth[stat]) / sigma
            assert abs(z) <= Z_MAX, (sql, labels, aggregate, value, truth[stat], sigma)
            if truth[stat] > FAR * sigma and (stat != "persons" or truth[stat] > min_persons + FAR * sigma):
                zs.append(z)
        if "avg" in spec["aggregates"]:
            expected = Decimal(row["revenue"]) / max(1, row["n"])
            assert abs(Decimal(row["aov"]) - expected) <= Decimal("0.005") + Decimal("1e-9"), (sql, row)
    return zs


def test_time_queries_match_duckdb_within_the_signed_noise(world, parties) -> None:
    client, enclave, policy, db, rng = (world[k] for k in ("client", "enclave", "policy", "db", "rng"))
    zs: list[float] = []
    models = set()
    for n in range(N_QUERIES):
        spec = _random_spec(rng, n)
        sql = _sql(spec, rng)
        party = ("advertiser", "publisher")[n % 2]
        query = compile_query(sql, policy, party)
        assert (query.wire.get("window") or {}).get("model") == (spec["window"] or (None,))[0], sql
        result = client.query(enclave, parties[party], policy, "", {}, plan=query.wire, sql=sql)
        assert result.columns == query.columns and result.body["params"] == {"plan": query.wire, "sql": sql}
        zs += _check_cells(result, spec, _exact(db, spec), query.check.min_persons, sql)
        models.add(spec["window"][0] if spec["window"] else None)
    assert models == {"last_touch", "first_touch", None}
    assert len(zs) >= 150, len(zs)  # enough far cells for the checks below to mean much
    mean, mean_sq = sum(zs) / len(zs), sum(z * z for z in zs) / len(zs)
    assert abs(mean) <= 6 / math.sqrt(len(zs)), mean
    assert abs(mean_sq - 1) <= 6 * math.sqrt(5 / len(zs)), mean_sq


def test_lift_through_the_cli(world, parties, tmp_path, capsys, monkeypatch) -> None:
    from cleanroom.cli import main

    # A client home of its own: the other SQL suite's enclave, for the same collaboration id,
    # would otherwise be remembered and this one's key taken for a rollback.
    monkeypatch.setenv("CLEANROOM_HOME", str(tmp_path / "home"))

    keys, _public = parties["advertiser"].save(tmp_path / "keys")
    sql = ("SELECT i.arm, COUNT(DISTINCT i.person) AS exposed, COUNT(DISTINCT person) AS converters "
           "FROM impressions i JOIN conversions c GROUP BY i.arm")
    assert main(["query", "--host", world["client"].base_url, "--policy", str(world["policy_path"]),
                 "--keys", str(keys), "--insecure-allow-simulation", "--sql", sql, "--lift", "test:control",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    truth = dict(((arm, (exposed, converters)) for arm, exposed, converters in world["db"].execute("""
        SELECT arm, COUNT(DISTINCT person),
               COUNT(DISTINCT person) FILTER (WHERE person IN (SELECT person FROM conversions))
        FROM impressions GROUP BY arm""").fetchall()))
    scales = {k: Fraction(v) for k, v in doc["privacy"]["noise_scale"].items()}
    lift = doc["lift"]
    assert lift["test"] == "test" and {a["arm"] for a in lift["arms"]} == set(ARMS)
    for arm in lift["arms"]:
        exposed, converters = truth[arm["arm"]]
        assert abs(arm["exposed"] - exposed) <= Z_MAX * _sigma(scales["persons:impressions"])
        assert abs(arm["converters"] - converters) <= Z_MAX * _sigma(scales["persons"])
        assert arm["rate_low"] <= arm["rate"] <= arm["rate_high"]
    true_lift = (truth["test"][1] / truth["test"][0]) / (truth["control"][1] / truth["control"][0]) - 1
    assert true_lift > 0.2  # the data's test arm converts more
    # The interval is 1.96 σ on the log scale; 3 times it is ~6 σ: never missed by chance.
    half = (math.log1p(lift["lift_high"]) - math.log1p(lift["lift_low"])) / 2
    assert abs(math.log1p(lift["lift"]) - math.log1p(true_lift)) <= 3 * half, (lift, true_lift)
