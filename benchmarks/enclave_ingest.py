"""(c) ingest through the REAL enclave upload path, with the client's real encryption.

Not timed: each party's ``cleanroom.upload_crypto.UploadEncryptor`` (fresh data key, HPKE-wrapped
to the enclave's key, signed header, AES-256-GCM chunks) turns the benchmark's columns into the
HTTP record stream, and the records are split into what the host relays (``upload_begin`` body,
then per chunk ``{stream, index, last, data}``), exactly as ``host/upload_stream.py`` and
``host/relay.py`` do. By default the signed header carries ``rows_hint`` as ``Client.upload``
sends it (``rows_hint=table.rows_estimate()``: Parquet metadata, or the CSV's line count; for
columns in memory both are the row count), so ``Session.upload_begin`` sizes each staging
table once; ``rows_hint=False`` leaves it out, as a party whose client omits it (it is
optional) would.

Timed, per run, on a fresh ``enclave.requests.session.Session`` restored from the same sealed state (so
the enclave keys, and therefore the pre-encrypted records, stay valid from run to run):

* ``direct``: ``Session.upload_begin`` -> ``upload_chunk`` for every chunk -> ``upload_commit``
  for both parties: what the enclave does per upload, minus the socket and msgpack framing;
* ``frames``: the same through ``enclave.requests.dispatch.handle_frame`` with real request frames (packed
  beforehand, as the host does): adds the enclave's msgpack unpack of each 4-8 MiB frame and
  the packing of its reply, i.e. the framing cost the enclave pays for every chunk.

``compare`` also encrypts both uploads the other way (without the hint when the main path has
it, and vice versa) and runs both streams through the same ``direct`` path: time and
tracemalloc peak (NumPy reports its buffers to tracemalloc) with and without ``rows_hint``.
In one process the second variant reuses memory the first one faulted in, so the first-run
cost of each is measured in a fresh process:

    python -m benchmarks.enclave_ingest --rows N [--no-hint] [--repeat K] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from benchmarks.bench_policy import PARTIES, bench_policy, party_keys
from cleanroom.keys import PartyKeys
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE, UploadEncryptor
from enclave.engine.columns import ColumnarTable
from enclave.engine.noise_source import ExactNoise
from enclave.requests.dispatch import handle_frame
from enclave.requests.session import Session
from protocol.batch import KIND_WIDTH, encode_batch, rows_per_batch
from protocol.policy import Dataset, Policy
from protocol.upload import RECORD_HEADER
from protocol.wire import pack, unpack

__all__ = ["PreparedIngest", "measure_ingest", "prepare"]

_SEALING_KEY = b"benchmark-sealing-key-32-bytes!!"


@dataclass
class _Upload:
    dataset: str
    rows: int
    rows_hint: int | None  # what the signed header carries (None: no rows_hint field)
    begin: dict[str, bytes]  # upload_begin body: {header, signature}
    chunks: list[tuple[bool, bytes]]  # (last, ciphertext) as the host relays them
    frames: list[bytes] = field(default_factory=list)  # the same as request frames


@dataclass
class PreparedIngest:
    policy: Policy
    policy_bytes: bytes
    keys: dict[str, PartyKeys]  # the parties' keys, to sign queries against the session
    sealed: bytes  # the enclave's state right after init: its keys, no uploads yet
    rows_hint: bool  # whether ``uploads`` carry the hint (as Client.upload sends it)
    uploads: list[_Upload]
    other: list[_Upload]  # the same data encrypted the other way (``compare``), else empty
    plaintext_bytes: int
    ciphertext_bytes: int
    chunk_size: int
    encrypt_s: float  # client side: encode_batch + UploadEncryptor.records, both parties
    pack_frames_s: float  # host side: msgpack pack of every upload_chunk frame

    def new_session(self) -> Session:
        """A fresh enclave session holding the same keys (restored from the sealed state)."""
        session = Session(mode="simulation", quote=lambda report_data: None,
                          sealing_key=_SEALING_KEY, load_sealed=lambda policy_hash: self.sealed,
                          persist=lambda policy_hash, blob: None, noise=ExactNoise(), clock=time.time,
                    random_bytes=os.urandom, sleep=time.sleep)
        session.init({"policy": self.policy_bytes})
        return session


def _encrypt(keys: PartyKeys, policy: Policy, dataset: Dataset, columns: Mapping[str, np.ndarray],
             enc_pub: bytes, chunk_size: int, hint: bool) -> tuple[_Upload, int]:
    """One party's upload as ``Client.upload`` makes it; returns it and its plaintext bytes."""
    schema = dataset.schema()
    step = rows_per_batch(schema, chunk_size)
    rows = len(columns["id"])
    batches = (encode_batch({k: v[i:i + step] for k, v in columns.items()}, schema)
               for i in range(0, rows, step))
    # Client.upload passes rows_hint=table.rows_estimate(): the row count from Parquet metadata
    # or the CSV's line count minus its header -- exactly ``rows`` for columns in memory.
    rows_hint = rows if hint else None
    encryptor = UploadEncryptor(keys, policy, dataset, enc_pub, chunk_size=chunk_size,
                                rows_hint=rows_hint)
    records = list(encryptor.records(batches))
    begin = msgpack.unpackb(records[0][RECORD_HEADER.size:], raw=False)
    # The host reads the flag byte and the ciphertext separately (host/upload_stream.py).
    chunks = [(r[RECORD_HEADER.size] == 1, r[RECORD_HEADER.size + 1:]) for r in records[1:]]
    return _Upload(dataset.name, rows, rows_hint, begin, chunks), encryptor.plaintext_bytes


