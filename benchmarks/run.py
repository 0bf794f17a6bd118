"""Side-by-side benchmark: enclave compute core vs DuckDB and Polars, real ingest, HTTP path.

    python -m benchmarks.run --rows N [--json] [--repeat 3] [--http-rows M] [--no-tune]

Everything runs in ONE process on the same seeded data (``benchmarks/datagen.py``):

(a) DuckDB (2 threads) and Polars run ``BASELINE_SQL`` (or its Polars twin) on the plaintext
    columns, loaded into their native tables first (loading is not timed;
    ``benchmarks/baselines.py``);
(b) the core (``enclave/engine/``, driven by ``benchmarks/core.py``) on the tables the
    real upload path of (c) produced: match + cohort codes + bounding with bounds that cannot
    bind + per-user metric + aggregate; noise is timed separately, and bounding with binding
    bounds is reported as its own figure;
(c) ingest through the real enclave code (``benchmarks/enclave_ingest.py``): the parties'
    ``UploadEncryptor`` streams are made beforehand, their signed headers carrying ``rows_hint``
    as ``Client.upload`` sends it (``--no-hint``: without it, as a party may); timed is
    ``Session.upload_begin`` -> ``upload_chunk`` per chunk -> ``upload_commit`` for both
    parties, in GB/s of plaintext (median, and the first run on its own), also through
    ``enclave.requests.dispatch.handle_frame`` with real frames, and the same uploads with and without
    ``rows_hint`` side by side (time, tracemalloc peak, bytes held);
(d) the full HTTP path (``benchmarks/http_path.py``) for ``--http-rows`` rows per party: a real
    host subprocess, attestation, both uploads from CSV (or Parquet) files, one query;
(e) the ``client`` section (``benchmarks/client_path.py``, ``--client-rows``, default ``--rows``):
    the real client on CSV and Parquet files it writes first (read, normalise, hash on every
    core, encode, encrypt), ``client.csv_rows_per_s`` and ``client.parquet_rows_per_s``.

The aggregates of (a) and (b) must be identical before anything is reported or (d) runs (exit 1
if not). Times are medians of ``--repeat`` runs. Peak memory of the core is the column bytes the
ingested tables hold (their capacity, as the enclave holds it) plus the tracemalloc peak of one
extra core run (NumPy reports its buffers to tracemalloc); the baselines allocate natively, so
for all three engines the growth of the process's resident memory during one run (sampled
every millisecond) is reported as well.

Tuning (default; ``--no-tune`` measures the process as it starts): the run re-executes itself
with the environment of ``benchmarks/tuning.py``: on AMD CPUs with AVX-512 (Zen 4) NumPy's AVX2
sort instead of its AVX-512 one (several times slower there, compress-store being microcoded),
and glibc keeping freed memory (``MALLOC_MMAP_MAX_=0``, a high trim threshold) so that repeated
queries reuse pages instead of re-faulting them, as DuckDB's and Polars' own allocators do. The
enclave manifest can set the same environment; the HTTP host and its enclave child inherit it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.baselines import (
    duckdb_baseline,
    numpy_reference,
    polars_baseline,
    run_baseline,
    same_aggregates,
)
from benchmarks.core import measure_core, time_noise
from benchmarks.datagen import Parties, generate
from benchmarks.enclave_ingest import measure_ingest, prepare
from benchmarks.measure import cpu_model
from benchmarks.report import print_human
from benchmarks.tuning import AVX2_SORT_ENV, TUNED_ENV, retune
from enclave.engine.columns import ColumnarTable
from tests.support import engine_core as compute

__all__ = ["benchmark", "main", "retune"]


def _measure_ingest(parties: Parties, repeat: int, rows_hint: bool, hint_compare: bool,
                    ) -> tuple[dict[str, Any], tuple[ColumnarTable, ColumnarTable]]:
    prepared = prepare({"impressions": parties.publisher, "conversions": parties.advertiser},
                       rows_hint=rows_hint, compare=hint_compare)
    report, tables = measure_ingest(prepared, repeat, compare=hint_compare)
    del prepared  # the ciphertexts and frames: 2x the raw bytes nobody needs any more
    return report, (tables["impressions"], tables["conversions"])


def benchmark(rows: int, repeat: int = 3, *, baselines: bool = True, memory: bool = True,
              rows_hint: bool = True, hint_compare: bool = True, http_rows: int = 0,
              http_format: str = "csv", http_profile: Path | None = None,
              http_keep: bool = False, client_rows: int | None = None) -> dict[str, Any]:
    """Run (a)-(d) on ``rows`` rows per party ((d) on ``http_rows``, skipped when 0).

    ``rows_hint``: (c)'s uploads carry the row count as ``Client.upload`` sends it; without
    it the session's staging tables grow by doubling. ``hint_compare``: also run (c) on the
    same uploads with and without the hint. (d) always uses the real client, which sends it.

    :raise AssertionError: the core's aggregates differ from a baseline's (then (d) never runs).
    """
    parties = generate(rows)
    report: dict[str, Any] = {
        "rows_per_party": rows, "repeat": repeat, "raw_bytes": parties.raw_bytes,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "load_avg_at_start": os.getloadavg()},
        "process_env": {k: os.environ[k] for k in (*TUNED_ENV, *AVX2_SORT_ENV)
                        if k in os.environ},
    }
    ingest_report, (pub, adv) = _measure_ingest(parties, repeat, rows_hint, hint_compare)
    report.update(ingest_report)
    core_report, core_result = measure_core(pub, adv, repeat, memory)
    report.update(core_report)
    report["n_matched_users"] = compute.match_users(pub.ids, adv.ids).n_matched
    report["core_rows_per_s"] = 2 * rows / report["core_s"]
    if memory:
        report["peak_mem_vs_raw_bytes"] = report["peak_mem_bytes"] / parties.raw_bytes
        # The same with tables sized exactly: equal to the above when the uploads carried an
        # exact rows_hint; lower without one (capacity doubled past the row count).
        exact = report["peak_mem_bytes"] - report["ingest_table_bytes_held"] + \
            report["ingest_table_bytes_exact"]
        report["peak_mem_vs_raw_bytes_exact_tables"] = exact / parties.raw_bytes
        report["peak_mem_method"] = ("bytes the ingested tables hold (capacity) + tracemalloc "
                                     "peak of one core run; *_peak_rss_growth = sampled RSS "
                                     "growth during one run")
    report["noise_cells"] = 3000
    report["noise_s"] = time_noise(3000)
    checks = {}
    for name, fn in (("duckdb", duckdb_baseline), ("polars", polars_baseline)):
        res = run_baseline(name, lambda fn=fn: fn(parties, repeat)) if baselines else {
            "skipped": "--no-baselines"}
        if "result" in res:
            checks[name] = same_aggregates(core_result, res.pop("result"))
            report[f"core_vs_{name}"] = report["core_s"] / res["s"]
        else:
            report[f"core_vs_{name}"] = None
        report[name] = res
    if not checks:
        checks["numpy_reference"] = same_aggregates(core_result, numpy_reference(parties))
    report["identical_aggregates"] = checks
    if not all(checks.values()):
        raise AssertionError(f"aggregates differ from a baseline: {checks}")
    del pub, adv, core_result
    client_rows = rows if client_rows is None else client_rows
    report["client"] = None
    if client_rows > 0:
        from benchmarks.client_path import measure_client

        report["client"] = measure_client(parties if client_rows == rows else generate(client_rows))
    report["http"] = None
    if http_rows > 0:
        from benchmarks.http_path import run_http  # starts a host subprocess: only when asked

        http_parties = parties if http_rows == rows else generate(http_rows)
        del parties
        report["http"] = run_http(http_parties, fmt=http_format, profile_dir=http_profile,
                                  keep=http_keep)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0],
        epilog="Exit status 1 if the core's aggregates differ from a baseline's.")
    parser.add_argument("--rows", type=int, default=1_000_000, metavar="N",
                        help="rows per party for (a)-(c) (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, metavar="K",
                        help="runs per timed figure; medians are reported (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-tune", action="store_true",
                        help="keep NumPy/glibc defaults (no re-exec with the tuned environment)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip DuckDB and Polars; check against a NumPy reference instead")
    parser.add_argument("--no-hint", action="store_true",
                        help="(c)'s uploads carry no rows_hint (optional for a party): the whole "
                             "run then measures the enclave without it")
    parser.add_argument("--no-hint-compare", action="store_true",
                        help="skip (c)'s side-by-side run of the same uploads with and without "
                             "rows_hint")
    parser.add_argument("--http-rows", type=int, default=1_000_000, metavar="M",
                        help="rows per party for (d), the full HTTP path; 0 skips it "
                             "(default: %(default)s)")
    parser.add_argument("--client-rows", type=int, default=None, metavar="R",
                        help="rows per party for (e), the client on CSV and Parquet files; 0 "
                             "skips it (default: --rows)")
    parser.add_argument("--http-format", choices=("csv", "parquet"), default="csv",
                        help="party file format for (d) (default: %(default)s)")
    parser.add_argument("--http-profile", type=Path, metavar="DIR",
                        help="write py-spy flame graphs of the host worker and the enclave "
                             "during the uploads of (d) to DIR (needs py-spy on PATH or in "
                             "the venv)")
    parser.add_argument("--http-keep", action="store_true",
                        help="keep (d)'s work directory (files, host log, state) in /tmp")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.http_rows < 0:
        parser.error("--rows must be positive and --http-rows non-negative")
    retune(argv)
    try:
        report = benchmark(args.rows, max(1, args.repeat), baselines=not args.no_baselines,
                           rows_hint=not args.no_hint, hint_compare=not args.no_hint_compare,
                           http_rows=args.http_rows,
                           http_format=args.http_format, http_profile=args.http_profile,
                           http_keep=args.http_keep, client_rows=args.client_rows)
    except AssertionError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        print_human(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
