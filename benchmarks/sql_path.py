"""Analysts' SQL on the enclave's plan engine, side by side with the same SQL in DuckDB.

``python -m benchmarks.sql_path --rows N [--repeat K] [--json]`` (needs ``requirements/bench.txt``)
generates both parties' seeded tables (``benchmarks/datagen.py``, plus event times over 90
days), then times, in one process, two queries on both engines:

* ``aggregate``: the core benchmark's join + aggregate written as SQL (persons, rows and
  revenue by campaign, age band and region), side by side with ``benchmarks.core.run_core``
  on the same tables (not DuckDB), runs alternating, checked to give identical aggregates;
* ``attribution``: 7-day last-touch attribution by campaign and week (a window join and
  ``row_number()`` over each conversion's candidate impressions in DuckDB).

The plan engine runs exactly what the enclave runs for a checked plan
(``enclave.engine.plan_run.exact_values``: WHERE, join on keyed ids, bounding, attribution,
aggregation) with bounds no person reaches, so both engines must give identical exact
aggregates (noise and release padding are not part of the figure; they depend on the policy,
not on the engine). Every run checks that, then reports medians, the ratio and
``/proc/loadavg``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from benchmarks.datagen import ADVERTISER_SCHEMA, PUBLISHER_SCHEMA, generate
from benchmarks.measure import median_time
from enclave.engine.columns import ColumnarTable
from enclave.engine.plan_run import exact_values
from protocol.policy import Policy, parse_policy
from protocol.query_plan import check_plan, parse_plan

__all__ = ["benchmark", "main"]

START = 1_790_000_000  # 2026-09-21: inside the policy's declared range, 90 days of events
SPAN_S = 90 * 86_400
_POLICY = """format = 1
collaboration_id = "bench-sql"
[[parties]]
id = "publisher"
signing_key = "{key}"
result_key = "{key}"
[[parties]]
id = "advertiser"
signing_key = "{key}"
result_key = "{key}"
[[datasets]]
name = "impressions"
owner = "publisher"
id_column = "email"
id_normalization = "email"
max_rows = {rows}
[[datasets.dimensions]]
name = "campaign"
values = [{campaigns}]
[[datasets.dimensions]]
name = "age_band"
values = ["0", "1", "2", "3", "4", "5"]
[[datasets.dimensions]]
name = "region"
values = [{regions}]
[[datasets.timestamps]]
name = "ts"
min = "2026-09-01"
max = "2027-03-01"
[datasets.rules]
requesters = ["advertiser"]
recipients = ["advertiser"]
group_by = ["campaign", "age_band", "region"]
join_with = ["conversions"]
min_persons = 1
epsilon = "1"
max_group_by = 3
[[datasets]]
name = "conversions"
owner = "advertiser"
id_column = "email"
id_normalization = "email"
max_rows = {rows}
[[datasets.metrics]]
name = "value"
scale = 2
min = "0"
max = "1000"
[[datasets.timestamps]]
name = "ts"
min = "2026-09-01"
max = "2027-03-01"
[datasets.rules]
requesters = ["advertiser"]
recipients = ["advertiser"]
group_by = ["ts"]
metrics = {{ value = ["sum"] }}
join_with = ["impressions"]
min_persons = 1
epsilon = "1"
max_window_days = 30
max_group_by = 3
[join]
datasets = ["impressions", "conversions"]
[privacy]
mode = "pure"
min_cohort_size = 1
max_cohorts_per_user = 1000
max_rows_per_user = 100000
epsilon_per_query_max = "1"
[privacy.budget]
impressions = "20"
conversions = "20"
"""
AGGREGATE_PLAN = {"v": 1, "datasets": ["impressions", "conversions"], "where": [],
                  "group_by": ["impressions.campaign", "impressions.age_band", "impressions.region"],
                  "select": [{"fn": "count_distinct", "arg": "person", "as": "users"},
                             {"fn": "count", "arg": "impressions", "as": "rows"},
                             {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
ATTRIBUTION_PLAN = {"v": 1, "datasets": ["impressions", "conversions"], "where": [],
                    "group_by": ["impressions.campaign",
                                 {"column": "conversions.ts", "trunc": "week", "as": "week"}],
                    "window": {"from": "impressions.ts", "to": "conversions.ts", "max_days": 7,
                               "model": "last_touch"},
                    "select": [{"fn": "count_distinct", "arg": "person", "as": "converters"},
                               {"fn": "count", "arg": "conversions", "as": "conversions"},
                               {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
# The week of a Unix time, from Monday, as protocol/time_buckets.py computes it.
ATTRIBUTION_SQL = """
WITH credited AS (
  SELECT c.rid, c.id, c.value, c.ts, i.campaign,
         row_number() OVER (PARTITION BY c.rid ORDER BY i.ts DESC, i.campaign DESC) AS rn
  FROM adv c JOIN pub i ON i.id = c.id AND c.ts BETWEEN i.ts AND i.ts + 604800)
