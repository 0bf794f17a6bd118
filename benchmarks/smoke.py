"""CI smoke benchmark: ``python -m benchmarks.smoke``.

Runs ``benchmarks.run.benchmark`` on a small N (baselines when importable, else an independent
NumPy reference) and exits 1 only when the aggregates are wrong or a figure is GROSSLY off:
more than ``FACTOR`` times worse than a generous absolute budget. It is not a timed unit test:
shared CI machines are noisy, so only order-of-magnitude regressions should fail it.
"""

from __future__ import annotations

import sys

from benchmarks.run import benchmark

ROWS = 200_000
FACTOR = 10
CORE_BUDGET_S = 0.5  # measured ~0.02-0.04 s on a 2-core CI-class machine
INGEST_BUDGET_GBPS = 0.5  # measured several GB/s (median of 3)


def main() -> int:
    try:
        report = benchmark(ROWS, repeat=3, memory=False)
    except AssertionError as err:
        print(f"smoke FAILED: {err}")
        return 1
    failures = []
    if report["core_s"] > FACTOR * CORE_BUDGET_S:
        failures.append(f"core {report['core_s']:.3f} s > {FACTOR} x {CORE_BUDGET_S} s")
    if report["ingest_GBps"] < INGEST_BUDGET_GBPS / FACTOR:
        failures.append(f"ingest {report['ingest_GBps']:.3f} GB/s < {INGEST_BUDGET_GBPS} / {FACTOR}")
    baselines = {name: report[f"core_vs_{name}"] for name in ("duckdb", "polars")}
    print(f"smoke: {ROWS:,} rows/party core {report['core_s']:.3f} s, ingest "
          f"{report['ingest_GBps']:.2f} GB/s, core_vs {baselines}, "
          f"checked against {sorted(report['identical_aggregates'])}")
    for failure in failures:
        print(f"smoke FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
