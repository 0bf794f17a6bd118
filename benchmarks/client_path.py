"""(e) the party's client on real files: read, normalise, hash, encode and encrypt, no network.

Setup, not timed: the benchmark's seeded data written as the parties' CSV and Parquet files
(``benchmarks/party_files.py``: one email per user, dimensions as text, values as decimals).

Timed, per file, exactly the work ``Client.upload`` does between opening the file and handing
records to the HTTP connection: ``open_table`` (the header check and the hashing workers'
start), ``rows_estimate`` (the row count signed as ``rows_hint``), ``Table.blocks`` (pyarrow's
streaming reader, vectorised normalisation and mapping, identifiers hashed on every core) and
``encode_batch`` + ``UploadEncryptor.records`` (AES-256-GCM and the upload digest). The records
are counted and dropped, as a socket would. ``csv_rows_per_s`` and ``parquet_rows_per_s`` are the
rows of both parties over the time of both files.

    python -m benchmarks.client_path --rows N [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_policy import PARTIES, bench_policy, party_keys
from benchmarks.datagen import Parties, generate
from benchmarks.party_files import write_party_files

__all__ = ["measure_client", "time_file"]


def time_file(path: Path, policy: Any, dataset_name: str, keys: Any, enc_pub: bytes) -> dict[str, Any]:
    """The client's upload work on one file, as ``Client.upload`` does it, minus the socket."""
    from cleanroom.tables import open_table
    from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE, UploadEncryptor
    from protocol.batch import encode_batch, rows_per_batch

    dataset = policy.dataset(dataset_name)
    schema = dataset.schema()
    start = time.perf_counter()
    with open_table(path, dataset) as table:
        hint = table.rows_estimate()
        encryptor = UploadEncryptor(keys, policy, dataset, enc_pub, rows_hint=hint)
        batches = (encode_batch(columns, schema)
                   for columns in table.blocks(rows_per_batch(schema, DEFAULT_CHUNK_SIZE)))
        sent = sum(len(record) for record in encryptor.records(batches))
        rows = table.rows_uploaded
    elapsed = time.perf_counter() - start
    size = path.stat().st_size
    return {"rows": rows, "s": elapsed, "rows_per_s": rows / elapsed, "file_bytes": size,
            "MBps": size / elapsed / 1e6, "sent_bytes": sent}


def measure_client(parties: Parties, *, work_dir: Path | None = None,
                   formats: tuple[str, ...] = ("csv", "parquet")) -> dict[str, Any]:
    """Write both parties' files in each format, then time the client on each file once."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    keys = party_keys()
    _, policy = bench_policy(keys, max_rows=max(len(parties.publisher["id"]), 1))
    enc_pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    work = Path(tempfile.mkdtemp(prefix="cleanroom-bench-client-", dir=work_dir))
    report: dict[str, Any] = {"cores": len(os.sched_getaffinity(0)), "load_avg_at_start": os.getloadavg()}
    try:
        for fmt in formats:
            start = time.perf_counter()
            files = write_party_files(parties, work, fmt)
            report[f"{fmt}_write_files_s"] = time.perf_counter() - start
            per_file = {dataset: time_file(files[dataset], policy, dataset, keys[party], enc_pub)
                        for party, dataset in PARTIES.items()}
            for path in files.values():
                path.unlink()
            report[fmt] = per_file
            rows = sum(f["rows"] for f in per_file.values())
            report[f"{fmt}_rows_per_s"] = rows / sum(f["s"] for f in per_file.values())
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client_path",
                                     description="(e) the client alone on CSV and Parquet files.")
    parser.add_argument("--rows", type=int, default=1_000_000, metavar="N",
                        help="rows per party (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    report = measure_client(generate(args.rows))
    if args.json:
        print(json.dumps(report))
    else:
        for fmt in ("csv", "parquet"):
            files = ", ".join(f"{d} {f['s']:.2f} s ({f['MBps']:.0f} MB/s)" for d, f in report[fmt].items())
            print(f"client  {fmt}: {report[f'{fmt}_rows_per_s']:,.0f} rows/s ({files})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
