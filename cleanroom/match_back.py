"""Map an activation's released identifier digests back to the party's own rows, on its machine.

An activation releases the recipient's *own* identifiers as SHA-256 digests of their normalised
form. To turn them into rows the party's tools can load, the party's own file is hashed again
here with exactly the upload's normalisation and hashing (``cleanroom.tables.open_table``, the
same reader and converter an upload uses, restricted to the identifier column), and every row
whose digest was released is written out as it is in the file (all its columns, as text).

The digests come from a verified saved result (``cleanroom query --save``; the command checks
it offline first) or from the party's own activation export (``cleanroom query --output
FILE.csv`` or ``.json``). Nothing leaves the machine.

The file is read twice: once through ``open_table`` for the digests in row order, then once for
the rows themselves (stdlib ``csv``, or pyarrow for Parquet). If the two passes do not count the
same rows, the mapping is refused rather than guessed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanroom.tables import open_table
from protocol.errors import InvalidInput
from protocol.policy import Dataset

__all__ = ["MatchStats", "digests_from_export", "match_back"]

_DIGEST_COLUMN = "id_sha256"
_BLOCK_ROWS = 65_536


@dataclass(frozen=True)
class MatchStats:
    rows_read: int  # data rows of the party's file
    rows_written: int  # rows whose identifier was released
    released: int  # distinct digests released
    unmatched: int  # released digests no row of the file hashes to


def _hex_digest(text: Any, where: str) -> bytes:
    try:
        digest = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise InvalidInput(f"{where}: not a SHA-256 digest (64 hex digits)")
    return digest


def digests_from_export(path: str | os.PathLike[str]) -> set[bytes]:
    """The digests of an activation export: CSV with an ``id_sha256`` column, or its JSON form.

    :raise InvalidInput: neither, or a value that is not a 64-hex digest.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise InvalidInput(f"{path.name}: not valid JSON") from None
        if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
            doc = doc["result"]  # `cleanroom check --format json` wraps the result
        if not isinstance(doc, dict) or doc.get("kind") != "cohort_activation":
            raise InvalidInput(f"{path.name}: not the export of a cohort_activation result")
        rows = doc.get("rows") if isinstance(doc.get("rows"), list) else []
        return {_hex_digest(row[0] if isinstance(row, list) and row else row, f"{path.name}: row {i}")
                for i, row in enumerate(rows, 1)}
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or _DIGEST_COLUMN not in [h.strip() for h in header]:
        raise InvalidInput(f"{path.name}: expected a CSV with an {_DIGEST_COLUMN!r} column "
                           "(written by `cleanroom query --output FILE.csv`) or a saved result")
    at = [h.strip() for h in header].index(_DIGEST_COLUMN)
    return {_hex_digest(row[at] if len(row) > at else "", f"{path.name}: line {reader.line_num}")
            for row in reader if row}


def _matching_rows(path: Path, dataset: Dataset, released: set[bytes],
                   default_country_code: str | None) -> tuple[list[int], set[bytes], int]:
    """Indices of the data rows whose identifier digest was released, the digests seen, rows."""
    id_only = dataclasses.replace(dataset, dimensions=(), metrics=())
    rows: list[int] = []
    seen: set[bytes] = set()
    start = 0
    with open_table(path, id_only, default_country_code=default_country_code) as table:
        for block in table.blocks(_BLOCK_ROWS):
            raw = block["id"].tobytes()  # (n, 32) uint8, row-major: digest i is raw[32i:32i+32]
            for i in range(len(raw) // 32):
                digest = raw[32 * i:32 * i + 32]
                if digest in released:
                    rows.append(start + i)
                    seen.add(digest)
            start += len(raw) // 32
    return rows, seen, start


def _csv_rows(path: Path) -> Iterator[list[str]]:
    """The header, then each data row, as the upload reader counts them (blank lines skipped)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.reader(f, strict=True):
            if row:
                yield row


def _parquet_rows(path: Path) -> Iterator[list[str]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    yield list(parquet.schema_arrow.names)
    for batch in parquet.iter_batches(batch_size=_BLOCK_ROWS):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for values in zip(*columns, strict=True):
            yield ["" if v is None else str(v) for v in values]


def match_back(own_file: str | os.PathLike[str], dataset: Dataset, released: set[bytes],
               out: io.TextIOBase | Any, *, default_country_code: str | None = None) -> MatchStats:
    """Write to ``out`` (CSV: the file's header, then its rows whose identifier was released).

    :raise InvalidInput: the file cannot be read as the dataset's upload would read it, or the
        two passes disagree on its rows.
    """
    path = Path(own_file)
    wanted, seen, rows_read = _matching_rows(path, dataset, released, default_country_code)
    source = _parquet_rows(path) if path.suffix.lower() in (".parquet", ".pq") else _csv_rows(path)
    writer = csv.writer(out, lineterminator="\n")
    header = next(source, None)
    if header is None:
        raise InvalidInput(f"{path.name}: the file is empty")
    writer.writerow(header)
    targets = iter(wanted)
    target = next(targets, None)
    count = 0
    for index, row in enumerate(source):
        count = index + 1
        if index == target:
            writer.writerow(row)
            target = next(targets, None)
    if count != rows_read:
        raise InvalidInput(f"{path.name}: read {count} rows, but hashing read {rows_read}; the rows "
                           "cannot be mapped safely (is the file changing?)")
    return MatchStats(rows_read, len(wanted), len(released), len(released - seen))
