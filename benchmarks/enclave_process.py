"""The enclave's share of ``benchmarks.run`` in a process of its own: (c) ingest, then (b) the core.

    python -m benchmarks.enclave_process --dir DIR [--repeat K] [--no-frames] [--compare]
        [--no-memory] [--no-plan]

``DIR`` holds what ``benchmarks.upload_files`` wrote (restorable enclave state and both parties'
encrypted uploads). This process holds what an enclave holds: the runtime, one chunk of an
upload at a time, the tables, their cached join keys and the core's temporaries; no plaintext
source data, no baseline. So its peak resident memory (the kernel's VmHWM, which no short peak
escapes) is the enclave's, and ``peak_mem_vs_raw_bytes`` is that peak over the raw column bytes.
It is read after ingest and the core (and once more after the plan engine's run of the same
query, ``--no-plan`` skips it), before the optional ``--compare`` runs, which hold other tables.

Prints one JSON object; the core's aggregates go to ``DIR/core.npz`` for the parent to check
against the baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.core import JOIN_KEY, measure_core, time_noise
from benchmarks.datagen import raw_bytes
from benchmarks.enclave_ingest import measure_hint, measure_ingest
from benchmarks.measure import memory_status
from benchmarks.memory_model import enclave_bytes
from benchmarks.upload_files import Uploads
from enclave.engine.columns import ColumnarTable
from protocol.policy import parse_policy
from tests.support import engine_core as compute

__all__ = ["AGGREGATE_PLAN", "enclave_share", "main"]

# The core's query as analysts' SQL would ask it, within the example policy's rules (at most two
# GROUP BY columns) and with its bounds (L0 4, Linf 8).
AGGREGATE_PLAN = {"v": 1, "datasets": ["impressions", "conversions"], "where": [],
                  "group_by": ["impressions.campaign", "impressions.age_band"],
                  "select": [{"fn": "count_distinct", "arg": "person", "as": "users"},
                             {"fn": "count", "arg": "impressions", "as": "rows"},
                             {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}


def _plan_engine(policy_bytes: bytes, tables: dict[str, ColumnarTable]) -> dict[str, Any]:
    """The same join + aggregate through the plan engine the enclave runs for SQL."""
    from enclave.engine.plan_run import exact_values
    from protocol.query_plan import check_plan, parse_plan

    policy = parse_policy(policy_bytes)
    plan = parse_plan(AGGREGATE_PLAN)
    check = check_plan(policy, plan, "advertiser")
    start = time.perf_counter()
    exact_values(plan, check, policy, tables, os.urandom, JOIN_KEY)
    return {"s": time.perf_counter() - start,
            "query": "persons, impression rows, conversion value by campaign x age band; the "
                     "policy's bounds (L0 4, Linf 8)"}


def enclave_share(work: Path, repeat: int, *, frames: bool = True, compare: bool = False,
                  memory: bool = True, plan: bool = True) -> dict[str, Any]:
    """(c) then (b) on the uploads in ``work``; writes ``work/core.npz``."""
    at_start = memory_status()
    source = Uploads.load(work)
    rows = source.meta["rows_per_party"]
    raw = raw_bytes(rows)
    report: dict[str, Any] = {"rows_per_party": rows, "raw_bytes": raw}
    ingest, tables = measure_ingest(source, repeat, frames=frames)
    report.update(ingest)
    after_ingest = memory_status()
    pub, adv = tables["impressions"], tables["conversions"]
    core, result = measure_core(pub, adv, repeat, memory)
    report.update(core)
    report["core_rows_per_s"] = 2 * rows / report["core_s"]
    after_core = memory_status()
    assert result.metric_sum is not None
    np.savez(work / "core.npz", users=result.users, rows=result.rows, metric_sum=result.metric_sum)
    del result
    if plan:
        report["plan_engine"] = _plan_engine(source.policy_bytes, tables)
    after_plan = memory_status()
    policy = parse_policy(source.policy_bytes)
    model = enclave_bytes(policy)
    report["memory"] = {
        "at_start": at_start, "after_ingest": after_ingest, "after_core": after_core,
        "after_plan_engine": after_plan if plan else None,
        "table_bytes": sum(t.nbytes for t in tables.values()),
        "join_key_cache_bytes": 8 * (pub.rows + adv.rows),
        "model_bytes": model.total, "model": model.parts,
        "method": "VmHWM of this process (kernel high-water mark of resident memory, reset "
                  "before the core's unbounded and bounded runs; the peak is the highest "
                  "reading): the runtime (at_start), every ingest run and every core run",
    }
    # The highest reading since the start: reset_peak_rss() only restarts the kernel's count.
    peaks = [after_ingest.get("VmHWM"), *core.get("core_peak_rss_bytes", {}).values(),
             after_core.get("VmHWM")]
    report["peak_mem_bytes"] = max((p for p in peaks if p), default=None)
    if report["peak_mem_bytes"]:
        report["peak_mem_vs_raw_bytes"] = report["peak_mem_bytes"] / raw
        report["peak_mem_vs_model"] = report["peak_mem_bytes"] / model.total
        if plan:  # the highest reading through the plan engine's run
            report["plan_engine"]["peak_mem_vs_raw_bytes"] = max(report["peak_mem_bytes"],
                                                                 after_plan["VmHWM"]) / raw
    report["n_matched_users"] = compute.match_users(pub.ids, adv.ids, pub.join_keys(JOIN_KEY),
                                                    adv.join_keys(JOIN_KEY)).n_matched
    report["noise_cells"] = 3000
    report["noise_s"] = time_noise(3000)
    del pub, adv, tables
    if compare:
        report["ingest_hint"] = measure_hint(source, repeat)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.enclave_process",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--repeat", type=int, default=3, metavar="K")
    parser.add_argument("--no-frames", action="store_true", help="skip the handle_frame runs")
    parser.add_argument("--compare", action="store_true",
                        help="also run the uploads written with the hint the other way round")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--no-plan", action="store_true", help="skip the plan engine's run")
    args = parser.parse_args(argv)
    report = enclave_share(args.dir, max(1, args.repeat), frames=not args.no_frames,
                           compare=args.compare, memory=not args.no_memory,
                           plan=not args.no_plan)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
