"""(a) the plaintext baselines: DuckDB (2 threads) and Polars, plus a NumPy reference.

Each runs ``BASELINE_SQL`` (or its Polars twin) on the plaintext columns, loaded into its native
tables first (loading is not timed): per cohort, distinct matched users, matched impression
rows, and the sum over (user, cohort) pairs of the user's total conversion value, i.e. the
core's semantics with bounds that cannot bind. ``numpy_reference`` is an independent check for
when neither library is installed (``pip install -r requirements/bench.txt``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.core import COHORT_DIMS
from benchmarks.datagen import Parties
from benchmarks.measure import median_time, peak_rss_growth
from tests.support import engine_core as compute

__all__ = ["BASELINE_SQL", "Result", "duckdb_baseline", "numpy_reference", "polars_baseline",
           "run_baseline", "same_aggregates"]

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

    median, times, result = median_time(query, repeat)
    peak = peak_rss_growth(query)
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

    median, times, result = median_time(query, repeat)
    peak = peak_rss_growth(query)
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


def run_baseline(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``, or a ``skipped`` entry when its library is not installed."""
    try:
        return fn()
    except ImportError as err:
        return {"skipped": f"{name} not importable ({err.name}); pip install -r "
                           "requirements/bench.txt"}


def same_aggregates(core: compute.AggregateCounts, other: Result) -> bool:
    assert core.metric_sum is not None
    mine = (core.users, core.rows, core.metric_sum)
    return all(np.array_equal(a, b) for a, b in zip(mine, other, strict=True))
