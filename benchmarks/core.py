"""(b) the enclave's compute core on ingested tables, stage by stage, and its noise.

The query is the core's join + aggregate as ``enclave/engine/analyses.py`` runs it: match,
cohort codes, contribution bounding (with bounds that cannot bind, so the result equals the
plaintext baselines'; and separately with binding bounds), per-user metric, aggregate. Noise is
timed on its own.
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from typing import Any

from benchmarks.datagen import DIMENSION_SIZES, VALUE_RANGE_CENTS
from benchmarks.measure import peak_rss_growth
from enclave.engine import noise
from enclave.engine.columns import ColumnarTable
from protocol.privacy import accounting
from tests.support import engine_core as compute

__all__ = ["COHORT_DIMS", "UNBOUNDED", "measure_core", "run_core", "time_noise"]

COHORT_DIMS = ("campaign", "age_band", "region")
UNBOUNDED = 1 << 40  # bounds no user can reach: bounding keeps every matched row
JOIN_KEY = bytes(32)  # the enclave's is a sealed secret; any key costs the same


def run_core(pub: ColumnarTable, adv: ColumnarTable, *, l0: int = UNBOUNDED,
             linf: int = UNBOUNDED) -> tuple[compute.AggregateCounts, dict[str, float]]:
    """Join + aggregate as the enclave's query path does it, with per-stage wall times.

    Like ``enclave/engine/analyses.py``, only matched rows are carried past the join.
    """
    t0 = time.perf_counter()
    # As Job.match: the tables' keyed join keys, cached on each table after its first query
    match = compute.match_users(pub.ids, adv.ids, pub.join_keys(JOIN_KEY), adv.join_keys(JOIN_KEY))
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


def measure_core(pub: ColumnarTable, adv: ColumnarTable, repeat: int,
                 memory: bool) -> tuple[dict[str, Any], compute.AggregateCounts]:
    """The core's figures for the report, and its aggregates (to check against a baseline)."""
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
                   core_peak_rss_growth=peak_rss_growth(lambda: run_core(pub, adv)))
    return out, runs[-1][0]
