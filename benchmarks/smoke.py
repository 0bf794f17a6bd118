"""CI smoke benchmark: ``python -m benchmarks.smoke [--no-http]``.

Runs ``benchmarks.run.benchmark`` on a small N (its processes: upload files, the enclave's
share, baselines when importable, else an independent NumPy reference; ingest through the real
enclave ``Session``) plus, unless ``--no-http``, the full HTTP path on a tiny N (a real host
subprocess). It exits 1 only when the aggregates are
wrong, a path fails, or a figure is GROSSLY off: more than ``FACTOR`` times worse than a
generous absolute budget, or a query of the example policies outlasts its release deadline
(``benchmarks/release_floor.py`` on its costliest shapes). It is not a timed unit test: shared
CI machines are noisy, so only order-of-magnitude regressions should fail it. About 15 s in
all on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.run import benchmark

ROWS = 200_000
HTTP_ROWS = 20_000
FACTOR = 10
CORE_BUDGET_S = 0.5  # measured ~0.02-0.04 s on a 2-core CI-class machine
INGEST_BUDGET_GBPS = 0.5  # measured 0.6-1.2 GB/s (median of 3) through Session.upload_chunk
HTTP_BUDGET_S = 2.0  # measured ~0.6 s for 20k rows per party (0.39 s of it release padding)
SQL_ROWS = 100_000
SQL_BUDGET_S = 0.2  # 7-day last-touch attribution on the plan engine: measured ~0.01 s
FLOOR_ROWS = 50_000
FLOOR_SHAPES = ("bounded", "all-matched")  # the costliest per row at 2M and 10M rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.smoke",
                                     description="Small benchmark that fails only on gross "
                                                 "regressions or wrong aggregates.")
    parser.add_argument("--no-http", action="store_true",
                        help="skip the tiny full-HTTP-path run (it starts a host subprocess)")
    args = parser.parse_args(argv)
    try:
        report = benchmark(ROWS, repeat=3, memory=False, hint_compare=False, client_rows=0,
                           http_rows=0 if args.no_http else HTTP_ROWS)
    except AssertionError as err:
        print(f"smoke FAILED: {err}")
        return 1
    failures = []
    if report["core_s"] > FACTOR * CORE_BUDGET_S:
        failures.append(f"core {report['core_s']:.3f} s > {FACTOR} x {CORE_BUDGET_S} s")
    if report["ingest_GBps"] < INGEST_BUDGET_GBPS / FACTOR:
        failures.append(f"ingest {report['ingest_GBps']:.3f} GB/s < {INGEST_BUDGET_GBPS} / {FACTOR}")
    http = report["http"]
    if http is not None and http["total_s"] > FACTOR * HTTP_BUDGET_S:
        failures.append(f"http {http['total_s']:.2f} s > {FACTOR} x {HTTP_BUDGET_S} s")
    sql = _sql_path()
    if sql is not None:
        if not sql["identical"]:
            failures.append("the plan engine's attribution differs from DuckDB's")
        if not sql["aggregate_identical_to_core"]:
            failures.append("the plan engine's join + aggregate differs from the core's")
        if sql["engine_s"] > FACTOR * SQL_BUDGET_S:
            failures.append(f"sql attribution {sql['engine_s']:.3f} s > {FACTOR} x {SQL_BUDGET_S} s")
    floor = _release_floor()
    if floor["margin"] < 1:
        failures.append(f"{floor['at']} overran its release deadline at {FLOOR_ROWS:,} rows per "
                        f"dataset ({floor['work_s']:.3f} s of {floor['deadline_s']:.3f} s)")
    baselines = {name: report[f"core_vs_{name}"] for name in ("duckdb", "polars")}
    print(f"smoke: {ROWS:,} rows/party core {report['core_s']:.3f} s, ingest "
          f"{report['ingest_GBps']:.2f} GB/s, core_vs {baselines}, "
          f"checked against {sorted(report['identical_aggregates'])}"
          + (f"; http {HTTP_ROWS:,} rows/party {http['total_s']:.2f} s" if http else "")
          + (f"; sql attribution {SQL_ROWS:,} rows/party {sql['engine_s']:.3f} s, identical to "
             f"DuckDB: {sql['identical']}" if sql else "")
          + f"; release deadlines: smallest margin {floor['margin']:.2f} ({floor['at']})")
    for failure in failures:
        print(f"smoke FAILED: {failure}")
    return 1 if failures else 0


def _release_floor() -> dict:
    """The smallest margin (deadline / work) of every query of both example policies on the
    costliest shapes, at a small N (``benchmarks/release_floor.py``): below 1 is an overrun."""
    from benchmarks.release_floor import POLICIES, measure

    runs = [run for shape in FLOOR_SHAPES for path in POLICIES for run in measure(FLOOR_ROWS, shape, path)]
    worst = min(runs, key=lambda run: run["margin"])
    return {**worst, "at": f"{worst['query']} ({worst['kind']}) on {worst['shape']}"}


def _sql_path() -> dict | None:
    """The SQL benchmark's attribution (and its join + aggregate's agreement with the core) on a
    small N, if DuckDB is installed."""
    try:
        import duckdb  # noqa: F401  (the baseline the plan engine is checked against)
    except ImportError:
        return None
    from benchmarks.sql_path import benchmark as sql_benchmark

    full = sql_benchmark(SQL_ROWS, repeat=1)
    result: dict = {**full["attribution"],
                    "aggregate_identical_to_core": full["aggregate"]["identical_to_core"]}
    return result


if __name__ == "__main__":
    sys.exit(main())
