"""(c) ingest through the REAL enclave upload path, with the client's real encryption.

Not timed: each party's ``cleanroom.upload_crypto.UploadEncryptor`` (fresh data key, HPKE-wrapped
to the enclave's key, signed header, AES-256-GCM chunks) turns the benchmark's columns into the
HTTP record stream, and the records are split into what the host relays (``upload_begin`` body,
then per chunk ``{stream, index, last, data}``), exactly as ``host/upload_stream.py`` and
``host/relay.py`` do.

Timed, per run, on a fresh ``enclave.session.Session`` restored from the same sealed state (so
the enclave keys, and therefore the pre-encrypted records, stay valid from run to run):

* ``direct``: ``Session.upload_begin`` -> ``upload_chunk`` for every chunk -> ``upload_commit``
  for both parties: what the enclave does per upload, minus the socket and msgpack framing;
* ``frames``: the same through ``enclave.dispatch.handle_frame`` with real request frames (packed
  beforehand, as the host does): adds the enclave's msgpack unpack of each 4-8 MiB frame and
  the packing of its reply, i.e. the framing cost the enclave pays for every chunk.

``hint`` compares the staging table the session really uses (no capacity hint: the upload header
carries no row count) with one sized exactly, running the session's own per-chunk steps
(``UploadOpener.open_chunk`` + ``decode_batch`` + ``ColumnarTable.append``) in both cases, for
time and tracemalloc peak (NumPy reports its buffers to tracemalloc).
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from benchmarks.bench_policy import PARTIES, bench_policy, party_keys
from cleanroom.batch import encode_batch, rows_per_batch
from cleanroom.keys import PartyKeys
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE, UploadEncryptor
from enclave.columns import ColumnarTable, decode_batch
from enclave.dispatch import handle_frame
from enclave.envelope import UploadOpener
from enclave.noise_source import ExactNoise
from enclave.session import Session
from protocol.policy import Policy
from protocol.upload import RECORD_HEADER
from protocol.wire import pack, unpack

__all__ = ["PreparedIngest", "measure_ingest", "prepare"]

_SEALING_KEY = b"benchmark-sealing-key-32-bytes!!"


@dataclass
class _Upload:
    dataset: str
    rows: int
    begin: dict[str, bytes]  # upload_begin body: {header, signature}
    chunks: list[tuple[bool, bytes]]  # (last, ciphertext) as the host relays them
    frames: list[bytes]  # the same as request frames, stream ids pre-assigned


@dataclass
class PreparedIngest:
    policy: Policy
    policy_bytes: bytes
    keys: dict[str, PartyKeys]  # the parties' keys, to sign queries against the session
    sealed: bytes  # the enclave's state right after init: its keys, no uploads yet
    uploads: list[_Upload]
    plaintext_bytes: int
    ciphertext_bytes: int
    chunk_size: int
    encrypt_s: float  # client side: encode_batch + UploadEncryptor.records, both parties
    pack_frames_s: float  # host side: msgpack pack of every upload_chunk frame

    def new_session(self) -> Session:
        """A fresh enclave session holding the same keys (restored from the sealed state)."""
        session = Session(mode="simulation", quote=lambda report_data: None,
                          sealing_key=_SEALING_KEY, load_sealed=lambda policy_hash: self.sealed,
                          persist=lambda policy_hash, blob: None, noise=ExactNoise())
        session.init({"policy": self.policy_bytes})
        return session


def prepare(parties: Mapping[str, Mapping[str, np.ndarray]], *,
            chunk_size: int = DEFAULT_CHUNK_SIZE) -> PreparedIngest:
    """Encrypt both parties' columns as their clients would (``parties``: dataset -> columns)."""
    keys = party_keys()
    policy_bytes, policy = bench_policy(keys)
    sealed: list[bytes] = []
    first = Session(mode="simulation", quote=lambda report_data: None, sealing_key=_SEALING_KEY,
                    load_sealed=lambda policy_hash: None,
                    persist=lambda policy_hash, blob: sealed.append(blob),
                    noise=ExactNoise())
    _, ready = first.init({"policy": policy_bytes})
    uploads, plain, cipher = [], 0, 0
    encrypt_s = pack_s = 0.0
    for stream, (party, dataset_name) in enumerate(PARTIES.items(), start=1):
        dataset = policy.dataset(dataset_name)
        assert dataset is not None
        columns = parties[dataset_name]
        schema = dataset.schema()
        start = time.perf_counter()
        step = rows_per_batch(schema, chunk_size)
        rows = len(columns["id"])
        batches = (encode_batch({k: v[i:i + step] for k, v in columns.items()}, schema)
                   for i in range(0, rows, step))
        encryptor = UploadEncryptor(keys[party], policy, dataset, ready["enc_pub"],
                                    chunk_size=chunk_size)
        records = list(encryptor.records(batches))
        encrypt_s += time.perf_counter() - start
        plain += encryptor.plaintext_bytes
        begin = msgpack.unpackb(records[0][RECORD_HEADER.size:], raw=False)
        # The host reads the flag byte and the ciphertext separately (host/upload_stream.py).
        chunks = [(r[RECORD_HEADER.size] == 1, r[RECORD_HEADER.size + 1:]) for r in records[1:]]
        del records
        cipher += sum(len(data) for _, data in chunks)
        start = time.perf_counter()
        frames = [pack("upload_begin", begin)]
        frames += [pack("upload_chunk", {"stream": stream, "index": i, "last": last, "data": data})
                   for i, (last, data) in enumerate(chunks)]
        frames.append(pack("upload_commit", {"stream": stream}))
        pack_s += time.perf_counter() - start
        uploads.append(_Upload(dataset_name, rows, begin, chunks, frames))
    return PreparedIngest(policy, policy_bytes, keys, sealed[-1], uploads, plain, cipher, chunk_size,
                          encrypt_s, pack_s)


