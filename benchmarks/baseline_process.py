"""One plaintext baseline of ``benchmarks.run`` in a process of its own.

    python -m benchmarks.baseline_process --engine duckdb|polars|numpy --rows N --out FILE
        [--repeat K] [--memory-limit 14GB] [--temp-dir DIR]

The engine loads the seeded columns block by block (``benchmarks/datagen.py``: the same rows the
parties uploaded), runs the query ``--repeat`` times, and writes its aggregates to ``FILE``
(``.npz``) for the parent to compare with the core's. Prints one JSON object: the figures, the
process's peak resident memory, or ``skipped`` when the library is not installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.baselines import BASELINES
from benchmarks.datagen import Shape
from benchmarks.measure import memory_status

__all__ = ["main"]


def run(engine: str, rows: int, repeat: int, out: Path, *, memory_limit: str | None = None,
        temp_dir: str | None = None) -> dict[str, Any]:
    shape = Shape(rows)
    kwargs: dict[str, Any] = {}
    if engine == "duckdb":
        kwargs = {"memory_limit": memory_limit, "temp_directory": temp_dir}
    try:
        report = BASELINES[engine](shape, repeat, **kwargs)
    except ImportError as err:
        return {"skipped": f"{engine} not importable ({err.name}); pip install -r "
                           "requirements/bench.txt"}
    users, rows_, metric = report.pop("result")
    np.savez(out, users=users, rows=rows_, metric_sum=metric)
    report["peak_rss_bytes"] = memory_status().get("VmHWM")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_process",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--engine", choices=sorted(BASELINES), required=True)
    parser.add_argument("--rows", type=int, required=True, metavar="N")
    parser.add_argument("--repeat", type=int, default=3, metavar="K")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE")
    parser.add_argument("--memory-limit", metavar="SIZE", help="DuckDB's memory_limit")
    parser.add_argument("--temp-dir", metavar="DIR", help="where DuckDB may spill")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.engine, args.rows, max(1, args.repeat), args.out,
                         memory_limit=args.memory_limit, temp_dir=args.temp_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
