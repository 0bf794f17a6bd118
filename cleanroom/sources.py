"""Read a party's file with pyarrow's streaming readers: CSV (plain, ``.gz``, ``.zst``) or Parquet.

Only the columns the policy names are converted (``include_columns`` / ``columns=``); the
others are listed in ``extra_columns`` and never read into memory. ``batches(n)`` yields record
batches of exactly ``n`` rows (the last may be shorter) of those columns, every cell as read:
CSV cells are strings (an empty cell is an empty string, never a null), Parquet keeps its types.
Memory is bounded by the block size and pyarrow's read-ahead, whatever the file size.

Problems with the file itself (a missing column, a ragged or malformed line, text that is not
UTF-8) raise ``InvalidInput`` naming the file, the line and the fix where one is likely (a
column name differing in case or spacing, a file separated by ``;`` or tabs). pyarrow's CSV
errors do not carry line numbers, so on one the file is scanned again with the stdlib ``csv``
module, which names the line exactly (``describe_csv_error``); the same scan maps row indices to
line numbers for messages about cells (``locate``), only when there is something to report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from protocol.errors import InvalidInput
from protocol.policy import Dataset

__all__ = ["CSV_SUFFIXES", "PARQUET_SUFFIXES", "CsvSource", "ParquetSource", "Source", "listing",
           "open_source"]

CSV_SUFFIXES = (".csv", ".txt", ".tsv", "")
PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_MAX_LISTED = 12  # how many names an error message lists before "..."
_READ_BLOCK = 8 << 20  # bytes pyarrow's CSV reader parses at a time


def listing(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return (shown + f", ... ({more} more)") if more > 0 else (shown or "(none)")


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise InvalidInput("reading files needs pyarrow: pip install 'enclave-cleanroom[client]'") from None
    return pa


class Source:
    """An open file: its header, what was read so far, and blocks of the needed columns."""

    def __init__(self, path: Path, dataset: Dataset) -> None:
        self.path = path
        self.name = path.name
        self.dataset = dataset
        self.total_bytes: int | None = path.stat().st_size
        self.extra_columns: tuple[str, ...] = ()
        self.source_names: dict[str, str] = {}  # policy column name -> the name in the file

    @property
    def needed_columns(self) -> tuple[str, ...]:
        ds = self.dataset
        return (ds.id_column, *(d.name for d in ds.dimensions), *(m.name for m in ds.metrics),
                *(t.name for t in ds.timestamps))

    @property
    def bytes_read(self) -> int:
        return 0

    def _check_columns(self, raw: Sequence[str], delimiter: str = ",") -> None:
        found = [name.strip() for name in raw]
        ds = self.dataset
        if len(set(found)) != len(found):
            twice = sorted({n for n in found if found.count(n) > 1})
            raise InvalidInput(f"{self.name}: the header names a column twice ({listing(twice)})")
        roles = [(ds.id_column, f"column {ds.id_column!r} named by the policy for dataset {ds.name!r}")]
        roles += [(d.name, f"dimension column {d.name!r} of dataset {ds.name!r}") for d in ds.dimensions]
        roles += [(m.name, f"metric column {m.name!r} of dataset {ds.name!r}") for m in ds.metrics]
        roles += [(t.name, f"timestamp column {t.name!r} of dataset {ds.name!r}") for t in ds.timestamps]
        for name, role in roles:
            if name not in found:
                raise InvalidInput(f"{role} is missing; found: {listing(found)}"
                                   + _column_hint(name, found, delimiter))
        self.source_names = {name: raw[found.index(name)] for name in self.needed_columns}
        self.extra_columns = tuple(c for c in found if c not in self.needed_columns)

    def batches(self, block_rows: int) -> Iterator[Any]:
        raise NotImplementedError

    def rows_estimate(self) -> int | None:
        return None

    def locate(self, rows: Sequence[int]) -> dict[int, str]:
        """Where each 0-based data row is, for a message: ``line N`` or ``row N``."""
        return {row: f"row {row + 1}" for row in rows}

    def close(self) -> None:
        """Release the file."""


def _column_hint(name: str, found: Sequence[str], delimiter: str) -> str:
    close = [f for f in found if f.casefold() == name.casefold() or f.replace(" ", "") == name]
    if close:
        return (f"; column names are case-sensitive: rename {close[0]!r} to {name!r} in the header")
    if len(found) == 1:
        for sep, label in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
            if sep != delimiter and sep in found[0]:
                flag = "tab" if sep == "\t" else sep
                return (f"; the header looks separated by {label}, not {delimiter!r}: pass "
                        f"--delimiter '{flag}'")
    return ""


def _rebatch(batches: Iterator[Any], block_rows: int) -> Iterator[Any]:
    """Record batches of exactly ``block_rows`` rows (the last one shorter)."""
    pa = _pyarrow()
    held: list[Any] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        held.append(batch)
        count += batch.num_rows
        while count >= block_rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, block_rows).combine_chunks().to_batches()[0]
            rest = table.slice(block_rows)
            held = rest.combine_chunks().to_batches() if rest.num_rows else []
            count = rest.num_rows
    if count:
        yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]


class CsvSource(Source):
    """UTF-8 CSV with a header line (a BOM is accepted), optionally gzip- or zstd-compressed."""

    def __init__(self, path: Path, dataset: Dataset, delimiter: str = ",") -> None:
        super().__init__(path, dataset)
        if len(delimiter) != 1:
            raise InvalidInput("the delimiter must be one character")
        self.delimiter = delimiter
        self.compression = _COMPRESSION.get(path.suffix.lower())
        self._raw: Any = None
        rows = self._rows()
        header = next(rows, None)
        rows.close()
        if header is None:
            raise InvalidInput(f"{self.name}: the file is empty (no header line)")
        self.header = header[1]
        self._check_columns(self.header, delimiter)

    def _stream(self) -> Any:
        pa = _pyarrow()
        raw = pa.OSFile(str(self.path), "r")
        return raw, (pa.CompressedInputStream(raw, self.compression) if self.compression else raw)

    def _lines(self) -> Iterator[tuple[int, str]]:
        """(line number, decoded line) from the start; the stdlib reader's view of the file."""
        raw, stream = self._stream()
        try:
            buffered = io.BufferedReader(_RawAdapter(stream), 1 << 20)
            for number, line in enumerate(buffered, start=1):
                try:
                    yield number, line.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise InvalidInput(f"{self.name}: line {number} is not valid UTF-8") from None
        finally:
            raw.close()

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number where the row ends, fields) for every non-blank row, header first."""
        lines = self._lines()
        reader = csv.reader((text for _, text in lines), delimiter=self.delimiter, strict=True)
        try:
            for row in reader:
                if row:
                    yield reader.line_num, row
        except csv.Error as exc:
            raise InvalidInput(f"{self.name}: line {reader.line_num}: malformed CSV ({exc})") from None
        finally:
            lines.close()

    def describe_csv_error(self, detail: str) -> InvalidInput:
        """The first structural problem of the file, as the stdlib reader sees it."""
        width = len(self.header)
        for line, row in self._rows():
            if len(row) != width:
                return InvalidInput(f"{self.name}: line {line}: expected {width} fields, found {len(row)}"
                                    + ("" if len(row) != 1 or width == 1 else
                                       " (is the delimiter right? see --delimiter)"))
        return InvalidInput(f"{self.name}: unreadable CSV ({detail})")

    def locate(self, rows: Sequence[int]) -> dict[int, str]:
        wanted, out = set(rows), {}
        if not wanted:
            return out
        last = max(wanted)
        for index, (line, _) in enumerate(self._rows(), start=-1):  # -1: the header
            if index in wanted:
                out[index] = f"line {line}"
            if index >= last:
                break
        return out

    def rows_estimate(self) -> int | None:
        # Line count minus the header: exact unless a quoted field spans lines. One extra pass
        # at disk speed buys the enclave a single, exactly sized allocation.
        raw, stream = self._stream()
        lines = 0
        try:
            while block := stream.read(1 << 22):
                lines += block.count(b"\n")
        finally:
            raw.close()
        return max(lines - 1, 0)

    @property
    def bytes_read(self) -> int:
        # Of the file on disk (compressed bytes for .gz/.zst), so the share read is honest.
        if self._raw is None:
            return 0
        try:
            return int(self._raw.tell())
        except (OSError, ValueError):  # closed after the last block
            return self.total_bytes or 0

    def batches(self, block_rows: int) -> Iterator[Any]:
        import pyarrow.csv as pcsv

        pa = _pyarrow()
        raw, stream = self._stream()
        self._raw = raw
        wanted = [self.source_names[c] for c in self.needed_columns]
        # Dimensions are read dictionary-encoded: each distinct value is then mapped once.
        dimensions = {self.source_names[d.name] for d in self.dataset.dimensions}
        types = {c: pa.dictionary(pa.int32(), pa.string()) if c in dimensions else pa.string()
                 for c in wanted}
        try:
            def reader() -> Any:
                return pcsv.open_csv(
                    stream,
                    read_options=pcsv.ReadOptions(block_size=_READ_BLOCK),
                    parse_options=pcsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True),
                    convert_options=pcsv.ConvertOptions(
                        include_columns=wanted, column_types=types,
                        strings_can_be_null=False, quoted_strings_can_be_null=False))

            renamed = (batch.rename_columns(list(self.needed_columns)) for batch in _guard(self, reader))
            yield from _rebatch(renamed, block_rows)
        finally:
            raw.close()

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


def _guard(source: CsvSource, open_reader: Any) -> Iterator[Any]:
    pa = _pyarrow()
    reader = None
    while True:
        try:
            reader = open_reader() if reader is None else reader  # opening parses the first block
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise source.describe_csv_error(str(exc).splitlines()[0][:200]) from None
        yield batch


class _RawAdapter(io.RawIOBase):
    """A pyarrow input stream as a Python raw file, for the stdlib csv scans."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ParquetSource(Source):
    """Parquet, read row group by row group (progress moves with the row groups read)."""

    def __init__(self, path: Path, dataset: Dataset) -> None:
        super().__init__(path, dataset)
        _pyarrow()
        import pyarrow.parquet as pq

        try:
            # Dimensions dictionary-encoded, as Parquet usually stores them: mapped once per value.
            self._file = pq.ParquetFile(path, read_dictionary=[d.name for d in dataset.dimensions])
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise InvalidInput(f"{self.name}: not a readable Parquet file ({type(exc).__name__})") from None
        if self._file.metadata.num_columns == 0:
            raise InvalidInput(f"{self.name}: the file is empty (no columns)")
        self._check_columns(list(self._file.schema_arrow.names))
        self._done_bytes = 0

    def rows_estimate(self) -> int | None:
        return int(self._file.metadata.num_rows)

    @property
    def bytes_read(self) -> int:
        return self._done_bytes

    def batches(self, block_rows: int) -> Iterator[Any]:
        meta = self._file.metadata
        wanted = [self.source_names[c] for c in self.needed_columns]
        total, rows_total = self.total_bytes or 0, max(meta.num_rows, 1)

        def groups() -> Iterator[Any]:
            done = 0
            for group in range(meta.num_row_groups):
                for batch in self._file.iter_batches(batch_size=block_rows, row_groups=[group],
                                                     columns=wanted):
                    done += batch.num_rows
                    self._done_bytes = total * done // rows_total
                    yield batch.rename_columns(list(self.needed_columns))
            self._done_bytes = total

        yield from _rebatch(groups(), block_rows)


def open_source(path: Path, dataset: Dataset, *, delimiter: str = ",") -> Source:
    """Open ``path`` by its suffix: ``.csv`` (optionally ``.gz``/``.zst``) or ``.parquet``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] and suffixes[-1] in _COMPRESSION:
        inner = suffixes[-2] if len(suffixes) >= 2 else ""
        if inner in CSV_SUFFIXES:
            return CsvSource(path, dataset, delimiter)
        raise InvalidInput(f"{path.name}: only CSV files may be compressed (.csv.gz, .csv.zst)")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return ParquetSource(path, dataset)
    if suffix in CSV_SUFFIXES:
        return CsvSource(path, dataset, "\t" if suffix == ".tsv" and delimiter == "," else delimiter)
    raise InvalidInput(f"{path.name}: unsupported file type {suffix!r}; use .csv, .csv.gz, "
                       ".csv.zst or .parquet")
