"""(d) the full path through a real host: attestation, both uploads, one query, over HTTP.

Setup, not timed: the benchmark's seeded data (``benchmarks/datagen.py``) written as one file per
party (CSV, or Parquet with ``fmt="parquet"``), fresh party keys bound into a copy of the example
policy (``benchmarks/bench_policy.py``), and ``python -m host.cli serve`` started as a
subprocess on a free loopback port (it starts the enclave, ``python -m enclave``, in simulation).

Timed, in this order, as two parties would do it one after the other: each party verifies the
attestation (simulation opted in), the publisher uploads, the advertiser uploads, the advertiser
runs ``conversions_by_segment`` grouped by campaign and age band. ``total_s`` is their sum.

Where the time goes, measured from outside the host:

* CPU seconds of each process per phase (``/proc/<pid>/stat``): this client, the gunicorn
  worker (HTTP parsing, relay framing, digest, file write) and the enclave process;
* the client's own work on the same file with no network (``client_offline``): the row-count
  estimate it signs into the header as ``rows_hint`` (``Table.rows_estimate``: one extra pass
  over a CSV), read + parse + normalise + hash (``open_table(...).blocks``), ``encode_batch``,
  encryption;
* the upload's tail: from the client handing over its last record to the receipt arriving
  (the host's last relay, fsync + rename + index, the enclave's commit and receipt);
* an fsync probe: writing and fsyncing a file of the upload's size in the host's state
  directory, the host's storage cost on its own;
* optionally py-spy flame graphs of the host worker and the enclave during the uploads.

The identifier column holds ``u<first 8 digest bytes as a decimal>@example.com``: one email per
benchmark user, so both parties' files describe the same join as the in-process figures (the
digests differ, being SHA-256 of these emails).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_policy import PARTIES, bench_policy, dimension_values, party_keys
from benchmarks.datagen import Parties
from cleanroom.client import Client, UploadProgress
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE
from protocol.errors import EnclaveUnavailable

__all__ = ["QUERY", "run_http"]

ROOT = Path(__file__).resolve().parents[1]
QUERY = ("advertiser", "conversions_by_segment",
         {"group_by": ["impressions.campaign", "impressions.age_band"],
          "metric": "conversions.value"})
_TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------- party files


def _emails(ids: np.ndarray) -> np.ndarray:
    prefix = np.ascontiguousarray(ids[:, :8]).view("<u8").ravel()
    return np.char.add(np.char.add("u", prefix.astype(str)), "@example.com")


def _party_columns(parties: Parties) -> dict[str, dict[str, np.ndarray]]:
    """Each dataset's source columns as text, in the policy's column names."""
    values = {k: np.array(v) for k, v in dimension_values().items()}
    pub, adv = parties.publisher, parties.advertiser
    cents = adv["value"]
    decimal = np.char.add(np.char.add((cents // 100).astype(str), "."),
                          np.char.zfill((cents % 100).astype(str), 2))
    return {
        "impressions": {"email": _emails(pub["id"]),
                        **{name: values[name][pub[name]] for name in values}},
        "conversions": {"email": _emails(adv["id"]), "value": decimal},
    }


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    arrays = list(columns.values())
    joined = arrays[0]
    for column in arrays[1:]:
        joined = np.char.add(np.char.add(joined, ","), column)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(columns) + "\n")
        f.write("\n".join(joined.tolist()))
        f.write("\n")


def _write_parquet(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Strings, as a party's export would hold them; the client parses them like CSV cells.
    pq.write_table(pa.table({k: pa.array(v.tolist(), pa.string()) for k, v in columns.items()}),
                   path)


def write_party_files(parties: Parties, work: Path, fmt: str) -> dict[str, Path]:
    """One file per dataset in ``work``; returns {dataset: path}."""
    files = {}
    for dataset, columns in _party_columns(parties).items():
        path = work / f"{dataset}.{fmt}"
        (_write_parquet if fmt == "parquet" else _write_csv)(path, columns)
        files[dataset] = path
    return files


# --------------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class _Host:
    """``python -m host.cli serve`` as a subprocess; finds its worker and enclave processes."""

    def __init__(self, policy_path: Path, work: Path, startup_timeout: float) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log_path = work / "host.log"
        self.state_dir = work / "host-state"
        command = [sys.executable, "-m", "host.cli", "serve", "--policy", str(policy_path),
                   "--state-dir", str(self.state_dir), "--bind", self.url[len("http://"):],
                   "--log-level", "warning"]
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            # The environment is inherited, so the enclave child runs with the same NumPy and
            # glibc tuning as this process (as an enclave manifest would set it).
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=ROOT)
        try:
            self._wait_healthy(startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - started
        workers = _children(self.process.pid)
        self.worker = workers[0] if len(workers) == 1 else self.process.pid
        enclaves = [p for p in _children(self.worker) if "enclave" in _cmdline(p)]
        self.enclave = enclaves[0] if enclaves else None

    def _wait_healthy(self, timeout: float) -> None:
        client = Client(self.url, timeout=5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
                raise EnclaveUnavailable("the host exited during start-up:\n  " + "\n  ".join(tail))
            with contextlib.suppress(EnclaveUnavailable):
                client.health()
                return
            time.sleep(0.1)
        raise EnclaveUnavailable(f"the host was not healthy after {timeout:.0f} s ({self.log_path})")

    def cpu(self) -> dict[str, float]:
        out = {"client": time.process_time(), "host": _cpu_s(self.worker)}
        if self.enclave is not None:
            out["enclave"] = _cpu_s(self.enclave)
        return out

    def stop(self) -> None:
        """Stop exactly the process this benchmark started (gunicorn stops its enclave)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def _profiling(pids: Sequence[int], out_dir: Path | None, tag: str) -> Iterator[None]:
    """py-spy flame graphs of ``pids`` while the block runs (if asked and py-spy is there)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if out_dir is None or spy is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
                               "-o", str(out_dir / f"{tag}-{pid}.svg")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for pid in pids]
    time.sleep(0.5)  # let py-spy attach before the measured work starts
    try:
        yield
    finally:
        for proc in procs:  # SIGINT makes py-spy write its output and exit
            proc.send_signal(2)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)


# ------------------------------------------------------------------------------ measurements


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
    numbers (the cells released, the rows uploaded), so query wall time is at least this,
    whatever the work took. The cells are counted by the enclave's own planning
    (``authorize`` + ``privacy_plan``): every released statistic counts, so
    ``conversions_by_segment`` over 300 cohorts releases 900 cells (users, rows, sum).
    """
    try:
        from enclave.engine.release_timing import BASE_S, PER_CELL_S, PER_ROW_S, release_deadline
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
    n_rows = 2 * rows  # both joined datasets
    return {"s": release_deadline(cells, n_rows), "cells": cells, "rows": n_rows,
            "base_s": BASE_S, "cells_s": PER_CELL_S * cells, "rows_s": PER_ROW_S * n_rows}


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
        policy_bytes, policy = bench_policy(keys)
        policy_path = work / "policy.toml"
        policy_path.write_bytes(policy_bytes)
        start = time.perf_counter()
        files = write_party_files(parties, work, fmt)
        report["write_files_s"] = time.perf_counter() - start
        report["file_bytes"] = {k: p.stat().st_size for k, p in files.items()}

        host = _Host(policy_path, work, startup_timeout)
        try:
            report["host_startup_s"] = host.startup_s
            report["processes"] = {"host_worker": host.worker, "enclave": host.enclave}
            client = _isolated_client(host.url, work)
            verifier = VerifierPolicy(allow_simulation=True)
            phases: dict[str, dict[str, Any]] = {}

            def phase(name: str, fn: Any) -> Any:
                cpu0, t0 = host.cpu(), time.perf_counter()
                out = fn()
                phases[name] = {"s": time.perf_counter() - t0, "cpu_s": _delta(host.cpu(), cpu0)}
                return out

            enclaves = {party: phase(f"verify_{party}", lambda: client.verify(policy_bytes, verifier))
                        for party in PARTIES}
            profiled = [host.worker, *([host.enclave] if host.enclave else [])]
            with _profiling(profiled, profile_dir, f"uploads-{fmt}-{rows}"):
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
            stored = sum(p.stat().st_size for p in (host.state_dir / "uploads").glob("*.upload"))
            report["stored_upload_bytes"] = stored
            report["fsync_probe_s"] = _fsync_probe(host.state_dir, stored // 2)
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
