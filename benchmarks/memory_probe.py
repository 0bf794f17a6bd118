"""Peak resident memory of a real enclave session, ingest and queries, against the memory model.

    python -m benchmarks.memory_probe --rows N [--policy P] [--overlap F] [--json]

Binds fresh party keys into an example policy (``policies/*.toml``) with every dataset's
``max_rows`` set to N, streams N seeded rows per dataset through the real upload path
(``UploadEncryptor`` -> ``Session.upload_begin/chunk/commit``, one block of plaintext at a time),
then asks every named analysis and template of that policy (with its widest grouping) and, with
event times, the demo's three SQL queries (``cleanroom/demo.py``) through ``Session.query``, with no
release padding. The kernel's high-water mark of resident memory (VmHWM) is read after ingest
and after each query; nothing else lives in the process, so each reading is what this enclave
held at its busiest. ``--overlap 1`` makes every row of both datasets match, the worst case for
the join's temporaries. ``tests/benchmarks/test_memory_model.py`` runs it at 1M rows and checks
``benchmarks/memory_model.py`` is an upper bound of every reading.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from benchmarks.bench_policy import EXAMPLE_POLICY
from benchmarks.datagen import Shape, blocks, rebatch
from benchmarks.measure import memory_status, reset_peak_rss
from benchmarks.memory_model import enclave_bytes
from cleanroom.keys import PartyKeys, bind_keys_into_policy
from cleanroom.upload_crypto import DEFAULT_CHUNK_SIZE, UploadEncryptor
from enclave.engine.noise_source import ExactNoise
from enclave.requests.session import Session
from protocol.batch import encode_batch, rows_per_batch
from protocol.crypto import QUERY_LABEL
from protocol.policy import ColumnRef, Dataset, Policy, parse_policy
from protocol.upload import RECORD_HEADER
from protocol.wire import pack_document

__all__ = ["ask", "every_query", "loaded_session", "probe", "sized_policy", "upload_rows"]

_SIDES = {"impressions": "publisher", "conversions": "advertiser"}


def sized_policy(path: Path, rows: int) -> tuple[bytes, Policy, dict[str, PartyKeys]]:
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(r"^max_rows = [0-9_]+", f"max_rows = {rows}", text, flags=re.M)
    if count != 2:
        raise RuntimeError(f"{path}: expected two max_rows entries")
    keys = {party: PartyKeys.generate(party) for party in _SIDES.values()}
    raw, _ = bind_keys_into_policy(text.encode(), {p: k.public() for p, k in keys.items()})
    return raw, parse_policy(raw), keys


def _columns(shape: Shape, dataset: Dataset) -> Iterator[dict[str, np.ndarray]]:
    """The dataset's columns block by block: datagen's ids, other columns uniform in range."""
    for index, block in enumerate(blocks(shape, _SIDES[dataset.name])):
        rng = np.random.default_rng([shape.seed, 7, index])
        n = len(block["id"])
        out = {"id": block["id"]}
        for d in dataset.dimensions:
            out[d.name] = rng.integers(0, len(d.values), n).astype(np.uint16)
        for m in dataset.metrics:
            out[m.name] = rng.integers(m.min, m.max + 1, n, dtype=np.int64)
        for t in dataset.timestamps:
            out[t.name] = rng.integers(t.min, t.max + 1, n, dtype=np.int64)
        yield out


def upload_rows(session: Session, enc_pub: bytes, policy: Policy, keys: PartyKeys, dataset: Dataset,
            shape: Shape) -> None:
    schema = dataset.schema()
    batches = (encode_batch(b, schema)
               for b in rebatch(_columns(shape, dataset), rows_per_batch(schema, DEFAULT_CHUNK_SIZE)))
    encryptor = UploadEncryptor(keys, policy, dataset, enc_pub, rows_hint=shape.rows)
    records = encryptor.records(batches)
    _, started = session.upload_begin(msgpack.unpackb(next(records)[RECORD_HEADER.size:], raw=False))
    stream = started["stream"]
    for index, record in enumerate(records):
        payload = record[RECORD_HEADER.size:]
        session.upload_chunk({"stream": stream, "index": index, "last": payload[0] == 1,
                              "data": payload[1:]})
    kind, _ = session.upload_commit({"stream": stream})
    assert kind == "upload_receipt", kind


def ask(session: Session, policy: Policy, keys: PartyKeys, analysis: str,
           params: dict[str, Any], plan: dict[str, Any] | None = None, sql: str | None = None) -> None:
    request = pack_document("query_request", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "party": keys.party_id, "analysis": analysis, "params": params, "nonce": os.urandom(16),
        "issued_at": int(time.time()),
        **({"plan": plan, "sql": sql} if plan is not None else {}),
    })
    kind, _ = session.query({"request": request, "signature": keys.sign(QUERY_LABEL, request)})
    assert kind == "query_result", kind


Query = tuple[str, str, dict[str, Any], dict[str, Any] | None, str | None]


def _values(policy: Policy, ref: ColumnRef) -> tuple[str, ...]:
    dataset = policy.dataset(ref.dataset)
    dimension = dataset.dimension(ref.column) if dataset is not None else None
    assert dimension is not None, ref
    return dimension.values


def every_query(policy: Policy) -> list[Query]:
    """(party, analysis, params, plan, sql): every named analysis and template of the policy,
    asked with its widest grouping, then the demo's SQL queries when the data has event times."""
    from cleanroom.demo import DEMO_SQL
    from cleanroom.sql import compile_query

    out: list[Query] = []
    for a in policy.analyses:
        if a.kind == "cohort_activation":
            params: dict[str, Any] = {"cohort": {str(a.group_by[0]): _values(policy, a.group_by[0])[0]}}
        else:
            params = {"group_by": [str(c) for c in a.group_by[:a.max_group_by]],
                      **({"metric": str(a.metrics[0])} if a.metrics else {})}
        out.append((a.requesters[0], a.id, params, None, None))
    for t in policy.templates:
        params = {name: [str(c) for c in choice.columns[:choice.max]]
                  for name, choice in t.group_params.items()}
        params.update({name: list(_values(policy, ref)[:2]) for name, ref in t.params.items()})
        out.append((t.requesters[0], t.id, params, None, None))
    conversions = policy.dataset("conversions")
    if conversions is not None and conversions.timestamp("ts") is not None:
        for i, (party, text) in enumerate(DEMO_SQL):
            out.append((party, f"sql-{i + 1}", {}, compile_query(text, policy, party).wire, text))
    return out


