"""The enclave's memory model: what a policy's ``max_rows`` need, and the ``enclave_size`` to match.

    python -m benchmarks.memory_model [POLICY ...] [--rows N]

Without EDMM every byte the enclave maps, touched or not, must fit in the manifest's
``sgx.enclave_size``, a power of two fixed at signing time (docs/scale-out.md). The enclave needs,
for the datasets ``d`` of a policy:

    data    = sum_d max_rows_d * (row_bytes_d + KEY_CACHE)    tables + their cached join keys
    staging = max_d max_rows_d * row_bytes_d                  one upload in flight (a replace)
    query   = QUERY_PER_ROW * sum_d max_rows_d + QUERY_FIXED  the core's temporaries
    fixed   = RUNTIME + GRAMINE + INGEST
    need    = data + staging + query + fixed
    enclave_size = the next power of two >= HEADROOM * need

``row_bytes`` is the batch layout's (``protocol/batch.py`` ``KIND_WIDTH``): 32 for the id, 2 per
dimension, 8 per metric or timestamp. ``QUERY_PER_ROW`` bounds every query the enclave answers:
measured (``benchmarks/memory_probe.py``) as the growth of peak resident memory over the tables
during each of the demo's analyses, template and SQL queries, with every row of both datasets
matched (the worst case for the join), at 0.5M-4M rows per dataset, then rounded up. The test
``tests/benchmarks/test_memory_model.py`` re-measures it and fails if any query exceeds the
model, and checks the example policies fit the manifest's ``enclave_size``.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from protocol.batch import KIND_WIDTH
from protocol.policy import Dataset, Policy, parse_policy

__all__ = ["Estimate", "enclave_bytes", "enclave_size", "manifest_enclave_size", "max_rows_for",
           "row_bytes"]

MiB = 1 << 20
KEY_CACHE = 8  # ColumnarTable.join_keys keeps one uint64 keyed join key per row once queried
# Per row of the policy's datasets, the peak over every query of the example policies with every
# row matched: measured up to 46 bytes (the reach template's frequency histogram, 0.5M->1.5M
# rows; 107 before bounding was rewritten); docs/scale-out.md has the table. Kept close to the
# measurement on purpose: the test re-measures it, so a query that needs more fails there.
QUERY_PER_ROW = 56
QUERY_FIXED = 96 * MiB  # chunk-sized temporaries (1M-element steps), independent of the rows
RUNTIME = 224 * MiB  # VmPeak after the enclave's imports (160 MiB) + one more malloc arena (64)
GRAMINE = 128 * MiB  # LibOS/PAL heap, 8 x 2 MiB stacks, manifest and trusted-file table (estimate)
INGEST = 48 * MiB  # one 8 MiB request frame, its 8 MiB plaintext, 4 chunks waiting for their hash
HEADROOM = 1.25  # fragmentation of the enclave's address space, result and frame buffers
MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "cleanroom-enclave.manifest.template"


def row_bytes(dataset: Dataset) -> int:
    """Bytes per row of a dataset's columns as the enclave holds them."""
    return sum(KIND_WIDTH[kind] for _, kind in dataset.schema())


@dataclass(frozen=True)
class Estimate:
    parts: dict[str, int]  # data, staging, query, fixed

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def _estimate(rows_and_widths: list[tuple[int, int]]) -> Estimate:
    rows = sum(r for r, _ in rows_and_widths)
    return Estimate({
        "data": sum(r * (w + KEY_CACHE) for r, w in rows_and_widths),
        "staging": max((r * w for r, w in rows_and_widths), default=0),
        "query": QUERY_PER_ROW * rows + QUERY_FIXED,
        "fixed": RUNTIME + GRAMINE + INGEST,
    })


def enclave_bytes(policy: Policy, *, rows: int | None = None) -> Estimate:
    """What an enclave needs for ``policy`` (every dataset at ``rows`` rows, if given)."""
    return _estimate([(d.max_rows if rows is None else rows, row_bytes(d)) for d in policy.datasets])


def enclave_size(need: int) -> int:
    """The power of two ``sgx.enclave_size`` for ``need`` bytes, with ``HEADROOM``."""
    size = 1
    while size < HEADROOM * need:
        size *= 2
    return size


def max_rows_for(policy: Policy, size: int) -> int:
    """The largest equal ``max_rows`` for every dataset of ``policy`` that fits ``size`` bytes."""
    lo, hi = 0, 1 << 40
    while lo < hi:  # the need grows with the rows: bisect
        mid = (lo + hi + 1) // 2
        if HEADROOM * enclave_bytes(policy, rows=mid).total <= size:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _size_bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    number, unit = re.fullmatch(r"(\d+)([KMGT]?)", text.strip()).groups()  # type: ignore[union-attr]
    return int(number) * units.get(unit, 1)


def manifest_enclave_size(path: Path = MANIFEST) -> int:
    """``sgx.enclave_size`` of the manifest template, in bytes."""
    found = re.search(r'^sgx\.enclave_size\s*=\s*"([^"]+)"', path.read_text(encoding="utf-8"), re.M)
    if found is None:
        raise ValueError(f"{path}: no sgx.enclave_size")
    return _size_bytes(found.group(1))


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.2f} GiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_model",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("policies", nargs="*", type=Path,
                        default=sorted(Path(__file__).resolve().parents[1].glob(
                            "policies/advertiser-*.toml")))
    parser.add_argument("--rows", type=int, action="append", default=[], metavar="N",
                        help="also size every dataset at N rows (repeatable)")
    args = parser.parse_args(argv)
    shipped = manifest_enclave_size()
    for path in args.policies:
        policy = parse_policy(path.read_bytes())
        widths = ", ".join(f"{d.name} {row_bytes(d)} B/row" for d in policy.datasets)
        print(f"{path.name} ({widths})")
        for rows in [None, *args.rows]:
            est = enclave_bytes(policy, rows=rows)
            label = "as declared" if rows is None else f"{rows:,} rows each"
            parts = ", ".join(f"{k} {_gib(v)}" for k, v in est.parts.items())
            print(f"  {label}: need {_gib(est.total)} ({parts}) -> enclave_size "
                  f"{_gib(enclave_size(est.total))}")
        print(f"  max_rows per dataset for the manifest's {_gib(shipped)}: "
              f"{max_rows_for(policy, shipped):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