def prepare(parties: Mapping[str, Mapping[str, np.ndarray]], *,
            chunk_size: int = DEFAULT_CHUNK_SIZE, rows_hint: bool = True,
            compare: bool = False) -> PreparedIngest:
    """Encrypt both parties' columns as their clients would (``parties``: dataset -> columns).

    ``rows_hint``: the headers carry the row count, as ``Client.upload`` sends it (default);
    ``compare``: also encrypt everything the other way round (``PreparedIngest.other``).
    """
    keys = party_keys()
    policy_bytes, policy = bench_policy(keys)
    sealed: list[bytes] = []
    first = Session(mode="simulation", quote=lambda report_data: None, sealing_key=_SEALING_KEY,
                    load_sealed=lambda policy_hash: None,
                    persist=lambda policy_hash, blob: sealed.append(blob),
                    noise=ExactNoise(), clock=time.time,
                    random_bytes=os.urandom, sleep=time.sleep)
    _, ready = first.init({"policy": policy_bytes})
    uploads, other, plain, cipher = [], [], 0, 0
    encrypt_s = pack_s = 0.0
    for stream, (party, dataset_name) in enumerate(PARTIES.items(), start=1):
        dataset = policy.dataset(dataset_name)
        assert dataset is not None
        start = time.perf_counter()
        upload, nbytes = _encrypt(keys[party], policy, dataset, parties[dataset_name],
                                  ready["enc_pub"], chunk_size, rows_hint)
        encrypt_s += time.perf_counter() - start
        plain += nbytes
        cipher += sum(len(data) for _, data in upload.chunks)
        start = time.perf_counter()
        upload.frames = [pack("upload_begin", upload.begin)]
        upload.frames += [pack("upload_chunk", {"stream": stream, "index": i, "last": last,
                                                "data": data})
                          for i, (last, data) in enumerate(upload.chunks)]
        upload.frames.append(pack("upload_commit", {"stream": stream}))
        pack_s += time.perf_counter() - start
        uploads.append(upload)
        if compare:
            other.append(_encrypt(keys[party], policy, dataset, parties[dataset_name],
                                  ready["enc_pub"], chunk_size, not rows_hint)[0])
    return PreparedIngest(policy, policy_bytes, keys, sealed[-1], rows_hint, uploads, other,
                          plain, cipher, chunk_size, encrypt_s, pack_s)


# -------------------------------------------------------------------------------- timed paths


