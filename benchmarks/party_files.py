"""Party files for the HTTP benchmark: the seeded columns as one CSV or Parquet file per dataset.

The identifier column holds ``u<first 8 digest bytes as a decimal>@example.com``: one email per
benchmark user, so both parties' files describe the same join as the in-process figures (the
digests differ, being SHA-256 of these emails). Other columns hold the policy's values as text,
the way a party's export would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.bench_policy import dimension_values
from benchmarks.datagen import Parties

__all__ = ["write_party_files"]


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
