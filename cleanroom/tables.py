"""Read a party's table (CSV or Parquet) and turn it into the policy dataset's upload columns.

The output of every block is a dict of NumPy arrays keyed like ``Dataset.schema()``:

* ``id``: ``(n, 32)`` uint8, SHA-256 of the normalised identifier from the column the policy
  names (``cleanroom.identifiers``);
* each dimension: ``<u2`` index of the value in the policy's declared ``values``;
* each metric: ``<i8`` exact fixed point at the policy's ``scale`` (parsed with ``Decimal``; more
  decimals than the scale is an error, never rounded). Clamping is the enclave's job.

Files are read in blocks of at most ``block_rows`` rows, so memory stays bounded whatever the
file size. Columns the policy does not name are ignored and listed in ``extra_columns``: they are
never read into an upload. Every problem is an ``InvalidInput`` naming the line (CSV) or row
(Parquet) and the column. Messages do not quote cell values, with one exception: a refused
identifier is quoted (``IdentifierError``, at most 80 characters) so that the party can find it
in its own file; these messages are only ever shown on the party's machine.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from cleanroom.identifiers import DIGEST_SIZE, normalizer
from protocol.errors import InvalidInput
from protocol.policy import Dataset, Metric

__all__ = ["CsvTable", "ParquetTable", "Table", "open_table", "parse_fixed_point", "read_all"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_LISTED = 12  # how many names an error message lists before "..."


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return (shown + f", ... ({more} more)") if more > 0 else (shown or "(none)")


def parse_fixed_point(text: str, scale: int) -> int:
    """Exact ``Decimal(text) * 10**scale`` as an int64.

    :raise ValueError: not a finite decimal, more decimal places than ``scale``, or out of the
        int64 range. Integer arithmetic on the digits: no context precision can round it.
    """
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not number.is_finite():
        raise ValueError("not a finite number")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    mantissa = int("".join(map(str, digits)) or "0")
    shift = exponent + scale
    if shift >= 0:
        if shift > 20 and mantissa:  # anything this large overflows int64 anyway
            raise ValueError("out of the 64-bit range")
        value = mantissa * 10**shift
    else:
        value, remainder = divmod(mantissa, 10**-shift)
        if remainder:
            raise ValueError(f"has more decimal places than the policy's scale ({scale})")
    value = -value if sign else value
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("out of the 64-bit range")
    return value


class _Converter:
    """Turns raw per-column cell lists of one block into the upload arrays."""

    def __init__(self, dataset: Dataset, default_country_code: str | None) -> None:
        self.dataset = dataset
        self.normalise = normalizer(dataset.id_normalization, default_country_code=default_country_code)
        self.codes = {d.name: {v: i for i, v in enumerate(d.values)} for d in dataset.dimensions}

    def convert(self, cells: dict[str, list[Any]], locate: Callable[[int], str]) -> dict[str, np.ndarray]:
        ds = self.dataset
        out: dict[str, np.ndarray] = {"id": self._ids(cells[ds.id_column], locate)}
        for dim in ds.dimensions:
            out[dim.name] = self._dimension(dim.name, cells[dim.name], locate)
        for metric in ds.metrics:
            out[metric.name] = self._metric(metric, cells[metric.name], locate)
        return out

    def _ids(self, values: list[Any], locate: Callable[[int], str]) -> np.ndarray:
        column = self.dataset.id_column
        digests = []
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise InvalidInput(f"{locate(i)}, column {column!r}: identifier is missing or not text")
            try:
                digests.append(hashlib.sha256(self.normalise(value).encode("utf-8")).digest())
            except UnicodeEncodeError:  # a lone surrogate in an ``exact`` identifier
                raise InvalidInput(f"{locate(i)}, column {column!r}: not valid Unicode text") from None
            except ValueError as exc:  # IdentifierError: its message quotes the refused value
                raise InvalidInput(f"{locate(i)}, column {column!r}: {exc}") from None
        ids = np.empty((len(values), DIGEST_SIZE), dtype=np.uint8)
        if digests:
            ids[:] = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, DIGEST_SIZE)
        return ids

    def _dimension(self, name: str, values: list[Any], locate: Callable[[int], str]) -> np.ndarray:
        codes = self.codes[name]
        out = np.empty(len(values), dtype="<u2")
        for i, value in enumerate(values):
            code = codes.get(value.strip()) if isinstance(value, str) else None
            if code is None:
                raise InvalidInput(
                    f"{locate(i)}, column {name!r}: value is not one of the policy's declared "
                    f"values ({_listing(list(codes))})"
                )
            out[i] = code
        return out

    def _metric(self, metric: Metric, values: list[Any], locate: Callable[[int], str]) -> np.ndarray:
        out = np.empty(len(values), dtype="<i8")
        for i, value in enumerate(values):
            try:
                if value is None or isinstance(value, bool):
                    raise ValueError("value is missing")
                # Floats (Parquet) go through their shortest repr: 0.1 means the decimal 0.1.
                out[i] = parse_fixed_point(value if isinstance(value, str) else str(value), metric.scale)
            except ValueError as exc:
                raise InvalidInput(f"{locate(i)}, column {metric.name!r}: {exc}") from None
        return out


class Table:
    """A source table opened against one policy dataset; iterate ``blocks(block_rows)``."""

    def __init__(self, path: Path, dataset: Dataset, default_country_code: str | None) -> None:
        self.path = path
        self.dataset = dataset
        self.total_bytes: int | None = path.stat().st_size
        self.bytes_read = 0
        self.rows_read = 0
        self.extra_columns: tuple[str, ...] = ()
        self._converter = _Converter(dataset, default_country_code)

    @property
    def needed_columns(self) -> tuple[str, ...]:
        ds = self.dataset
        return (ds.id_column, *(d.name for d in ds.dimensions), *(m.name for m in ds.metrics))

    def _check_columns(self, found: Sequence[str]) -> None:
        ds = self.dataset
        if len(set(found)) != len(found):
            raise InvalidInput(f"{self.path.name}: the header names a column twice")
        if ds.id_column not in found:
            raise InvalidInput(
                f"column {ds.id_column!r} named by the policy for dataset {ds.name!r} is missing; "
                f"found: {_listing(found)}"
            )
        for role, names in (("dimension", [d.name for d in ds.dimensions]),
                            ("metric", [m.name for m in ds.metrics])):
            for name in names:
                if name not in found:
                    raise InvalidInput(
                        f"{role} column {name!r} of dataset {ds.name!r} is missing; "
                        f"found: {_listing(found)}"
                    )
        self.extra_columns = tuple(c for c in found if c not in self.needed_columns)

    def _count(self, rows: int) -> None:
        self.rows_read += rows
        if self.rows_read > self.dataset.max_rows:
            raise InvalidInput(f"dataset {self.dataset.name!r} allows at most "
                               f"{self.dataset.max_rows} rows; the file has more")

    def blocks(self, block_rows: int) -> Iterator[dict[str, np.ndarray]]:
        raise NotImplementedError

    def rows_estimate(self) -> int | None:
        """About how many rows the file holds, cheaply (sent as the upload's size hint)."""
        return None

    def close(self) -> None:
        """Release the underlying file."""

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CsvTable(Table):
    """UTF-8 CSV with a header line (a BOM is accepted), read with the stdlib ``csv`` module."""

    def rows_estimate(self) -> int | None:
        # Line count minus the header: exact unless a quoted field spans lines. One extra pass
        # over the file at disk speed buys the enclave a single, exactly sized allocation.
        lines = 0
        with self.path.open("rb") as f:
            while block := f.read(1 << 22):
                lines += block.count(b"\n")
        return max(lines - 1, 0)

    def __init__(self, path: Path, dataset: Dataset, default_country_code: str | None) -> None:
        super().__init__(path, dataset, default_country_code)
        self._file = path.open("rb")
        try:
            self._reader = csv.reader(self._lines(), strict=True)
            header = self._next()
            if header is None:
                raise InvalidInput(f"{path.name}: the file is empty (no header line)")
            self._header = [name.strip() for name in header]
            self._check_columns(self._header)
        except BaseException:
            self._file.close()
            raise

    def _lines(self) -> Iterator[str]:
        # Binary lines keep an exact byte count for progress; the csv module gets decoded text
        # with line endings intact, so quoted fields spanning lines still parse.
        for number, raw in enumerate(self._file, start=1):
            self.bytes_read += len(raw)
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{self.path.name}: line {number} is not valid UTF-8") from None

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise InvalidInput(f"{self.path.name}: line {self._reader.line_num}: malformed CSV "
                               f"({exc})") from None

    def blocks(self, block_rows: int) -> Iterator[dict[str, np.ndarray]]:
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        index = {name: self._header.index(name) for name in self.needed_columns}
        width = len(self._header)
        name = self.path.name
        while True:
            cells: dict[str, list[Any]] = {c: [] for c in index}
            lines: list[int] = []
            while len(lines) < block_rows:
                row = self._next()
                if row is None:
                    break
                if not row:  # a blank line carries no row
                    continue
                if len(row) != width:
                    raise InvalidInput(f"{name}: line {self._reader.line_num}: expected {width} "
                                       f"fields, found {len(row)}")
                for column, i in index.items():
                    cells[column].append(row[i])
                lines.append(self._reader.line_num)
            if not lines:
                return
            self._count(len(lines))
            yield self._converter.convert(cells, lambda i, lines=lines: f"{name}: line {lines[i]}")

    def close(self) -> None:
        self._file.close()


def _import_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput("reading Parquet needs pyarrow: pip install pyarrow "
                           "(or convert the file to CSV)") from None
    return pq


class ParquetTable(Table):
    """Parquet via pyarrow (imported only when a Parquet file is opened), read by record batch."""

    def __init__(self, path: Path, dataset: Dataset, default_country_code: str | None) -> None:
        super().__init__(path, dataset, default_country_code)
        pq = _import_parquet()
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise InvalidInput(f"{path.name}: not a readable Parquet file ({type(exc).__name__})") from None
        found = list(self._file.schema_arrow.names)
        if self._file.metadata.num_columns == 0:
            raise InvalidInput(f"{path.name}: the file is empty (no columns)")
        self._check_columns(found)

    def rows_estimate(self) -> int | None:
        return self._file.metadata.num_rows

    def blocks(self, block_rows: int) -> Iterator[dict[str, np.ndarray]]:
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        name = self.path.name
        start = 0
        total = max(self._file.metadata.num_rows, 1)
        for batch in self._file.iter_batches(batch_size=block_rows, columns=list(self.needed_columns)):
            if batch.num_rows == 0:
                continue
            cells = {c: batch.column(c).to_pylist() for c in self.needed_columns}
            for dim in self.dataset.dimensions:  # a dictionary/categorical column arrives as str
                cells[dim.name] = [v if v is None or isinstance(v, str) else str(v)
                                   for v in cells[dim.name]]
            self._count(batch.num_rows)
            offset = start
            yield self._converter.convert(cells, lambda i, offset=offset: f"{name}: row {offset + i + 1}")
            start += batch.num_rows
            # Parquet decodes whole column chunks, so progress is the share of rows read.
            if self.total_bytes is not None:
                self.bytes_read = self.total_bytes * start // total


def open_table(
    path: str | os.PathLike[str], dataset: Dataset, *, default_country_code: str | None = None
) -> Table:
    """Open ``path`` (``.csv`` or ``.parquet``/``.pq``) and check it has the dataset's columns."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return ParquetTable(path, dataset, default_country_code)
    if suffix in (".csv", ".txt", ""):
        return CsvTable(path, dataset, default_country_code)
    raise InvalidInput(f"{path.name}: unsupported file type {suffix!r}; use .csv or .parquet")


def read_all(
    path: str | os.PathLike[str], dataset: Dataset, *, default_country_code: str | None = None
) -> dict[str, np.ndarray]:
    """The whole table as single arrays; for small files and tests (uploads stream blocks)."""
    with open_table(path, dataset, default_country_code=default_country_code) as table:
        blocks = list(table.blocks(65_536))
    if not blocks:
        raise InvalidInput(f"{Path(path).name}: the file has a header but no rows")
    return {name: np.concatenate([b[name] for b in blocks]) for name, _ in dataset.schema()}
