"""(c) ingest through the REAL enclave upload path, with the client's real encryption.

Not timed: each party's ``cleanroom.upload_crypto.UploadEncryptor`` turns the benchmark's columns
into the HTTP record stream, written to a file (``benchmarks/upload_files.py``; by default the
signed header carries ``rows_hint`` as ``Client.upload`` sends it, so ``Session.upload_begin``
sizes each staging table once). The records are read back one at a time and split into what the
host relays (``upload_begin`` body, then per chunk ``{stream, index, last, data}``), exactly as
``host/upload_stream.py`` and ``host/relay.py`` do: whatever the size, one chunk of ciphertext
is in memory at a time, as in the real enclave.

Timed, per run, on a fresh ``enclave.requests.session.Session`` restored from the same sealed
state (so the enclave keys, and therefore the encrypted records, stay valid from run to run):

* ``direct``: ``Session.upload_begin`` -> ``upload_chunk`` for every chunk -> ``upload_commit``
  for both parties: what the enclave does per upload, minus the socket and msgpack framing;
* ``frames``: the same through ``enclave.requests.dispatch.handle_frame`` with real request
  frames: adds the enclave's msgpack unpack of each 4-8 MiB frame and the packing of its reply.

``*_s`` counts only the time inside the enclave's calls; ``*_loop_s`` the whole loop, including
reading each record from the file (page cache, or disk for files larger than it) as the host's
relay would receive it. The enclave hashes each chunk on a second thread, which may go on
working while the next record is read, so the first figure can flatter the enclave by up to
that read time and the second cannot.

``compare`` (needs the ``other`` uploads) runs the same data without the hint when the main path
has it, and vice versa: time and tracemalloc peak (NumPy reports its buffers to tracemalloc).

    python -m benchmarks.enclave_ingest --rows N [--no-hint] [--repeat K] [--json]

runs (c) alone in a fresh process (its first run pays the page faults a new enclave pays).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.upload_files import UploadFile, Uploads, write_uploads
from enclave.engine.columns import ColumnarTable
from enclave.requests.dispatch import handle_frame
from enclave.requests.session import Session
from protocol.batch import KIND_WIDTH
from protocol.wire import pack, unpack

__all__ = ["exact_bytes", "measure_ingest", "profile_variant", "run_ingest"]

Path_ = Callable[[Session, list[UploadFile]], float]  # returns seconds spent inside the enclave


def _direct(session: Session, uploads: list[UploadFile]) -> float:
    inside = 0.0
    for upload in uploads:
        begin = upload.begin()
        t = time.perf_counter()
        _, started = session.upload_begin(begin)
        inside += time.perf_counter() - t
        stream = started["stream"]
        for index, (last, data) in enumerate(upload.chunks()):
            body = {"stream": stream, "index": index, "last": last, "data": data}
            t = time.perf_counter()
            session.upload_chunk(body)
            inside += time.perf_counter() - t
        t = time.perf_counter()
        kind, _ = session.upload_commit({"stream": stream})
        inside += time.perf_counter() - t
        assert kind == "upload_receipt", kind
    return inside


def _frames(session: Session, uploads: list[UploadFile]) -> float:
    inside = 0.0

    def call(frame: bytes) -> None:
        nonlocal inside
        t = time.perf_counter()
        reply = unpack(handle_frame(session, frame))
        inside += time.perf_counter() - t
        if reply.type == "error":  # an error frame would otherwise pass silently
            raise AssertionError(f"enclave refused a benchmark frame: {reply.body}")

    for stream, upload in enumerate(uploads, start=1):
        call(pack("upload_begin", upload.begin()))
        for index, (last, data) in enumerate(upload.chunks()):
            call(pack("upload_chunk", {"stream": stream, "index": index, "last": last,
                                       "data": data}))
        call(pack("upload_commit", {"stream": stream}))
    return inside


def _tables(session: Session) -> dict[str, ColumnarTable]:
    # The session exposes its tables only to queries; the benchmark reads them to run the core
    # on exactly what the real upload path produced.
    state = session._state
    assert state is not None
    return dict(state.tables)


def run_ingest(source: Uploads, uploads: list[UploadFile], path: Path_ = _direct,
               ) -> tuple[float, float, dict[str, ColumnarTable]]:
    """One ingest on a fresh session: (seconds inside the enclave, loop seconds, its tables)."""
    session = source.new_session()  # init + unseal: ~1 ms, not worth excluding
    start = time.perf_counter()
    inside = path(session, uploads)
    return inside, time.perf_counter() - start, _tables(session)


def _timed_runs(source: Uploads, uploads: list[UploadFile], repeat: int, path: Path_ = _direct,
                ) -> tuple[list[float], list[float], dict[str, ColumnarTable]]:
    inside, loop, tables = [], [], None
    for _ in range(repeat):
        tables = None  # drop the previous run's tables first, as a restarted enclave would
        t_in, t_loop, tables = run_ingest(source, uploads, path)
        inside.append(t_in)
        loop.append(t_loop)
    assert tables is not None
    return inside, loop, tables


def exact_bytes(tables: Mapping[str, ColumnarTable]) -> int:
    """Column bytes of the filled rows (what exactly sized tables hold)."""
    return sum(t.rows * sum(KIND_WIDTH[k] for _, k in t.schema) for t in tables.values())


def _hints(uploads: list[UploadFile]) -> dict[str, int | None]:
    return {u.dataset: u.rows_hint for u in uploads}


def measure_ingest(source: Uploads, repeat: int, *, compare: bool = True, frames: bool = True,
                   ) -> tuple[dict[str, Any], dict[str, ColumnarTable]]:
    """Time the real path (first run separately) and return the tables of its last run.

    The frames runs (if any) come first and are dropped, so that only one set of tables is ever
    alive; ``compare`` runs after the tables are returned (call ``measure_hint``).
    """
    plain = source.meta["plaintext_bytes"]
    report: dict[str, Any] = {}
    if frames:
        f_in, f_loop, tables = _timed_runs(source, source.uploads, repeat, _frames)
        del tables
        report.update(ingest_frames_s=statistics.median(f_in), ingest_frames_runs=f_in,
                      ingest_frames_GBps=plain / statistics.median(f_in) / 1e9,
                      ingest_frames_loop_s=statistics.median(f_loop))
    inside, loop, tables = _timed_runs(source, source.uploads, repeat)
    direct_s = statistics.median(inside)
    report.update({
        "ingest_s": direct_s, "ingest_runs": inside,
        "ingest_GBps": plain / direct_s / 1e9,
        "ingest_first_run_GBps": plain / inside[0] / 1e9,
        "ingest_loop_s": statistics.median(loop), "ingest_loop_runs": loop,
        "ingest_loop_GBps": plain / statistics.median(loop) / 1e9,
        "ingest_path": "Session.upload_begin/upload_chunk/upload_commit (direct calls), records "
                       "read one at a time from the parties' upload files",
        "ingest_rows_hint": _hints(source.uploads),
        "ingest_note": ("ingest_s: inside the enclave's calls; ingest_loop_s: with the reads of "
                        "the records. The first direct run follows the frames runs when those "
                        "are measured, so it reuses their pages: fresh-process first runs come "
                        "from python -m benchmarks.enclave_ingest"),
        "ingest_plaintext_bytes": plain, "ingest_ciphertext_bytes": source.meta["ciphertext_bytes"],
        "chunk_size": source.meta["chunk_size"], "chunks": source.meta["chunks"],
        "client_encrypt_s": source.meta["client_encrypt_s"],
        "ingest_table_bytes_held": sum(t.nbytes for t in tables.values()),
        "ingest_table_bytes_exact": exact_bytes(tables),
    })
    if frames:
        report["ingest_frame_overhead_s"] = report["ingest_frames_s"] - direct_s
    return report, tables


def profile_variant(source: Uploads, uploads: list[UploadFile], repeat: int) -> dict[str, Any]:
    """Timed runs of the direct path on ``uploads``, then one run under tracemalloc."""
    inside, loop, tables = _timed_runs(source, uploads, repeat)
    held = sum(t.nbytes for t in tables.values())
    del tables
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        run_ingest(source, uploads)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    median = statistics.median(inside)
    plain = source.meta["plaintext_bytes"]
    return {"rows_hint": _hints(uploads), "s": median, "runs": inside,
            "loop_s": statistics.median(loop), "GBps": plain / median / 1e9,
            "first_run_GBps": plain / inside[0] / 1e9,
            "tracemalloc_peak_bytes": peak, "table_bytes_held": held}


def measure_hint(source: Uploads, repeat: int) -> dict[str, Any]:
    """The real Session path with the headers' rows_hint vs the same uploads without it."""
    if not source.other:
        raise ValueError("measure_hint needs the uploads written with other=True")
    hinted_main = all(u.rows_hint is not None for u in source.uploads)
    hinted, unhinted = ((source.uploads, source.other) if hinted_main
                        else (source.other, source.uploads))
    out: dict[str, Any] = {}
    # Without the hint first: it allocates (and, with the tuned glibc, keeps) the most memory,
    # so the hinted runs after it never pay a page fault the unhinted ones did not.
    for name, uploads in (("without_hint", unhinted), ("with_hint", hinted)):
        out[name] = profile_variant(source, uploads, repeat)
    out["peak_ratio_without_vs_with"] = (out["without_hint"]["tracemalloc_peak_bytes"]
                                         / out["with_hint"]["tracemalloc_peak_bytes"])
    out["time_ratio_without_vs_with"] = out["without_hint"]["s"] / out["with_hint"]["s"]
    out["note"] = ("both through Session.upload_begin/chunk/commit; without_hint = a party whose "
                   "client omits rows_hint (the staging table doubles from the first chunk); "
                   "medians are warm (same process); first-run costs: python -m "
                   "benchmarks.enclave_ingest [--no-hint], one fresh process each")
    return out


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
    from benchmarks.tuning import retune

    retune(argv, "benchmarks.enclave_ingest")
    work = Path(tempfile.mkdtemp(prefix="cleanroom-ingest-"))
    try:
        source = write_uploads(args.rows, work, rows_hint=not args.no_hint)
        report = {"rows_per_party": args.rows, "raw_bytes": source.meta["plaintext_bytes"],
                  **profile_variant(source, source.uploads, max(1, args.repeat))}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.rows:,} rows/party, rows_hint {report['rows_hint']}: first run "
              f"{report['runs'][0]:.3f} s ({report['first_run_GBps']:.2f} GB/s), median "
              f"{report['s']:.3f} s ({report['GBps']:.2f} GB/s); tracemalloc peak "
              f"{report['tracemalloc_peak_bytes'] / 1e6:.0f} MB, tables hold "
              f"{report['table_bytes_held'] / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
