"""(d) the full path through a real host: attestation, both uploads, one query, over HTTP.

Setup, not timed: the benchmark's seeded data (``benchmarks/datagen.py``) written as one file per
party (CSV, or Parquet with ``fmt="parquet"``), fresh party keys bound into a copy of the example
policy (``benchmarks/bench_policy.py``), and ``python -m host.cli serve`` started as a
subprocess on a free loopback port by the shared harness (``tests/support/deployment.py``; it
starts the enclave, ``python -m enclave``, in simulation).

Timed, in this order, as two parties would do it one after the other: each party verifies the
attestation (simulation opted in), the publisher uploads, the advertiser uploads, the advertiser
runs ``conversions_by_segment`` grouped by campaign and age band. ``total_s`` is their sum.

Where the time goes, measured from outside the host:

* CPU seconds of each process per phase (``/proc/<pid>/stat``, ``benchmarks/processes.py``):
  this client, the gunicorn worker (HTTP parsing, relay framing, digest, file write) and the
  enclave process;
* the client's own work on the same file with no network (``client_offline``): the row-count
  estimate it signs into the header as ``rows_hint`` (``Table.rows_estimate``: one extra pass
  over a CSV), read + parse + normalise + hash (``open_table(...).blocks``), ``encode_batch``,
  encryption;
* the upload's tail: from the client handing over its last record to the receipt arriving
  (the host's last relay, fsync + rename + index, the enclave's commit and receipt);
* an fsync probe: writing and fsyncing a file of the upload's size in the host's state
  directory, the host's storage cost on its own;
* optionally py-spy flame graphs of the host worker and the enclave during the uploads.

The party files (``benchmarks/party_files.py``) hold one email per benchmark user, so both
parties' files describe the same join as the in-process figures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_policy import PARTIES, bench_policy, party_keys
from benchmarks.datagen import Parties
from benchmarks.party_files import write_party_files
from benchmarks.processes import children, cpu_seconds, profiling
from cleanroom.client import Client, UploadProgress
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE
from tests.support.deployment import HostDeployment, enclave_pids

__all__ = ["QUERY", "run_http", "write_party_files"]

QUERY = ("advertiser", "conversions_by_segment",
         {"group_by": ["impressions.campaign", "impressions.age_band"],
          "metric": "conversions.value"})


def _isolated_client(url: str, work: Path) -> Client:
    """A client whose per-collaboration memory (audit heads, enclave key pins) lives in ``work``.

    Every run starts a new enclave for the same collaboration id, which a party's default store
    (``~/.cleanroom``) would rightly refuse as a rollback, and a benchmark must not write into
    the user's home anyway.
    """
    try:
        from cleanroom.audit import HeadStore
    except ImportError:  # a client without audit heads keeps no such state
        return Client(url, timeout=600)
    return Client(url, timeout=600, head_store=HeadStore(work / "party-state" / "heads"))


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def _client_offline(path: Path, policy: Any, dataset_name: str, enc_pub: bytes,
                    keys: Any) -> dict[str, float]:
    """The client's upload work on ``path`` with no network, step by step as ``Client.upload``
    does it: the row-count estimate for ``rows_hint`` (a line count for CSV, metadata for
    Parquet), parse+hash, encode, encrypt."""
    from cleanroom.tables import open_table
    from cleanroom.upload_crypto import UploadEncryptor
    from protocol.batch import encode_batch, rows_per_batch

    dataset = policy.dataset(dataset_name)
    schema = dataset.schema()
    parse = encode = 0.0
    batches = []
    with open_table(path, dataset) as table:
        t0 = time.perf_counter()
        rows_hint = table.rows_estimate()
        estimate = time.perf_counter() - t0
        blocks = table.blocks(rows_per_batch(schema, DEFAULT_CHUNK_SIZE))
        while True:
            t0 = time.perf_counter()
            columns = next(blocks, None)
            t1 = time.perf_counter()
            parse += t1 - t0
            if columns is None:
                break
            batches.append(encode_batch(columns, schema))
            encode += time.perf_counter() - t1
    start = time.perf_counter()
    encryptor = UploadEncryptor(keys, policy, dataset, enc_pub, rows_hint=rows_hint)
    sent = sum(len(record) for record in encryptor.records(batches))
    encrypt = time.perf_counter() - start
    return {"rows_estimate_s": estimate, "rows_hint": rows_hint, "parse_hash_s": parse,
            "encode_s": encode, "encrypt_digest_s": encrypt,
            "total_s": estimate + parse + encode + encrypt, "sent_bytes": sent}


def _release_floor(policy: Any, rows: int) -> dict[str, Any] | None:
    """The enclave's deliberate minimum query duration for QUERY, if it pads releases.

    ``enclave/engine/release_timing.py`` holds a result back until a deadline computed from public
    numbers (the cells released, the declared max_rows of the joined datasets), so query wall
    time is at least this,
    whatever the work took. The cells are counted by the enclave's own planning
    (``authorize`` + ``privacy_plan``): every released statistic counts, so
    ``conversions_by_segment`` over 300 cohorts releases 900 cells (users, rows, sum).
    """
    try:
        from enclave.engine.release_timing import BASE_S, PER_CELL_S, release_deadline
        from enclave.requests.authorization import authorize
        from protocol.privacy.plan import privacy_plan
    except ImportError:
        return None
    requester, analysis, params = QUERY
    plan = authorize(policy, {"collaboration_id": policy.collaboration_id,
                              "policy_hash": policy.hash, "party": requester,
                              "analysis": analysis, "params": params})
    cells = privacy_plan(plan.analysis, policy.privacy, plan.metric_spec, plan.n_cohorts,
                         private=plan.delta > 0).cells
    declared = sum(d.max_rows for d in policy.datasets if d.name in policy.join)
    deadline = release_deadline(cells, declared, plan.analysis.kind)
    return {"s": deadline, "cells": cells, "declared_max_rows": declared, "uploaded_rows": 2 * rows,
            "base_s": BASE_S, "cells_s": PER_CELL_S * cells,
            "rows_s": deadline - BASE_S - PER_CELL_S * cells}


def _fsync_probe(directory: Path, nbytes: int) -> float:
    """Seconds to write ``nbytes`` in 1 MiB writes and fsync, in the host's state directory."""
    path = directory / ".bench-fsync-probe"
    block = os.urandom(1 << 20)
    start = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(max(1, nbytes >> 20)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return elapsed


def run_http(parties: Parties, *, fmt: str = "csv", work_dir: Path | None = None,
             keep: bool = False, profile_dir: Path | None = None,
             startup_timeout: float = 120.0) -> dict[str, Any]:
    """Start a host, run the timed phases, stop the host; return the figures."""
    from attestation.verifier.verify import VerifierPolicy

    rows = len(parties.publisher["id"])
    work = Path(tempfile.mkdtemp(prefix="cleanroom-bench-http-", dir=work_dir))
    report: dict[str, Any] = {"rows_per_party": rows, "format": fmt, "work_dir": str(work)}
    try:
        keys = party_keys()
        policy_bytes, policy = bench_policy(keys, max_rows=rows)
        start = time.perf_counter()
        files = write_party_files(parties, work, fmt)
        report["write_files_s"] = time.perf_counter() - start
        report["file_bytes"] = {k: p.stat().st_size for k, p in files.items()}

        # The environment is inherited, so the enclave child runs with the same NumPy and glibc
        # tuning as this process (as an enclave manifest would set it).
        host = HostDeployment(work, policy_bytes, threads=None, log_level="warning")
        try:
            report["host_startup_s"] = host.start(startup_timeout)
            workers = children(host.pid)
            worker = workers[0] if len(workers) == 1 else host.pid
            enclave_found = enclave_pids(host.state)
            enclave = enclave_found[0] if len(enclave_found) == 1 else None
            report["processes"] = {"host_worker": worker, "enclave": enclave}

            def cpu() -> dict[str, float]:
                out = {"client": time.process_time(), "host": cpu_seconds(worker)}
                if enclave is not None:
                    out["enclave"] = cpu_seconds(enclave)
                return out

            client = _isolated_client(host.url, work)
            verifier = VerifierPolicy(allow_simulation=True)
            phases: dict[str, dict[str, Any]] = {}

            def phase(name: str, fn: Any) -> Any:
                cpu0, t0 = cpu(), time.perf_counter()
                out = fn()
                phases[name] = {"s": time.perf_counter() - t0, "cpu_s": _delta(cpu(), cpu0)}
                return out

            enclaves = {party: phase(f"verify_{party}", lambda: client.verify(policy_bytes, verifier))
                        for party in PARTIES}
            profiled = [worker, *([enclave] if enclave else [])]
            with profiling(profiled, profile_dir, f"uploads-{fmt}-{rows}"):
                for party, dataset in PARTIES.items():
                    marks: dict[str, float] = {}

                    def progress(p: UploadProgress, marks: dict[str, float] = marks) -> None:
                        # Called once before the first record and after each record is sent.
                        marks.setdefault("first", time.perf_counter())
                        marks["last"] = time.perf_counter()

                    def upload(party: str = party, dataset: str = dataset,
                               progress: Any = progress, marks: dict[str, float] = marks) -> Any:
                        receipt = client.upload(enclaves[party], keys[party], policy, dataset,
                                                files[dataset], progress=progress)
                        marks["end"] = time.perf_counter()
                        return receipt

                    receipt = phase(f"upload_{party}", upload)
                    assert receipt.rows == rows, (receipt.rows, rows)
                    done = phases[f"upload_{party}"]
                    done["tail_after_last_record_s"] = marks["end"] - marks["last"]
                    done["MBps_source"] = report["file_bytes"][dataset] / done["s"] / 1e6
            requester, analysis, params = QUERY
            result = phase("query", lambda: client.query(enclaves[requester], keys[requester],
                                                         policy, analysis, params))
            report["query_cohorts_released"] = len(result.rows)
            floor = _release_floor(policy, rows)
            report["query_release_floor_s"] = floor["s"] if floor else None
            report["query_release_floor"] = floor
            report["phases"] = phases
            report["total_s"] = sum(p["s"] for p in phases.values())
            report["upload_both_s"] = sum(phases[f"upload_{p}"]["s"] for p in PARTIES)
            stored = sum(p.stat().st_size for p in (host.state / "uploads").glob("*.upload"))
            report["stored_upload_bytes"] = stored
            report["fsync_probe_s"] = _fsync_probe(host.state, stored // 2)
            report["fsync_probe_note"] = "write + fsync of one upload's size in the state dir"
            ready = enclaves["publisher"]
        finally:
            host.stop()
        report["client_offline"] = {
            dataset: _client_offline(files[dataset], policy, dataset, ready.enc_pub, keys[party])
            for party, dataset in PARTIES.items()}
        report["profile_dir"] = str(profile_dir) if profile_dir else None
        return report
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