def _direct(session: Session, uploads: list[_Upload]) -> None:
    for upload in uploads:
        _, started = session.upload_begin(upload.begin)
        stream = started["stream"]
        for index, (last, data) in enumerate(upload.chunks):
            session.upload_chunk({"stream": stream, "index": index, "last": last, "data": data})
        kind, _ = session.upload_commit({"stream": stream})
        assert kind == "upload_receipt", kind


def _frames(session: Session, uploads: list[_Upload]) -> None:
    for upload in uploads:
        for frame in upload.frames:
            reply = unpack(handle_frame(session, frame))
            if reply.type == "error":  # an error frame would otherwise pass silently
                raise AssertionError(f"enclave refused a benchmark frame: {reply.body}")


def _tables(session: Session) -> dict[str, ColumnarTable]:
    # The session exposes its tables only to queries; the benchmark reads them to run the core
    # on exactly what the real upload path produced.
    state = session._state
    assert state is not None
    return dict(state.tables)


def _session_run(prepared: PreparedIngest, uploads: list[_Upload],
                 path: Callable[[Session, list[_Upload]], None] = _direct,
                 ) -> Callable[[], dict[str, ColumnarTable]]:
    def run() -> dict[str, ColumnarTable]:
        session = prepared.new_session()  # init + unseal: ~1 ms, not worth excluding
        path(session, uploads)
        return _tables(session)
    return run


