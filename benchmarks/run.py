"""Side-by-side benchmark: enclave compute core vs DuckDB and Polars, real ingest, HTTP path.

    python -m benchmarks.run --rows N [--json] [--repeat 3] [--http-rows M] [--no-tune]

Everything runs in ONE process on the same seeded data (``benchmarks/datagen.py``):

(a) DuckDB (2 threads) and Polars run ``BASELINE_SQL`` (or its Polars twin) on the plaintext
    columns, loaded into their native tables first (loading is not timed);
(b) the core (``enclave/engine/compute.py``) on the tables the real upload path of (c) produced:
    match + cohort codes + bounding with bounds that cannot bind + per-user metric + aggregate;
    noise is timed separately, and bounding with binding bounds is reported as its own figure;
(c) ingest through the real enclave code (``benchmarks/enclave_ingest.py``): the parties'
    ``UploadEncryptor`` streams are made beforehand, their signed headers carrying ``rows_hint``
    as ``Client.upload`` sends it (``--no-hint``: without it, as a party may); timed is
    ``Session.upload_begin`` -> ``upload_chunk`` per chunk -> ``upload_commit`` for both
    parties, in GB/s of plaintext (median, and the first run on its own), also through
    ``enclave.requests.dispatch.handle_frame`` with real frames, and the same uploads with and without
    ``rows_hint`` side by side (time, tracemalloc peak, bytes held);
(d) the full HTTP path (``benchmarks/http_path.py``) for ``--http-rows`` rows per party: a real
    host subprocess, attestation, both uploads from CSV (or Parquet) files, one query.

The aggregates of (a) and (b) must be identical before anything is reported or (d) runs (exit 1
if not). Times are medians of ``--repeat`` runs. Peak memory of the core is the column bytes the
ingested tables hold (their capacity, as the enclave holds it) plus the tracemalloc peak of one
extra core run (NumPy reports its buffers to tracemalloc); the baselines allocate natively, so
for all three engines the growth of the process's resident memory during one run (sampled
every millisecond) is reported as well.

Tuning (default, ``--no-tune`` to measure the process as it starts): on AMD CPUs with AVX-512
(Zen 4) NumPy's AVX-512 sort is several times slower than its AVX2 sort, because compress-store
is microcoded there, so the run re-executes itself with ``NPY_DISABLE_CPU_FEATURES`` set; and
glibc is told to keep freed memory (``MALLOC_MMAP_MAX_=0``, a high trim threshold) so that
repeated queries reuse pages instead of re-faulting them, as DuckDB's and Polars' own
allocators do. The enclave manifest can set the same environment; the HTTP host and its
enclave child inherit it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datagen import (
    DIMENSION_SIZES,
    VALUE_RANGE_CENTS,
    Parties,
    generate,
)
from benchmarks.enclave_ingest import measure_ingest, prepare
from enclave.engine import compute, noise
from protocol.privacy import accounting
from enclave.engine.columns import ColumnarTable

COHORT_DIMS = ("campaign", "age_band", "region")
UNBOUNDED = 1 << 40  # bounds no user can reach: bounding keeps every matched row
TUNED_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
}
AVX2_SORT_ENV = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}

# Per cohort: distinct matched users, matched impression rows, and the sum over (user, cohort)
# pairs of the user's total conversion value -- the core's semantics with unlimited bounds.
BASELINE_SQL = """
WITH u AS (SELECT id, SUM(value) AS total FROM adv GROUP BY id),
pairs AS (
    SELECT p.campaign, p.age_band, p.region, p.id, COUNT(*) AS n, ANY_VALUE(u.total) AS total
    FROM pub p JOIN u ON p.id = u.id
    GROUP BY p.campaign, p.age_band, p.region, p.id)
SELECT campaign, age_band, region,
       COUNT(*) AS users, SUM(n)::BIGINT AS rows, SUM(total)::BIGINT AS metric_sum
