"""(a) the plaintext baselines: DuckDB (2 threads) and Polars, plus a NumPy reference.

Each runs ``BASELINE_SQL`` (or its Polars twin) on the plaintext columns, loaded into its native
tables first (loading is timed separately, never in the query's figure): per cohort, distinct
matched users, matched impression rows, and the sum over (user, cohort) pairs of the user's
total conversion value, i.e. the core's semantics with bounds that cannot bind. The columns come
from ``benchmarks/datagen.py`` one block at a time, so a process running a baseline holds the
engine's tables and nothing else (``benchmarks/baseline_process.py``). ``numpy_reference`` is an
independent check for when neither library is installed (``pip install -r requirements/bench.txt``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.core import COHORT_DIMS
from benchmarks.datagen import Shape, blocks, generate
from benchmarks.measure import median_time, peak_rss_growth

__all__ = [
    "BASELINES",
    "BASELINE_SQL",
    "Result",
    "duckdb_baseline",
    "numpy_reference",
    "polars_baseline",
    "same_aggregates",
]

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


def _arrow(columns: dict[str, np.ndarray]) -> Any:
    import pyarrow as pa

    out = {}
    for name, col in columns.items():
        if name == "id":
            raw = pa.py_buffer(np.ascontiguousarray(col))
            out[name] = pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), len(col), [None, raw])
        else:
            out[name] = pa.array(col)
    return pa.table(out)


def _to_result(campaign, age, region, users, rows, metric) -> Result:
    codes = (np.asarray(campaign, np.int64) * 6 + np.asarray(age, np.int64)) * 10
    codes += np.asarray(region, np.int64)
    out = [np.zeros(50 * 6 * 10, np.int64) for _ in range(3)]
    for arr, values in zip(out, (users, rows, metric), strict=True):
        arr[codes] = np.asarray(values, np.int64)
    return out[0], out[1], out[2]


def duckdb_baseline(shape: Shape, repeat: int, *, memory_limit: str | None = None,
                    temp_directory: str | None = None) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    if temp_directory:
        con.execute("SET temp_directory = ?", [temp_directory])
    start = time.perf_counter()
    for table, side, columns in (("pub", "publisher", "id::BLOB AS id, campaign, age_band, region"),
                                 ("adv", "advertiser", "id::BLOB AS id, value")):
        for i, block in enumerate(blocks(shape, side)):
            con.register("block", _arrow(block))
            verb = f"CREATE TABLE {table} AS" if i == 0 else f"INSERT INTO {table}"
            con.execute(f"{verb} SELECT {columns} FROM block")  # noqa: S608 (constants only)
            con.unregister("block")
    load_s = time.perf_counter() - start

    def query() -> Result:
        r = con.execute(BASELINE_SQL).fetchnumpy()
        return _to_result(r["campaign"], r["age_band"], r["region"], r["users"], r["rows"],
                          r["metric_sum"])

    median, times, result = median_time(query, repeat)
    peak = peak_rss_growth(query)
    return {"s": median, "runs": times, "result": result, "peak_rss_growth": peak,
            "load_s": load_s, "version": duckdb.__version__, "threads": 2,
            "memory_limit": con.execute("SELECT current_setting('memory_limit')").fetchone()[0]}


def polars_baseline(shape: Shape, repeat: int) -> dict[str, Any]:
    import polars as pl

    start = time.perf_counter()
    pub, adv = (pl.concat([pl.from_arrow(_arrow(b)) for b in blocks(shape, side)], rechunk=True)
                for side in ("publisher", "advertiser"))
    load_s = time.perf_counter() - start
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

    median, times, result = median_time(query, repeat)
    peak = peak_rss_growth(query)
    return {"s": median, "runs": times, "result": result, "peak_rss_growth": peak,
            "load_s": load_s, "version": pl.__version__, "threads": pl.thread_pool_size()}


def numpy_reference(shape: Shape, repeat: int = 1) -> dict[str, Any]:
    """An independent plaintext reference (np.unique on whole digests) for when no baseline runs."""
    parties = generate(shape.rows, seed=shape.seed, overlap=shape.overlap,
                       publisher_rows_per_user=shape.publisher_rows_per_user,
                       advertiser_rows_per_user=shape.advertiser_rows_per_user)
    pub, adv = parties.publisher, parties.advertiser
    start = time.perf_counter()
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
    result = (np.bincount(pairs % 3000, minlength=3000), rows, metric)
    return {"s": time.perf_counter() - start, "runs": [], "result": result}


BASELINES: dict[str, Callable[..., dict[str, Any]]] = {
    "duckdb": duckdb_baseline, "polars": polars_baseline, "numpy": numpy_reference}


def same_aggregates(core: Result, other: Result) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(core, other, strict=True))
