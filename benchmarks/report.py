"""The human-readable report of ``python -m benchmarks.run`` (``--json`` prints the dict itself)."""

from __future__ import annotations

from typing import Any

__all__ = ["print_http", "print_human"]


def print_http(h: dict[str, Any]) -> None:
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


def _mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 1e6:,.0f} MB"


def print_human(r: dict[str, Any]) -> None:
    print(f"rows per party {r['rows_per_party']:,}  raw column bytes {r['raw_bytes'] / 1e6:.0f} MB"
          f"  matched users {r['n_matched_users']:,}  ({r['machine']['cpu']}, "
          f"{r['machine']['cores']} cores, load {r['machine']['loadavg_at_start']})")
    print(f"env: {r['process_env'] or 'untuned'}")
    hinted = "with" if all(v is not None for v in r["ingest_rows_hint"].values()) else "WITHOUT"
    frames = (f"; with frames {r['ingest_frames_GBps']:.2f} GB/s (+{r['ingest_frame_overhead_s']:.3f} s)"
              if "ingest_frames_GBps" in r else "")
    print(f"ingest  {r['ingest_s']:.3f} s  {r['ingest_GBps']:.2f} GB/s plaintext inside Session "
          f"upload_begin/chunk/commit ({r['ingest_loop_GBps']:.2f} GB/s with the reads), {hinted} "
          f"rows_hint (first run {r['ingest_first_run_GBps']:.2f} GB/s){frames}")
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
    if r.get("plan_engine"):
        print(f"plan engine, same query with the policy's bounds: {r['plan_engine']['s']:.3f} s")
    for name in ("duckdb", "polars"):
        b = r[name]
        if "skipped" in b:
            print(f"{name:7s} skipped: {b['skipped']}")
        else:
            print(f"{name:7s} {b['s']:.3f} s  core_vs_{name} {r[f'core_vs_{name}']:.2f}  (load "
                  f"{b['load_s']:.1f} s; process peak RSS {_mb(b.get('peak_rss_bytes'))})")
    if r.get("peak_mem_vs_raw_bytes") is not None:
        m = r["memory"]
        print(f"enclave process peak RSS {_mb(r['peak_mem_bytes'])} = "
              f"{r['peak_mem_vs_raw_bytes']:.2f} x raw (tables {_mb(m['table_bytes'])}, cached "
              f"join keys {_mb(m['join_key_cache_bytes'])}, runtime at start "
              f"{_mb(m['at_start'].get('VmRSS'))}); the memory model reserves "
              f"{_mb(m['model_bytes'])} ({r['peak_mem_vs_model']:.2f} of it used)")
    print(f"identical aggregates: {r['identical_aggregates']}")
    client = r.get("client")
    if client:
        for fmt in ("csv", "parquet"):
            files = ", ".join(f"{d} {f['s']:.2f} s ({f['MBps']:.0f} MB/s)" for d, f in client[fmt].items())
            print(f"client  {fmt}: {client[f'{fmt}_rows_per_s']:,.0f} rows/s ({files})")
    if r["http"] is not None:
        print_http(r["http"])
    else:
        print("http    skipped (--http-rows 0)")
