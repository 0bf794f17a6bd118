"""Read a party's table (CSV, compressed CSV or Parquet) into the policy dataset's upload columns.

Reading is ``cleanroom/sources.py`` (pyarrow's streaming readers), conversion is vectorised in
``cleanroom/conversion.py`` and identifiers are hashed on every core (``cleanroom/id_hashing.py``);
this module puts them together, one block ahead (block ``k + 1`` is read and converted while the
workers hash block ``k``). The output of every block is a dict of NumPy arrays keyed like
``Dataset.schema()``:

* ``id``: ``(n, 32)`` uint8, SHA-256 of the normalised identifier from the column the policy
  names (``cleanroom.identifiers``);
* each dimension: ``<u2`` index of the value in the policy's declared ``values``;
* each metric: ``<i8`` exact fixed point at the policy's ``scale`` (parsed with ``Decimal``; more
  decimals than the scale is an error, never rounded). Clamping is the enclave's job.

Files are read in blocks of at most ``block_rows`` rows, so memory stays bounded whatever the
file size. Columns the policy does not name are ignored and listed in ``extra_columns``: they are
never read into an upload. A refused cell stops the reading with an ``InvalidInput`` that names
the line (CSV) or row (Parquet), the column and the value (at most 80 characters, in ``repr``
form), with a likely fix where there is one; these messages are only ever shown on the party's
machine. With ``skip_invalid`` the rows holding a refused cell are left out instead, and counted
per schema column in ``skipped`` (which the upload header then states, signed).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from cleanroom.conversion import Block, BlockConverter, Problem
from cleanroom.id_hashing import HashPool
from cleanroom.sources import Source, listing, open_source
from protocol.errors import InvalidInput
from protocol.policy import Dataset

__all__ = ["RefusedCell", "Table", "describe_problem", "open_table", "parse_fixed_point", "read_all"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SHOWN_CHARS = 80  # a quoted cell value is cut after this many characters


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


class RefusedCell(InvalidInput):
    """A cell the rules refuse (the file itself was readable): names the line, column, value."""


class Table:
    """A source table opened against one policy dataset; iterate ``blocks(block_rows)``.

    ``rows_read`` counts the rows read so far, ``rows_uploaded`` those returned by ``blocks``
    (fewer only with ``skip_invalid``); ``skipped`` maps a schema column to the rows left out
    for it (each row counted once, at its first refused cell in schema order).
    """

    def __init__(self, path: Path, dataset: Dataset, default_country_code: str | None, *,
                 delimiter: str = ",", skip_invalid: bool = False,
                 pool: HashPool | None = None) -> None:
        self.path = path
        self.dataset = dataset
        self.skip_invalid = skip_invalid
        self.source: Source = open_source(path, dataset, delimiter=delimiter)
        self.rows_read = 0
        self.rows_uploaded = 0
        self.skipped: dict[str, int] = {}
        self._own_pool = pool is None
        self._pool = HashPool() if pool is None else pool
        self._converter = BlockConverter(dataset, default_country_code, self._pool)
        self._schema_name = {dataset.id_column: "id"}

    @property
    def total_bytes(self) -> int | None:
        return self.source.total_bytes

    @property
    def bytes_read(self) -> int:
        return self.source.bytes_read

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return self.source.extra_columns

    def rows_estimate(self) -> int | None:
        """About how many rows the file holds, cheaply (sent as the upload's size hint)."""
        return self.source.rows_estimate()

    def converted(self, block_rows: int) -> Iterator[Block]:
        """Every block with all its rows and its problems, in file order (nothing refused here)."""
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        pending: deque = deque()
        start = 0
        for batch in self.source.batches(block_rows):
            self.rows_read += batch.num_rows
            if self.rows_read > self.dataset.max_rows:
                raise InvalidInput(f"dataset {self.dataset.name!r} allows at most "
                                   f"{self.dataset.max_rows} rows; the file has more")
            pending.append(self._converter.start(start, batch))
            start += batch.num_rows
            if len(pending) > 1:  # one block ahead: the workers hash while this one reads
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def blocks(self, block_rows: int) -> Iterator[dict[str, np.ndarray]]:
        """The upload columns, block by block.

        :raise InvalidInput: the first refused cell (unless ``skip_invalid``), named by line.
        """
        for block in self.converted(block_rows):
            columns = block.columns
            if block.problems:
                if not self.skip_invalid:
                    raise RefusedCell(describe_problem(self.source, block.problems[0]))
                self.count_skipped(block)
                columns = {name: column[block.valid] for name, column in columns.items()}
            rows = len(columns["id"])
            self.rows_uploaded += rows
            if rows:
                yield columns

    def count_skipped(self, block: Block) -> None:
        order = {name: i for i, name in enumerate(self.source.needed_columns)}
        first: dict[int, str] = {}
        for problem in block.problems:
            known = first.get(problem.row)
            if known is None or order[problem.column] < order[known]:
                first[problem.row] = problem.column
        for column in first.values():
            name = self._schema_name.get(column, column)
            self.skipped[name] = self.skipped.get(name, 0) + 1

    def close(self) -> None:
        """Release the file and stop the hashing workers this table started."""
        self.source.close()
        if self._own_pool:
            self._pool.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def quote(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "...")


def describe_problem(source: Source, problem: Problem, where: str | None = None) -> str:
    """``file: line N, column 'c': reason (value '...')`` and a likely fix, for the party."""
    if where is None:
        where = source.locate([problem.row]).get(problem.row, f"row {problem.row + 1}")
    value = "" if problem.value is None else f" (value {quote(problem.value)})"
    return (f"{source.name}: {where}, column {problem.column!r}: {problem.reason}{value}"
            + suggestion(source.dataset, problem))


def suggestion(dataset: Dataset, problem: Problem) -> str:
    """A likely fix for a refused cell, or ``""``."""
    value = problem.value
    if value is None:
        return ""
    dimension = dataset.dimension(problem.column)
    if dimension is not None:
        squashed = "".join(value.split()).casefold()
        close = [v for v in dimension.values if "".join(v.split()).casefold() == squashed]
        if close:
            return f"; did you mean {close[0]!r}? declared values are matched exactly"
        return f"; declared values: {listing(list(dimension.values))}"
    if dataset.metric(problem.column) is not None:
        if "," in value and "." not in value:
            return "; write decimals with '.', not ','"
        if "," in value:
            return "; remove the thousands separators"
        if value.strip()[:1] in "$€£¥" or value.strip()[-1:] in "$€£¥%":
            return "; remove the currency or percent sign"
        if "decimal places" in problem.reason:
            return "; round the values yourself, or agree on a larger scale in the policy"
    return ""


def open_table(
    path: str | os.PathLike[str], dataset: Dataset, *, default_country_code: str | None = None,
    delimiter: str = ",", skip_invalid: bool = False, pool: HashPool | None = None,
) -> Table:
    """Open ``path`` (``.csv``, ``.csv.gz``, ``.csv.zst``, ``.parquet``) and check its columns."""
    return Table(Path(path), dataset, default_country_code, delimiter=delimiter,
                 skip_invalid=skip_invalid, pool=pool)


def read_all(
    path: str | os.PathLike[str], dataset: Dataset, *, default_country_code: str | None = None
) -> dict[str, np.ndarray]:
    """The whole table as single arrays; for small files and tests (uploads stream blocks)."""
    with open_table(path, dataset, default_country_code=default_country_code) as table:
        blocks = list(table.blocks(65_536))
    if not blocks:
        raise InvalidInput(f"{Path(path).name}: the file has a header but no rows")
    return {name: np.concatenate([b[name] for b in blocks]) for name, _ in dataset.schema()}