def _timed_runs(run: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        out = None  # drop the previous run's tables first, as a restarted enclave would
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return times, out


def _traced_peak(run: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = run()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def _exact_bytes(tables: Mapping[str, ColumnarTable]) -> int:
    return sum(t.rows * sum(KIND_WIDTH[k] for _, k in t.schema) for t in tables.values())


def _hints(uploads: list[_Upload]) -> dict[str, int | None]:
    return {u.dataset: u.rows_hint for u in uploads}


def measure_ingest(prepared: PreparedIngest, repeat: int, *, compare: bool = True,
                   frames: bool = True) -> tuple[dict[str, Any], dict[str, ColumnarTable]]:
    """Time the real path (first run separately) and return its tables for the core.

    ``compare`` needs ``prepare(..., compare=True)``; ``frames``: also time ``handle_frame``.
    """
    plain = prepared.plaintext_bytes
    direct_times, tables = _timed_runs(_session_run(prepared, prepared.uploads), repeat)
    held, exact = sum(t.nbytes for t in tables.values()), _exact_bytes(tables)
    direct_s = statistics.median(direct_times)
    report: dict[str, Any] = {
        "ingest_s": direct_s, "ingest_runs": direct_times,
        "ingest_GBps": plain / direct_s / 1e9,
        "ingest_first_run_GBps": plain / direct_times[0] / 1e9,
        "ingest_path": "Session.upload_begin/upload_chunk/upload_commit (direct calls)",
        "ingest_rows_hint": _hints(prepared.uploads),
        "ingest_note": ("first run includes first-touch page faults of the new tables (and "
                        "whatever memory earlier work in this process left for reuse)"),
        "ingest_plaintext_bytes": plain, "ingest_ciphertext_bytes": prepared.ciphertext_bytes,
        "chunk_size": prepared.chunk_size,
        "chunks": sum(len(u.chunks) for u in prepared.uploads),
        "client_encrypt_s": prepared.encrypt_s,
        "host_pack_frames_s": prepared.pack_frames_s,
        "ingest_table_bytes_held": held, "ingest_table_bytes_exact": exact,
    }
    if frames:
        frame_times, _ = _timed_runs(_session_run(prepared, prepared.uploads, _frames), repeat)
        frames_s = statistics.median(frame_times)
        report.update(ingest_frames_s=frames_s, ingest_frames_runs=frame_times,
                      ingest_frames_GBps=plain / frames_s / 1e9,
                      ingest_frame_overhead_s=frames_s - direct_s)
    if compare:
        if not prepared.other:
            raise ValueError("measure_ingest(compare=True) needs prepare(..., compare=True)")
        report["ingest_hint"] = _measure_hint(prepared, repeat)
    return report, tables


def profile_variant(prepared: PreparedIngest, uploads: list[_Upload], repeat: int) -> dict[str, Any]:
    """Timed runs of the direct path on ``uploads``, then one run under tracemalloc."""
    times, tables = _timed_runs(_session_run(prepared, uploads), repeat)
    held = sum(t.nbytes for t in tables.values())
    del tables
    peak, tables = _traced_peak(_session_run(prepared, uploads))
    del tables
    median = statistics.median(times)
    return {"rows_hint": _hints(uploads), "s": median, "runs": times,
            "GBps": prepared.plaintext_bytes / median / 1e9,
            "first_run_GBps": prepared.plaintext_bytes / times[0] / 1e9,
            "tracemalloc_peak_bytes": peak, "table_bytes_held": held}


def _measure_hint(prepared: PreparedIngest, repeat: int) -> dict[str, Any]:
    """The real Session path with the headers' rows_hint vs the same uploads without it."""
    hinted, unhinted = ((prepared.uploads, prepared.other) if prepared.rows_hint
                        else (prepared.other, prepared.uploads))
    out: dict[str, Any] = {}
    # Without the hint first: it allocates (and, with the tuned glibc, keeps) the most memory,
    # so the hinted runs after it never pay a page fault the unhinted ones did not.
    for name, uploads in (("without_hint", unhinted), ("with_hint", hinted)):
        out[name] = profile_variant(prepared, uploads, repeat)
    out["peak_ratio_without_vs_with"] = (out["without_hint"]["tracemalloc_peak_bytes"]
                                         / out["with_hint"]["tracemalloc_peak_bytes"])
    out["time_ratio_without_vs_with"] = out["without_hint"]["s"] / out["with_hint"]["s"]
    out["note"] = ("both through Session.upload_begin/chunk/commit; without_hint = a party whose "
                   "client omits rows_hint (the staging table doubles from the first chunk); "
                   "medians are warm (same process); first-run costs: python -m "
                   "benchmarks.enclave_ingest [--no-hint], one fresh process each")
    return out


# ---------------------------------------------------------------------------- fresh process


def main(argv: list[str] | None = None) -> int:
    """One variant in a fresh process: its first run pays the page faults a new enclave would."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.enclave_ingest",
        description="(c) alone: both uploads through the real Session, in a fresh process.")
    parser.add_argument("--rows", type=int, default=1_000_000, metavar="N",
                        help="rows per party (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, metavar="K",
                        help="runs; the median and the first are reported (default: %(default)s)")
    parser.add_argument("--no-hint", action="store_true",
                        help="the parties send no rows_hint (it is optional for them)")
    parser.add_argument("--no-tune", action="store_true",
                        help="keep NumPy/glibc defaults (see benchmarks/tuning.py)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be positive")
    from benchmarks.datagen import generate
    from benchmarks.tuning import retune

    retune(argv, "benchmarks.enclave_ingest")
    parties = generate(args.rows)
    prepared = prepare({"impressions": parties.publisher, "conversions": parties.advertiser},
                       rows_hint=not args.no_hint)
    raw = parties.raw_bytes
    # ``parties`` stays alive on purpose: freed, its pages (as many bytes as the tables need)
    # would stay in glibc's heap under the tuned settings and the first run would reuse them
    # instead of faulting in new memory as a freshly started enclave must.
    report = {"rows_per_party": args.rows, "raw_bytes": raw,
              **profile_variant(prepared, prepared.uploads, max(1, args.repeat))}
    del parties
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.rows:,} rows/party, rows_hint {report['rows_hint']}: first run "
              f"{report['runs'][0]:.3f} s ({report['first_run_GBps']:.2f} GB/s), median "
              f"{report['s']:.3f} s ({report['GBps']:.2f} GB/s); tracemalloc peak "
              f"{report['tracemalloc_peak_bytes'] / 1e6:.0f} MB, tables hold "
              f"{report['table_bytes_held'] / 1e6:.0f} MB for {raw / 1e6:.0f} MB of columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