# -------------------------------------------------------------------------------- timed paths


def _direct(session: Session, prepared: PreparedIngest) -> None:
    for upload in prepared.uploads:
        _, started = session.upload_begin(upload.begin)
        stream = started["stream"]
        for index, (last, data) in enumerate(upload.chunks):
            session.upload_chunk({"stream": stream, "index": index, "last": last, "data": data})
        kind, _ = session.upload_commit({"stream": stream})
        assert kind == "upload_receipt", kind


def _frames(session: Session, prepared: PreparedIngest) -> None:
    for upload in prepared.uploads:
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


def _opener_loop(session: Session, prepared: PreparedIngest, hinted: bool) -> list[ColumnarTable]:
    """The per-chunk steps of ``Session.upload_chunk``, with or without an exact capacity hint."""
    state = session._state  # the enclave keys, to open the uploads
    assert state is not None
    tables = []
    for upload in prepared.uploads:
        opener = UploadOpener(upload.begin["header"], upload.begin["signature"],
                              policy=state.policy, keys=state.keys)
        dataset = opener.dataset
        sizes = {d.name: len(d.values) for d in dataset.dimensions}
        schema = dataset.schema()
        table = ColumnarTable(schema, capacity_hint=upload.rows if hinted else 0,
                              max_rows=dataset.max_rows)
        for last, data in upload.chunks:
            table.append(decode_batch(opener.open_chunk(last, data), schema, sizes))
        tables.append(table)
    return tables


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


def measure_ingest(prepared: PreparedIngest, repeat: int, *,
                   hint: bool = True) -> tuple[dict[str, Any], dict[str, ColumnarTable]]:
    """Time the real path (first run separately) and return its tables for the core."""
    plain = prepared.plaintext_bytes

    def direct() -> dict[str, ColumnarTable]:
        session = prepared.new_session()  # init + unseal: ~1 ms, not worth excluding
        _direct(session, prepared)
        return _tables(session)

    def frames() -> dict[str, ColumnarTable]:
        session = prepared.new_session()
        _frames(session, prepared)
        return _tables(session)

    direct_times, tables = _timed_runs(direct, repeat)
    held = sum(t.nbytes for t in tables.values())
    exact = sum(t.rows * sum(_row_width(k) for _, k in t.schema) for t in tables.values())
    tables_out = tables
    del tables
    frame_times, _ = _timed_runs(frames, repeat)
    direct_s, frames_s = statistics.median(direct_times), statistics.median(frame_times)
    report: dict[str, Any] = {
        "ingest_s": direct_s, "ingest_runs": direct_times,
        "ingest_GBps": plain / direct_s / 1e9,
        "ingest_first_run_GBps": plain / direct_times[0] / 1e9,
        "ingest_path": "Session.upload_begin/upload_chunk/upload_commit (direct calls)",
        "ingest_note": "first run includes first-touch page faults of the new tables",
        "ingest_plaintext_bytes": plain, "ingest_ciphertext_bytes": prepared.ciphertext_bytes,
        "chunk_size": prepared.chunk_size,
        "chunks": sum(len(u.chunks) for u in prepared.uploads),
        "ingest_frames_s": frames_s, "ingest_frames_runs": frame_times,
        "ingest_frames_GBps": plain / frames_s / 1e9,
        "ingest_frame_overhead_s": frames_s - direct_s,
        "client_encrypt_s": prepared.encrypt_s,
        "host_pack_frames_s": prepared.pack_frames_s,
        "ingest_table_bytes_held": held, "ingest_table_bytes_exact": exact,
    }
    if hint:
        report["ingest_hint"] = _measure_hint(prepared, repeat)
    return report, tables_out


def _row_width(kind: str) -> int:
    from enclave.columns import KIND_WIDTH

    return KIND_WIDTH[kind]


def _measure_hint(prepared: PreparedIngest, repeat: int) -> dict[str, Any]:
    """Staging table without a capacity hint (what the session does) vs sized exactly."""
    session = prepared.new_session()
    out: dict[str, Any] = {}
    for name, hinted in (("unhinted", False), ("hinted", True)):
        times, tables = _timed_runs(lambda h=hinted: _opener_loop(session, prepared, h), repeat)
        del tables
        peak, tables = _traced_peak(lambda h=hinted: _opener_loop(session, prepared, h))
        out[name] = {"s": statistics.median(times), "runs": times,
                     "GBps": prepared.plaintext_bytes / statistics.median(times) / 1e9,
                     "tracemalloc_peak_bytes": peak,
                     "table_bytes_held": sum(t.nbytes for t in tables)}
        del tables
    out["peak_ratio_unhinted_vs_hinted"] = (out["unhinted"]["tracemalloc_peak_bytes"]
                                            / out["hinted"]["tracemalloc_peak_bytes"])
    out["time_ratio_unhinted_vs_hinted"] = out["unhinted"]["s"] / out["hinted"]["s"]
    out["note"] = ("same per-chunk steps as Session.upload_chunk; unhinted = the session's "
                   "staging table today (capacity doubles from the first chunk)")
    return out