FROM pairs GROUP BY campaign, age_band, region
"""

Result = tuple[np.ndarray, np.ndarray, np.ndarray]  # users, rows, metric_sum per cohort code


# ------------------------------------------------------------------------------------ utilities


def _median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, out


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_growth(fn: Callable[[], Any]) -> int | None:
    """Growth of resident memory while ``fn`` ran, sampled every millisecond by a thread.

    VmHWM is not used: the kernel updates it lazily, so it misses short-lived peaks. Under the
    tuned glibc settings freed NumPy memory stays resident, so this under-counts the core.
    """
    try:
        before = _resident_bytes()
    except (OSError, ValueError):
        return None
    peak, done = [before], threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], _resident_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], _resident_bytes()) - before


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _amd_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read(8192)
    except OSError:
        return False
    return "AuthenticAMD" in text and " avx512f" in text


def retune(argv: list[str], module: str = "benchmarks.run") -> None:
    """Re-execute ``python -m module *argv`` with the tuned environment unless done or refused."""
    if "--no-tune" in argv or os.environ.get("CLEANROOM_BENCH_TUNED") == "1":
        return
    env = {**os.environ, **TUNED_ENV, "CLEANROOM_BENCH_TUNED": "1"}
    if _amd_avx512() and "NPY_DISABLE_CPU_FEATURES" not in os.environ:
        env.update(AVX2_SORT_ENV)
    sys.stdout.flush()
    # The environment must be in place before NumPy and glibc initialise: hence a re-exec.
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)  # noqa: S606


# ----------------------------------------------------------------------------------------- core


def run_core(pub: ColumnarTable, adv: ColumnarTable, *, l0: int = UNBOUNDED,
             linf: int = UNBOUNDED) -> tuple[compute.AggregateCounts, dict[str, float]]:
    """Join + aggregate as the enclave's query path does it, with per-stage wall times.

    Like ``enclave/engine/analyses.py``, only matched rows are carried past the join.
    """
    t0 = time.perf_counter()
    match = compute.match_users(pub.ids, adv.ids)
    t1 = time.perf_counter()
    matched = match.left_user >= 0
    dims = [pub.column(name)[matched] for name in COHORT_DIMS]
    codes, n_cohorts = compute.cohort_codes(dims, [DIMENSION_SIZES[n] for n in COHORT_DIMS])
    users = match.left_user[matched]
    del dims, matched
    t2 = time.perf_counter()
    keep = compute.bound_contributions(users, codes, match.n_matched,
                                       max_cohorts_per_user=l0, max_rows_per_user_per_cohort=linf,
                                       random_bytes=os.urandom, n_cohorts=n_cohorts)
    t3 = time.perf_counter()
    adv_matched = match.right_user >= 0
    metric = compute.per_user_metric(match.right_user[adv_matched],
                                     adv.column("value")[adv_matched], match.n_matched,
                                     lo=0, hi=VALUE_RANGE_CENTS[1], max_rows_per_user=linf,
                                     random_bytes=os.urandom)
    del adv_matched
    t4 = time.perf_counter()
    result = compute.aggregate(users, codes, n_cohorts, metric, keep)
    t5 = time.perf_counter()
    stages = {"match": t1 - t0, "cohorts": t2 - t1, "bound": t3 - t2, "metric": t4 - t3,
              "aggregate": t5 - t4}
    return result, stages


def time_noise(n_cells: int) -> float:
    """Exact discrete Laplace for users/rows/sum of every cell (ε = 1 split three ways)."""
    start = time.perf_counter()
    for sensitivity in (5, 5 * 10, 5 * 10 * VALUE_RANGE_CENTS[1]):
        noise.noise_vector(n_cells, accounting.laplace_scale(sensitivity, "0.3333"),
                           noise.discrete_laplace)
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------ baselines


def _arrow_tables(parties: Parties):
    import pyarrow as pa

    def table(columns: dict[str, np.ndarray]):
        out = {}
        for name, col in columns.items():
            if name == "id":
                raw = pa.py_buffer(np.ascontiguousarray(col))
                out[name] = pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), len(col),
                                                                 [None, raw])
            else:
                out[name] = pa.array(col)
        return pa.table(out)

    return table(parties.publisher), table(parties.advertiser)


def _to_result(campaign, age, region, users, rows, metric) -> Result:
    codes = (np.asarray(campaign, np.int64) * 6 + np.asarray(age, np.int64)) * 10
    codes += np.asarray(region, np.int64)
    out = [np.zeros(50 * 6 * 10, np.int64) for _ in range(3)]
    for arr, values in zip(out, (users, rows, metric), strict=True):
        arr[codes] = np.asarray(values, np.int64)
    return out[0], out[1], out[2]


def duckdb_baseline(parties: Parties, repeat: int) -> dict[str, Any]:
    import duckdb

    pub, adv = _arrow_tables(parties)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.register("pub_arrow", pub)
    con.register("adv_arrow", adv)
    con.execute("CREATE TABLE pub AS SELECT id::BLOB AS id, campaign, age_band, region "
                "FROM pub_arrow")
    con.execute("CREATE TABLE adv AS SELECT id::BLOB AS id, value FROM adv_arrow")
    del pub, adv

    def query() -> Result:
        r = con.execute(BASELINE_SQL).fetchnumpy()
        return _to_result(r["campaign"], r["age_band"], r["region"], r["users"], r["rows"],
                          r["metric_sum"])

    median, times, result = _median_time(query, repeat)
    peak = _peak_rss_growth(query)
    return {"s": median, "runs": times, "result": result, "peak_rss_growth": peak,
            "version": duckdb.__version__, "threads": 2}


def polars_baseline(parties: Parties, repeat: int) -> dict[str, Any]:
    import polars as pl

    pub_arrow, adv_arrow = _arrow_tables(parties)
    pub, adv = pl.from_arrow(pub_arrow), pl.from_arrow(adv_arrow)
    del pub_arrow, adv_arrow
    keys = list(COHORT_DIMS)

    def query() -> Result:
        totals = adv.lazy().group_by("id").agg(pl.col("value").sum().alias("total"))
        pairs = (pub.lazy().join(totals, on="id", how="inner")
                 .group_by([*keys, "id"]).agg(pl.len().alias("n"), pl.col("total").first()))
        r = (pairs.group_by(keys)
             .agg(pl.len().alias("users"), pl.col("n").sum().alias("rows"),
                  pl.col("total").sum().alias("metric_sum"))
             .collect())
        return _to_result(r["campaign"].to_numpy(), r["age_band"].to_numpy(),
                          r["region"].to_numpy(), r["users"].to_numpy(), r["rows"].to_numpy(),
                          r["metric_sum"].to_numpy())

    median, times, result = _median_time(query, repeat)
    peak = _peak_rss_growth(query)
    return {"s": median, "runs": times, "result": result, "peak_rss_growth": peak,
            "version": pl.__version__, "threads": pl.thread_pool_size()}


def numpy_reference(parties: Parties) -> Result:
    """An independent plaintext reference (np.unique on whole digests) for when no baseline runs."""
    pub, adv = parties.publisher, parties.advertiser
    pub_ids = np.ascontiguousarray(pub["id"]).view("V32").ravel()
    adv_ids = np.ascontiguousarray(adv["id"]).view("V32").ravel()
    uniq, adv_inv = np.unique(adv_ids, return_inverse=True)
    totals = np.zeros(len(uniq), np.int64)
    np.add.at(totals, adv_inv, adv["value"])
    pos = np.minimum(np.searchsorted(uniq, pub_ids), len(uniq) - 1)
    hit = uniq[pos] == pub_ids
    users, codes = pos[hit], ((pub["campaign"][hit].astype(np.int64) * 6
                               + pub["age_band"][hit]) * 10 + pub["region"][hit])
    rows = np.bincount(codes, minlength=3000)
    pairs = np.unique(users * 3000 + codes)
    metric = np.zeros(3000, np.int64)
    np.add.at(metric, pairs % 3000, totals[pairs // 3000])
    return np.bincount(pairs % 3000, minlength=3000), rows, metric


def _baseline(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except ImportError as err:
        return {"skipped": f"{name} not importable ({err.name}); pip install -r "
                           "requirements/bench.txt"}


def _same(core: compute.AggregateCounts, other: Result) -> bool:
    assert core.metric_sum is not None
    mine = (core.users, core.rows, core.metric_sum)
    return all(np.array_equal(a, b) for a, b in zip(mine, other, strict=True))


# ----------------------------------------------------------------------------------------- main


def _measure_ingest(parties: Parties, repeat: int, rows_hint: bool, hint_compare: bool,
                    ) -> tuple[dict[str, Any], tuple[ColumnarTable, ColumnarTable]]:
    prepared = prepare({"impressions": parties.publisher, "conversions": parties.advertiser},
                       rows_hint=rows_hint, compare=hint_compare)
    report, tables = measure_ingest(prepared, repeat, compare=hint_compare)
    del prepared  # the ciphertexts and frames: 2x the raw bytes nobody needs any more
    return report, (tables["impressions"], tables["conversions"])


def _measure_core(pub: ColumnarTable, adv: ColumnarTable, repeat: int,
                  memory: bool) -> tuple[dict[str, Any], compute.AggregateCounts]:
    runs = [run_core(pub, adv) for _ in range(repeat)]
    totals = [sum(stages.values()) for _, stages in runs]
    stage_names = runs[0][1]
    out: dict[str, Any] = {
        "core_s": statistics.median(totals), "core_runs": totals,
        "core_stages_s": {k: statistics.median(r[1][k] for r in runs) for k in stage_names},
        "core_bounded_s": statistics.median(
            sum(run_core(pub, adv, l0=5, linf=10)[1].values()) for _ in range(repeat)),
        "core_bounded_note": "same core with L0 = 5 cohorts/user, Linf = 10 rows/user/cohort",
    }
    if memory:
        held = pub.nbytes + adv.nbytes
        tracemalloc.start()
        tracemalloc.reset_peak()
        run_core(pub, adv)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(core_extra_peak_bytes=peak, peak_mem_bytes=held + peak,
                   core_peak_rss_growth=_peak_rss_growth(lambda: run_core(pub, adv)))
    return out, runs[-1][0]


def benchmark(rows: int, repeat: int = 3, *, baselines: bool = True, memory: bool = True,
              rows_hint: bool = True, hint_compare: bool = True, http_rows: int = 0,
              http_format: str = "csv", http_profile: Path | None = None,
              http_keep: bool = False) -> dict[str, Any]:
    """Run (a)-(d) on ``rows`` rows per party ((d) on ``http_rows``, skipped when 0).

    ``rows_hint``: (c)'s uploads carry the row count as ``Client.upload`` sends it; without
    it the session's staging tables grow by doubling. ``hint_compare``: also run (c) on the
    same uploads with and without the hint. (d) always uses the real client, which sends it.

    :raise AssertionError: the core's aggregates differ from a baseline's (then (d) never runs).
    """
    parties = generate(rows)
    report: dict[str, Any] = {
        "rows_per_party": rows, "repeat": repeat, "raw_bytes": parties.raw_bytes,
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "load_avg_at_start": os.getloadavg()},
        "process_env": {k: os.environ[k] for k in (*TUNED_ENV, *AVX2_SORT_ENV)
                        if k in os.environ},
    }
    ingest_report, (pub, adv) = _measure_ingest(parties, repeat, rows_hint, hint_compare)
    report.update(ingest_report)
    core_report, core_result = _measure_core(pub, adv, repeat, memory)
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
        res = _baseline(name, lambda fn=fn: fn(parties, repeat)) if baselines else {
            "skipped": "--no-baselines"}
        if "result" in res:
            checks[name] = _same(core_result, res.pop("result"))
            report[f"core_vs_{name}"] = report["core_s"] / res["s"]
        else:
            report[f"core_vs_{name}"] = None
        report[name] = res
    if not checks:
        checks["numpy_reference"] = _same(core_result, numpy_reference(parties))
    report["identical_aggregates"] = checks
    if not all(checks.values()):
        raise AssertionError(f"aggregates differ from a baseline: {checks}")
    del pub, adv, core_result
    report["http"] = None
    if http_rows > 0:
        from benchmarks.http_path import run_http  # starts a host subprocess: only when asked

        http_parties = parties if http_rows == rows else generate(http_rows)
        del parties
        report["http"] = run_http(http_parties, fmt=http_format, profile_dir=http_profile,
                                  keep=http_keep)
    return report


def _print_http(h: dict[str, Any]) -> None:
    ph = h["phases"]
    print(f"http    {h['rows_per_party']:,} rows/party from {h['format']}: total {h['total_s']:.2f} s"
          f" (target < 15 s at 1M) = verify {ph['verify_publisher']['s'] + ph['verify_advertiser']['s']:.2f}"
          f" + upload publisher {ph['upload_publisher']['s']:.2f} + upload advertiser "
          f"{ph['upload_advertiser']['s']:.2f} + query {ph['query']['s']:.2f}; host start-up "
          f"{h['host_startup_s']:.2f} s (not in total)")
    floor = h.get("query_release_floor")
    if floor is not None:
        print(f"        query release floor (enclave/engine/release_timing.py padding for this shape): "
              f"{floor['s']:.2f} s = base {floor['base_s']:.2f} + {floor['cells']} cells "
              f"{floor['cells_s']:.2f} + {floor['rows']:,} rows {floor['rows_s']:.2f}")
    for name in ("upload_publisher", "upload_advertiser", "query"):
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in ph[name]["cpu_s"].items())
        tail = ph[name].get("tail_after_last_record_s")
        print(f"        {name}: cpu s {cpu}" + (f"; tail after last record {tail:.3f} s"
                                                 if tail is not None else ""))
    for dataset, c in h["client_offline"].items():
        print(f"        client alone, {dataset}: rows_hint estimate "
              f"{c.get('rows_estimate_s', 0.0):.3f} s, parse+normalise+hash {c['parse_hash_s']:.2f} s, "
              f"encode {c['encode_s']:.3f} s, encrypt+digest {c['encrypt_digest_s']:.3f} s")
    print(f"        fsync probe ({h['stored_upload_bytes'] / 2e6:.0f} MB): "
          f"{h['fsync_probe_s']:.3f} s")


def _print_human(r: dict[str, Any]) -> None:
    print(f"rows per party {r['rows_per_party']:,}  raw column bytes {r['raw_bytes'] / 1e6:.0f} MB"
          f"  matched users {r['n_matched_users']:,}  ({r['machine']['cpu']}, "
          f"{r['machine']['cores']} cores, load {r['machine']['load_avg_at_start'][0]:.2f})")
    print(f"env: {r['process_env'] or 'untuned'}")
    hinted = "with" if all(v is not None for v in r["ingest_rows_hint"].values()) else "WITHOUT"
    print(f"ingest  {r['ingest_s']:.3f} s  {r['ingest_GBps']:.2f} GB/s plaintext via Session "
          f"upload_begin/chunk/commit, {hinted} rows_hint (first run "
          f"{r['ingest_first_run_GBps']:.2f} GB/s: page faults of fresh tables); with frames "
          f"{r['ingest_frames_GBps']:.2f} GB/s (+{r['ingest_frame_overhead_s']:.3f} s)")
    if "ingest_hint" in r:
        without, with_ = r["ingest_hint"]["without_hint"], r["ingest_hint"]["with_hint"]
        print(f"        same uploads without / with rows_hint: {without['s']:.3f} / "
              f"{with_['s']:.3f} s warm, tracemalloc peak "
              f"{without['tracemalloc_peak_bytes'] / 1e6:.0f} / "
              f"{with_['tracemalloc_peak_bytes'] / 1e6:.0f} MB, tables hold "
              f"{without['table_bytes_held'] / 1e6:.0f} / {with_['table_bytes_held'] / 1e6:.0f} MB")
    stages = "  ".join(f"{k} {v:.3f}" for k, v in r["core_stages_s"].items())
    print(f"core    {r['core_s']:.3f} s  ({r['core_rows_per_s'] / 1e6:.1f} M rows/s; {stages}; "
          f"runs {', '.join(f'{t:.3f}' for t in r['core_runs'])})")
    print(f"core with binding bounds {r['core_bounded_s']:.3f} s; noise for "
          f"{r['noise_cells']} cells x 3: {r['noise_s']:.3f} s")
    for name in ("duckdb", "polars"):
        b = r[name]
        if "skipped" in b:
            print(f"{name:7s} skipped: {b['skipped']}")
        else:
            print(f"{name:7s} {b['s']:.3f} s  core_vs_{name} {r[f'core_vs_{name}']:.2f}")
    if "peak_mem_vs_raw_bytes" in r:
        print(f"peak memory {r['peak_mem_bytes'] / 1e6:.0f} MB = "
              f"{r['peak_mem_vs_raw_bytes']:.2f} x raw ({r['peak_mem_method']}); with exactly "
              f"sized tables {r['peak_mem_vs_raw_bytes_exact_tables']:.2f} x raw")
    print(f"identical aggregates: {r['identical_aggregates']}")
    if r["http"] is not None:
        _print_http(r["http"])
    else:
        print("http    skipped (--http-rows 0)")


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
                           http_keep=args.http_keep)
    except AssertionError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        _print_human(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
