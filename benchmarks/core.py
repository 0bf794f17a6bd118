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

import numpy as np

from benchmarks.datagen import DIMENSION_SIZES, VALUE_RANGE_CENTS
from benchmarks.measure import memory_status, peak_rss_growth, reset_peak_rss
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
    """Join + aggregate with the enclave's functions, with per-stage wall times.

    The stages and functions are those of ``enclave/engine/analyses.py`` (match, cohort codes,
    bounding, per-user metric, aggregate), and like it only matched rows are carried past the
    join. Unlike it, each side's full-length match codes (8 bytes per table row) are dropped as
    soon as that side's matched rows are taken, the advertiser's first: the least the core
    needs to hold (docs/scale-out.md, "the core's temporaries").
    """
    t0 = time.perf_counter()
    # As Job.match: the tables' keyed join keys, cached on each table after its first query
    match = compute.match_users(pub.ids, adv.ids, pub.join_keys(JOIN_KEY), adv.join_keys(JOIN_KEY))
    left_user, right_user, n_matched = match.left_user, match.right_user, match.n_matched
    del match
    t1 = time.perf_counter()
    adv_rows = np.flatnonzero(right_user >= 0)
    adv_users = right_user[adv_rows]
    del right_user
    metric = compute.per_user_metric(adv_users, adv.column("value")[adv_rows], n_matched,
                                     lo=0, hi=VALUE_RANGE_CENTS[1], max_rows_per_user=linf,
                                     random_bytes=os.urandom)
    del adv_rows, adv_users
    t2 = time.perf_counter()
    pub_rows = np.flatnonzero(left_user >= 0)
    users = left_user[pub_rows]
    del left_user
    codes, n_cohorts = compute.cohort_codes([pub.column(name)[pub_rows] for name in COHORT_DIMS],
                                            [DIMENSION_SIZES[n] for n in COHORT_DIMS])
    del pub_rows
    t3 = time.perf_counter()
    keep = compute.bound_contributions(users, codes, n_matched,
                                       max_cohorts_per_user=l0, max_rows_per_user_per_cohort=linf,
                                       random_bytes=os.urandom, n_cohorts=n_cohorts)
    t4 = time.perf_counter()
    result = compute.aggregate(users, codes, n_cohorts, metric, keep)
    t5 = time.perf_counter()
    stages = {"match": t1 - t0, "metric": t2 - t1, "cohorts": t3 - t2, "bound": t4 - t3,
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
    # The kernel's peak resident memory of each half on its own (when it can be reset): with
    # glibc as the enclave has it, freed arrays go back, so the second half starts from the
    # tables and cached keys again.
    reset_peak_rss()
    runs = [run_core(pub, adv) for _ in range(repeat)]
    unbounded_peak = memory_status().get("VmHWM")
    reset_peak_rss()
    bounded = [sum(run_core(pub, adv, l0=5, linf=10)[1].values()) for _ in range(repeat)]
    totals = [sum(stages.values()) for _, stages in runs]
    stage_names = runs[0][1]
    out: dict[str, Any] = {
        "core_s": statistics.median(totals), "core_runs": totals,
        "core_stages_s": {k: statistics.median(r[1][k] for r in runs) for k in stage_names},
        "core_bounded_s": statistics.median(bounded), "core_bounded_runs": bounded,
        "core_bounded_note": "same core with L0 = 5 cohorts/user, Linf = 10 rows/user/cohort",
        "core_peak_rss_bytes": {"unbounded": unbounded_peak,
                                "bounded": memory_status().get("VmHWM")},
    }
    if memory:
        # NumPy reports its array buffers to tracemalloc, but not the sorts' own scratch
        # buffers: the enclave process's peak resident memory (benchmarks/enclave_process.py)
        # is the figure that counts; this one says which part is the core's arrays.
        tracemalloc.start()
        tracemalloc.reset_peak()
        run_core(pub, adv)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(core_extra_peak_bytes=peak,
                   core_peak_rss_growth=peak_rss_growth(lambda: run_core(pub, adv)))
    return out, runs[-1][0]
