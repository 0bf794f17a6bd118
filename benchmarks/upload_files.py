"""The parties' encrypted uploads for (c), written to files by the clients' real code.

``write_uploads`` plays both clients: a fresh enclave ``Session`` is initialised once (its sealed
state and ``enc_pub`` are written next to the uploads, so a later process can restore an enclave
holding the same keys), then each party's seeded columns (``benchmarks/datagen.py``, one block at
a time) go through ``encode_batch`` and ``UploadEncryptor.records``, and the records are written
exactly as the client sends them over HTTP: a u32 length, then the payload (the first record is
``{header, signature}``, each later one a flag byte and one chunk's ciphertext). By default the
signed header carries ``rows_hint`` as ``Client.upload`` sends it; ``other=True`` also writes the
same data encrypted the other way (``*.other.body``).

Nothing here holds more than one block of plaintext, so writing 100M rows per party needs about
as much memory as writing 1M; the files are as large as the ciphertext (7.8 GB at 100M).

    python -m benchmarks.upload_files --rows N --dir DIR [--no-hint] [--other]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from benchmarks.bench_policy import PARTIES, bench_policy, party_keys
from benchmarks.datagen import SIDES, Shape, blocks, rebatch
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE, UploadEncryptor
from enclave.engine.noise_source import ExactNoise
from enclave.requests.session import Session
from protocol.batch import encode_batch, rows_per_batch
from protocol.upload import RECORD_HEADER

__all__ = ["UploadFile", "Uploads", "write_uploads"]

SEALING_KEY = b"benchmark-sealing-key-32-bytes!!"
_SIDE_OF = dict(zip(PARTIES, SIDES, strict=True))  # party -> datagen side


def _session(sealed: bytes | None, persist: Any = None) -> Session:
    return Session(mode="simulation", quote=lambda report_data: None, sealing_key=SEALING_KEY,
                   load_sealed=lambda policy_hash: sealed,
                   persist=persist or (lambda policy_hash, blob: None), noise=ExactNoise(),
                   clock=time.time, random_bytes=os.urandom, sleep=time.sleep)


def _records(f: BinaryIO) -> Iterator[bytes]:
    while head := f.read(RECORD_HEADER.size):
        (length,) = RECORD_HEADER.unpack(head)
        yield f.read(length)


@dataclass(frozen=True)
class UploadFile:
    """One party's HTTP upload body on disk."""

    dataset: str
    rows: int
    rows_hint: int | None  # what the signed header carries (None: no rows_hint field)
    path: Path

    def begin(self) -> dict[str, bytes]:
        """The ``upload_begin`` body: {header, signature}, from the first record."""
        with self.path.open("rb") as f:
            body: dict[str, bytes] = msgpack.unpackb(next(_records(f)), raw=False)
        return body

    def chunks(self) -> Iterator[tuple[bool, bytes]]:
        """(last, ciphertext) per chunk, read from the file as the host relays them."""
        with self.path.open("rb") as f:
            records = _records(f)
            next(records)
            for record in records:
                yield record[0] == 1, record[1:]


@dataclass(frozen=True)
class Uploads:
    """What ``write_uploads`` left in a directory: restorable enclave state and both uploads."""

    policy_bytes: bytes
    sealed: bytes
    uploads: list[UploadFile]
    other: list[UploadFile]  # the same data with the hint the other way round, or empty
    meta: dict[str, Any]

    def new_session(self) -> Session:
        """A fresh enclave session holding the same keys (restored from the sealed state)."""
        session = _session(self.sealed)
        session.init({"policy": self.policy_bytes})
        return session

    @classmethod
    def load(cls, work: Path) -> Uploads:
        meta = json.loads((work / "meta.json").read_text())

        def files(key: str) -> list[UploadFile]:
            return [UploadFile(u["dataset"], u["rows"], u["rows_hint"], work / u["file"])
                    for u in meta[key]]

        return cls((work / "policy.toml").read_bytes(), (work / "sealed.bin").read_bytes(),
                   files("uploads"), files("other"), meta)


def _write_one(out: Path, encryptor: UploadEncryptor, batches: Iterator[bytes]) -> None:
    with out.open("wb") as f:
        for record in encryptor.records(batches):
            f.write(record)


def write_uploads(rows: int, work: Path, *, rows_hint: bool = True, other: bool = False,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, seed: int = 2024) -> Uploads:
    """Encrypt both parties' ``rows`` seeded rows as their clients would, into ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    keys = party_keys()
    # max_rows = rows: the policy declares what is uploaded, as a real collaboration would.
    policy_bytes, policy = bench_policy(keys, max_rows=rows)
    sealed: list[bytes] = []
    _, ready = _session(None, lambda policy_hash, blob: sealed.append(blob)).init(
        {"policy": policy_bytes})
    shape = Shape(rows, seed)
    meta: dict[str, Any] = {"rows_per_party": rows, "seed": seed, "chunk_size": chunk_size,
                            "uploads": [], "other": [], "plaintext_bytes": 0,
                            "ciphertext_bytes": 0, "chunks": 0, "client_encrypt_s": 0.0}
    variants = [("uploads", rows_hint)] + ([("other", not rows_hint)] if other else [])
    for key, hint in variants:
        for party, dataset_name in PARTIES.items():
            dataset = policy.dataset(dataset_name)
            assert dataset is not None
            schema = dataset.schema()
            step = rows_per_batch(schema, chunk_size)
            batches = (encode_batch(b, schema)
                       for b in rebatch(blocks(shape, _SIDE_OF[party]), step))
            # Client.upload sends rows_hint=table.rows_estimate(): exactly ``rows`` here.
            encryptor = UploadEncryptor(keys[party], policy, dataset, ready["enc_pub"],
                                        chunk_size=chunk_size, rows_hint=rows if hint else None)
            name = f"{dataset_name}.{key}.body"
            start = time.perf_counter()
            _write_one(work / name, encryptor, batches)
            if key == "uploads":
                meta["client_encrypt_s"] += time.perf_counter() - start
                meta["plaintext_bytes"] += encryptor.plaintext_bytes
                meta["ciphertext_bytes"] += encryptor.sent_bytes
                meta["chunks"] += encryptor.chunks
            meta[key].append({"dataset": dataset_name, "rows": rows,
                              "rows_hint": rows if hint else None, "file": name})
    (work / "policy.toml").write_bytes(policy_bytes)
    (work / "sealed.bin").write_bytes(sealed[-1])
    (work / "meta.json").write_text(json.dumps(meta))
    return Uploads.load(work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upload_files",
                                     description="Write both parties' encrypted uploads to DIR.")
    parser.add_argument("--rows", type=int, required=True, metavar="N", help="rows per party")
    parser.add_argument("--dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--no-hint", action="store_true", help="headers without rows_hint")
    parser.add_argument("--other", action="store_true",
                        help="also write the uploads with the hint the other way round")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be positive")
    uploads = write_uploads(args.rows, args.dir, rows_hint=not args.no_hint, other=args.other)
    print(json.dumps(uploads.meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