def loaded_session(policy_path: Path, shape: Shape) -> tuple[Session, Policy, dict[str, PartyKeys]]:
    """A simulated ``Session`` of ``policy_path`` with every ``max_rows`` set to ``shape.rows``,
    both datasets uploaded from ``shape``; its ``sleep`` does nothing (no release padding)."""
    policy_bytes, policy, keys = sized_policy(policy_path, shape.rows)
    session = Session(mode="simulation", quote=lambda report_data: None, sealing_key=b"k" * 32,
                      load_sealed=lambda policy_hash: None, persist=lambda policy_hash, blob: None,
                      noise=ExactNoise(), clock=time.time, random_bytes=os.urandom,
                      sleep=lambda seconds: None)
    _, ready = session.init({"policy": policy_bytes})
    for name, side in _SIDES.items():
        dataset = policy.dataset(name)
        assert dataset is not None
        upload_rows(session, ready["enc_pub"], policy, keys[side], dataset, shape)
    return session, policy, keys


def probe(rows: int, policy_path: Path = EXAMPLE_POLICY, overlap: float = 0.3) -> dict[str, Any]:
    """Ingest and query ``rows`` rows per dataset; VmHWM after each step, and the model."""
    at_start = memory_status()
    # overlap 1 with equal rows per user: the same users on both sides, every row matched
    shape = (Shape(rows, overlap=1.0, advertiser_rows_per_user=4.0) if overlap >= 1
             else Shape(rows, overlap=overlap))
    session, policy, keys = loaded_session(policy_path, shape)
    readings = {"ingest": memory_status()["VmHWM"]}
    for party, analysis, params, plan, sql in every_query(policy):
        reset_peak_rss()
        ask(session, policy, keys[party], "" if plan is not None else analysis, params, plan, sql)
        readings[analysis] = memory_status()["VmHWM"]
    model = enclave_bytes(policy)
    return {"rows": rows, "policy": policy_path.name, "overlap": overlap,
            "at_start": at_start, "peak_bytes": readings, "model_bytes": model.total,
            "model": model.parts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_probe",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, metavar="N")
    parser.add_argument("--policy", type=Path, default=EXAMPLE_POLICY)
    parser.add_argument("--overlap", type=float, default=0.3,
                        help="share of the publisher's users the advertiser also has; 1: every "
                             "row of both datasets matches")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = probe(args.rows, args.policy, args.overlap)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.rows:,} rows per dataset, {report['policy']}, overlap {args.overlap}: "
              f"model {report['model_bytes'] / 2**20:.0f} MiB")
        for step, peak in report["peak_bytes"].items():
            share = peak / report["model_bytes"]
            print(f"  {step:24s} VmHWM {peak / 2**20:8.0f} MiB  ({share:.2f} of the model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