SELECT campaign, CAST(floor((floor(c.ts / 86400) + 3) / 7) AS BIGINT) AS week,
       COUNT(DISTINCT id) AS converters, COUNT(*) AS conversions, SUM(value) AS revenue
FROM credited c WHERE rn = 1 GROUP BY ALL
"""


def _tables(rows: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    parties = generate(rows, seed=seed)
    rng = np.random.default_rng(seed + 1)
    publisher, advertiser = dict(parties.publisher), dict(parties.advertiser)
    publisher["ts"] = START + rng.integers(0, SPAN_S, rows)
    advertiser["ts"] = START + rng.integers(0, SPAN_S, rows)
    return publisher, advertiser


def _columnar(columns: dict[str, np.ndarray], schema: tuple[tuple[str, str], ...]) -> ColumnarTable:
    n = len(columns["id"])
    table = ColumnarTable((*schema, ("ts", "timestamp")), capacity_hint=n, max_rows=n)
    table.append(columns)
    return table


def _policy(rows: int) -> Policy:
    campaigns = ", ".join(f'"{i}"' for i in range(50))
    regions = ", ".join(f'"{i}"' for i in range(10))
    text = _POLICY.format(key="00" * 32, rows=rows, campaigns=campaigns, regions=regions)
    return parse_policy(text.encode())


def _engine(policy: Policy, tables: dict[str, ColumnarTable], plan_doc: dict[str, Any],
            repeat: int) -> tuple[float, list[float], dict[str, np.ndarray]]:
    plan = parse_plan(plan_doc)
    check = check_plan(policy, plan, "advertiser")
    key = bytes(32)
    for table in tables.values():
        table.join_keys(key)  # as in the enclave after the first query: keys are cached per table
    return median_time(lambda: exact_values(plan, check, policy, tables, os.urandom, key), repeat)


def _duckdb(publisher: dict[str, np.ndarray], advertiser: dict[str, np.ndarray]) -> Any:
    import duckdb
    import pyarrow as pa

    def arrow(columns: dict[str, np.ndarray]) -> Any:
        out = {}
        for name, values in columns.items():
            if name == "id":
                raw = pa.py_buffer(np.ascontiguousarray(values))
                out[name] = pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), len(values), [None, raw])
            else:
                out[name] = pa.array(values)
        return pa.table(out)

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.register("pub_arrow", arrow(publisher))
    con.register("adv_arrow", arrow(advertiser))
    con.execute("CREATE TABLE pub AS SELECT id::BLOB AS id, campaign, age_band, region, ts "
                "FROM pub_arrow")
    con.execute("CREATE TABLE adv AS SELECT row_number() OVER () AS rid, id::BLOB AS id, value, ts "
                "FROM adv_arrow")
    return con, duckdb.__version__


def benchmark(rows: int, repeat: int = 3, seed: int = 2024) -> dict[str, Any]:
    publisher, advertiser = _tables(rows, seed)
    policy = _policy(rows)
    tables = {"impressions": _columnar(publisher, PUBLISHER_SCHEMA),
              "conversions": _columnar(advertiser, ADVERTISER_SCHEMA)}
    con, version = _duckdb(publisher, advertiser)
    out: dict[str, Any] = {"rows_per_party": rows, "repeat": repeat, "duckdb": version,
                           "cpus": os.cpu_count(), "loadavg_before": _loadavg()}
    # attribution: identical exact aggregates, then the times
    engine_s, engine_runs, values = _engine(policy, tables, ATTRIBUTION_PLAN, repeat)
    duck_s, duck_runs, rows_out = median_time(lambda: con.execute(ATTRIBUTION_SQL).fetchall(), repeat)
    n_weeks = len(values["persons"]) // 50
    first = (policy.dataset("conversions").timestamps[0].min // 86_400 + 3) // 7  # type: ignore[union-attr]
    expected = {(int(c), int(w)): (int(p), int(n), int(r)) for c, w, p, n, r in rows_out}
    got = {(cell // n_weeks, first + cell % n_weeks): (int(values["persons"][cell]),
                                                      int(values["count:conversions"][cell]),
                                                      int(values["sum:conversions.value"][cell]))
           for cell in range(len(values["persons"])) if values["count:conversions"][cell]}
    out["attribution"] = {"engine_s": engine_s, "engine_runs": engine_runs, "duckdb_s": duck_s,
                          "duckdb_runs": duck_runs, "engine_vs_duckdb": engine_s / duck_s,
                          "identical": got == expected, "cells": len(expected)}
    out["aggregate"] = _aggregate_vs_core(policy, tables, repeat)
    out["loadavg_after"] = _loadavg()
    return out


def _aggregate_vs_core(policy: Policy, tables: dict[str, ColumnarTable], repeat: int) -> dict[str, Any]:
    """The join + aggregate plan and ``benchmarks.core.run_core`` on the same tables, runs
    alternating (so a noisy neighbour slows both alike), and whether their exact aggregates agree."""
    from benchmarks.core import run_core

    plan = parse_plan(AGGREGATE_PLAN)
    check = check_plan(policy, plan, "advertiser")
    key = bytes(32)
    for table in tables.values():
        table.join_keys(key)
    engine_runs, core_runs = [], []
    values: dict[str, np.ndarray] = {}
    counts: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        values = exact_values(plan, check, policy, tables, os.urandom, key)
        engine_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        counts, _ = run_core(tables["impressions"], tables["conversions"])
        core_runs.append(time.perf_counter() - started)
    identical = (np.array_equal(values["persons"], counts.users)
                 and np.array_equal(values["count:impressions"], counts.rows)
                 and np.array_equal(values["sum:conversions.value"], counts.metric_sum))
    engine_s, core_s = statistics.median(engine_runs), statistics.median(core_runs)
    return {"engine_s": engine_s, "engine_runs": engine_runs, "core_s": core_s, "core_runs": core_runs,
            "engine_vs_core": engine_s / core_s, "identical_to_core": identical}


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sql_path",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows per party (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine; the median is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = benchmark(args.rows, args.repeat)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        a = result["attribution"]
        print(f"{args.rows:,} rows per party, DuckDB {result['duckdb']}, load {result['loadavg_before']}")
        print(f"7-day last touch by campaign x week: engine {a['engine_s']:.2f} s, "
              f"DuckDB {a['duckdb_s']:.2f} s ({a['engine_vs_duckdb']:.2f}x), "
              f"identical aggregates: {a['identical']} ({a['cells']} cells)")
        g = result["aggregate"]
        print(f"join + aggregate plan: engine {g['engine_s']:.2f} s, core {g['core_s']:.2f} s "
              f"({g['engine_vs_core']:.2f}x), identical aggregates: {g['identical_to_core']}")
    return 0 if result["attribution"]["identical"] and result["aggregate"]["identical_to_core"] else 1


if __name__ == "__main__":
    sys.exit(main())
