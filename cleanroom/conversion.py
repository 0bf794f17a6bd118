"""Turn one block of a party's table (Arrow arrays) into upload columns, vectorised.

The rules are those of ``cleanroom/identifiers.py`` and ``docs/normalisation.md``, byte for byte:

* ``email``: one RE2 match over the whole block finds the values made only of printable,
  non-space ASCII with exactly one ``@`` and text on both sides. For those the published rule
  is exactly ASCII lower-casing (nothing to trim, NFKC and case folding are the identity, and
  every check passes), which Arrow does for the block at once. Every other value (whitespace to
  trim, non-ASCII text, or a refusal) goes through the scalar reference function, which gives
  the published result or the published reason; so the vectorised path can only differ from
  the scalar one in speed (``tests/cleanroom/test_conversion.py`` compares the two).
* ``phone``: the scalar rule per value (only libphonenumber parses numbers), in worker processes.
* ``exact``: the value as it is; only an empty value is refused.
* dimensions: Python-``strip()`` whitespace trimmed, then the index in the policy's values; a
  bucketed dimension (``edges``) reads the number exactly, as a metric, and sends its bucket;
* metrics: exact fixed point. Plain decimals that surely fit (``-?digits[.digits]``, at most
  18 digits after scaling) are converted in Arrow; anything else (exponents, ``+``, Unicode
  digits, floats from Parquet, overflow) goes through ``tables.parse_fixed_point``.
* timestamps: Unix seconds (``cleanroom/time_values.py``: ISO 8601, Unix seconds, Arrow times),
  floored to the policy's resolution. The enclave clamps them to the declared range.

Nothing is dropped or changed here: every refused cell becomes a ``Problem`` and its row is
marked invalid; the caller decides whether that stops the upload or skips the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.id_hashing import HashPool, Pending
from cleanroom.identifiers import DIGEST_SIZE, WHITESPACE, normalizer
from cleanroom.time_values import unix_seconds
from protocol.policy import Dataset, Dimension, Metric, Timestamp

__all__ = ["Block", "BlockConverter", "Problem", "as_text"]

# Printable ASCII except space (0x21-0x7e) and '@' (0x40), then one '@', then the same again.
_PLAIN_EMAIL = r"^[\x21-\x3f\x41-\x7e]+@[\x21-\x3f\x41-\x7e]+$"
_MISSING_ID = "identifier is missing or not text"
_MAX_DIGITS = 18  # 10**18 < 2**63: any value with at most this many digits fits int64


@dataclass(frozen=True)
class Problem:
    """One refused cell. ``value`` is the cell as read (``None``: missing); never sent anywhere."""

    row: int  # 0-based data row of the file
    column: str  # the source column's name
    reason: str  # does not quote the value
    value: str | None


@dataclass
class Block:
    """One block: every column for all its rows (refused rows hold zeros) and what was refused."""

    start: int
    rows: int
    columns: dict[str, np.ndarray]
    valid: np.ndarray  # bool per row
    problems: list[Problem] = field(default_factory=list)


def _plain(array: pa.Array) -> pa.Array:
    """Dictionary-encoded, large and view strings as plain ``string``; other types unchanged."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    return array


def as_text(array: pa.Array) -> pa.Array:
    """A column as Arrow strings as the scalar path saw it: ``str(value)``, missing as null."""
    array = _plain(array)
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_integer(array.type):
        return pc.cast(array, pa.string())  # the same digits as Python's str(int)
    return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


def _rows(mask: pa.Array | np.ndarray) -> np.ndarray:
    arr = mask if isinstance(mask, np.ndarray) else mask.to_numpy(zero_copy_only=False)
    return np.flatnonzero(arr)


class _PendingBlock:
    def __init__(self, block: Block, ids: Pending, id_rows: np.ndarray | None, column: str,
                 values: list[Any] | None, order: dict[str, int]) -> None:
        self.block, self._ids, self._id_rows, self._column, self._values = block, ids, id_rows, column, values
        self._order = order

    def result(self) -> Block:
        """Wait for the identifier digests and return the finished block."""
        block, out = self.block, self._ids.result()
        if isinstance(out, tuple):  # normalised in the workers: (digests, refusals)
            digests, refused = out
            for index, reason in refused:
                block.problems.append(Problem(block.start + index, self._column, reason,
                                              None if self._values is None else self._values[index]))
                block.valid[index] = False
        else:
            digests = out
        order = self._order
        block.problems.sort(key=lambda p: (p.row, order.get(p.column, 0)))  # file, then schema order
        ids = block.columns["id"]
        view = np.frombuffer(digests, dtype=np.uint8).reshape(-1, DIGEST_SIZE)
        if self._id_rows is None:
            ids[:] = view
        else:
            ids[self._id_rows] = view
        return block


class BlockConverter:
    """Converts Arrow record batches of the dataset's source columns into upload columns."""

    def __init__(self, dataset: Dataset, default_country_code: str | None, pool: HashPool) -> None:
        self.dataset = dataset
        self.pool = pool
        self.default_country_code = default_country_code
        self._scalar = normalizer(dataset.id_normalization, default_country_code=default_country_code)
        self._value_sets = {d.name: pa.array(list(d.values), pa.string()) for d in dataset.dimensions}
        names = [dataset.id_column, *(d.name for d in dataset.dimensions), *(m.name for m in dataset.metrics),
                 *(t.name for t in dataset.timestamps)]
        self._order = {name: i for i, name in enumerate(names)}  # problems in a row: schema order

    def start(self, start: int, batch: pa.RecordBatch) -> _PendingBlock:
        """Convert everything but the digests now; the digests are computed in the pool."""
        n = batch.num_rows
        ds = self.dataset
        columns: dict[str, np.ndarray] = {"id": np.zeros((n, DIGEST_SIZE), dtype=np.uint8)}
        block = Block(start, n, columns, np.ones(n, dtype=bool))
        for dim in ds.dimensions:
            raw = batch.column(dim.name)
            columns[dim.name] = (self._bucket(block, dim, raw) if dim.edges
                                 else self._dimension(block, dim.name, raw))
        for metric in ds.metrics:
            columns[metric.name] = self._metric(block, metric, batch.column(metric.name))
        for stamp in ds.timestamps:
            columns[stamp.name] = self._timestamp(block, stamp, batch.column(stamp.name))
        pending = self._ids(block, batch.column(ds.id_column))
        return pending

    # --- identifiers ---------------------------------------------------------------------------

    def _ids(self, block: Block, raw: pa.Array) -> _PendingBlock:
        column = self.dataset.id_column
        kind = self.dataset.id_normalization
        text = _id_text(raw)
        if text is None:  # not a text column at all: every row is refused
            for i in range(block.rows):
                self._refuse(block, i, column, _MISSING_ID, None)
            return _PendingBlock(block, Pending(done=b""), np.zeros(0, dtype=np.int64), column, None,
                                 self._order)
        for i in _rows(text.is_null()):
            self._refuse(block, int(i), column, _MISSING_ID, None)
        if kind == "phone":
            present = _rows(text.is_valid())
            cells = text.to_pylist()
            digests = self.pool.normalised(kind, self.default_country_code,
                                           [cells[i] for i in present.tolist()])
            return _PendingBlock(block, _Scattered(digests, present, block.rows), None, column, cells,
                                 self._order)
        if kind == "email":
            normalised = self._emails(block, text)
        else:
            normalised = text
            for i in _rows(pc.equal(text, "")):
                self._refuse(block, int(i), column, "the identifier is empty", "")
        keep = pa.array(block.valid)
        rows = np.flatnonzero(block.valid)
        chosen = normalised.filter(keep)
        if kind == "email":  # a normalised email never holds whitespace, so "\n" separates
            joined = pc.binary_join_element_wise(chosen, "", "\n")
            return _PendingBlock(block, self.pool.lines(_string_bytes(joined), len(chosen)), rows,
                                 column, None, self._order)
        values = chosen.cast(pa.binary()).to_pylist()
        return _PendingBlock(block, self.pool.values(values), rows, column, None, self._order)

    def _emails(self, block: Block, text: pa.Array) -> pa.Array:
        trimmed = pc.ascii_lower(text)  # the whole rule for the values ``fast`` selects
        fast = pc.match_substring_regex(text, _PLAIN_EMAIL)
        slow = _rows(pc.invert(pc.fill_null(fast, True)))  # not null, not on the fast path
        if len(slow) == 0:
            return trimmed
        fallback: list[str | None] = [None] * len(text)
        values = text.take(pa.array(slow)).to_pylist()
        for i, value in zip(slow.tolist(), values, strict=True):
            try:
                fallback[i] = self._scalar(value)
            except UnicodeEncodeError:
                self._refuse(block, i, self.dataset.id_column, "not valid Unicode text", value)
            except ValueError as exc:  # IdentifierError: ``reason`` does not quote the value
                self._refuse(block, i, self.dataset.id_column, str(getattr(exc, "reason", exc)), value)
        return pc.if_else(pc.fill_null(fast, False), trimmed, pa.array(fallback, pa.string()))

    # --- dimensions and metrics ----------------------------------------------------------------

    def _dimension(self, block: Block, name: str, raw: pa.Array) -> np.ndarray:
        if pa.types.is_dictionary(raw.type) and pa.types.is_string(raw.type.value_type):
            # Read dictionary-encoded: map the few distinct values, then gather by index.
            mapped = self._lookup(name, raw.dictionary)
            index = mapped.take(raw.indices)
        else:
            index = self._lookup(name, as_text(raw))
        bad = _rows(index.is_null())
        if len(bad):
            text = as_text(raw.take(pa.array(bad)))
            for i, value in zip(bad.tolist(), text.to_pylist(), strict=True):
                self._refuse(block, i, name, "value is not one of the policy's declared values", value)
        return index.fill_null(0).to_numpy(zero_copy_only=False).astype("<u2")

    def _lookup(self, name: str, text: pa.Array) -> pa.Array:
        """Index of each Python-``strip()``-trimmed value in the declared values, null if none."""
        return pc.index_in(pc.utf8_trim(text, characters=WHITESPACE), value_set=self._value_sets[name])

    def _metric(self, block: Block, metric: Metric, raw: pa.Array) -> np.ndarray:
        from cleanroom.tables import parse_fixed_point

        n, scale = len(raw), metric.scale
        out = np.zeros(n, dtype="<i8")
        fast = np.zeros(n, dtype=bool)
        if any(test(raw.type) for test in (pa.types.is_string, pa.types.is_large_string,
                                           pa.types.is_dictionary)):
            text = as_text(raw)
            fast, values = _plain_decimals(text, scale)
            out[fast] = values
            cells: list[Any] = text.to_pylist() if not fast.all() else []
        elif pa.types.is_integer(raw.type) and scale <= _MAX_DIGITS:
            ints = raw.cast(pa.int64(), safe=False).to_numpy(zero_copy_only=False) if raw.null_count == 0 \
                else None
            limit = 10 ** (_MAX_DIGITS - scale)
            if ints is not None and raw.type != pa.uint64() and len(ints) and np.abs(ints).max() < limit:
                out[:] = ints * 10**scale
                fast[:] = True
            cells = [] if fast.all() else raw.to_pylist()
        else:
            cells = raw.to_pylist()
        for i in np.flatnonzero(~fast).tolist():
            value = cells[i]
            try:
                if value is None or isinstance(value, bool):
                    raise ValueError("value is missing")
                # Floats (Parquet) go through their shortest repr: 0.1 means the decimal 0.1.
                out[i] = parse_fixed_point(value if isinstance(value, str) else str(value), scale)
            except ValueError as exc:
                self._refuse(block, i, metric.name, str(exc), None if value is None else str(value))
        return out

    def _bucket(self, block: Block, dim: Dimension, raw: pa.Array) -> np.ndarray:
        """A number's bucket at the declared edges (exact fixed point, as metrics are read)."""
        # Read a few more places than the edges have, so 0.09 falls below an edge at 0.1.
        scale = min(9, dim.edge_scale + 6)
        as_metric = Metric(dim.name, scale, -(2**62), 2**62)
        failed = len(block.problems)
        values = self._metric(block, as_metric, raw)
        refused = {p.row - block.start for p in block.problems[failed:]}
        edges = np.array(dim.edges, dtype=np.int64) * 10 ** (scale - dim.edge_scale)
        codes = np.searchsorted(edges, values, side="right") - 1
        below = np.flatnonzero(codes < 0)
        if len(below):
            cells = raw.to_pylist()
            for i in below.tolist():
                if i not in refused:
                    self._refuse(block, i, dim.name, f"below the first bucket edge ({dim.values[0]})",
                                 None if cells[i] is None else str(cells[i]))
        return np.maximum(codes, 0).astype("<u2")

    def _timestamp(self, block: Block, stamp: Timestamp, raw: pa.Array) -> np.ndarray:
        seconds, bad = unix_seconds(raw)
        if bad:
            cells = raw.to_pylist()
            for i, reason in bad:
                self._refuse(block, i, stamp.name, reason, None if cells[i] is None else str(cells[i]))
        return (seconds // stamp.resolution * stamp.resolution).astype("<i8")

    @staticmethod
    def _refuse(block: Block, index: int, column: str, reason: str, value: str | None) -> None:
        block.problems.append(Problem(block.start + index, column, reason, value))
        block.valid[index] = False


def _id_text(raw: pa.Array) -> pa.Array | None:
    raw = _plain(raw)
    if pa.types.is_string(raw.type):
        return raw
    if pa.types.is_null(raw.type):
        return pa.nulls(len(raw), pa.string())
    return None


def _string_bytes(array: pa.Array) -> bytes:
    """The concatenated UTF-8 of a string array's values (one copy)."""
    if len(array) == 0:
        return b""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    first, last = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    return array.buffers()[2][first:last].to_pybytes()


def _plain_decimals(text: pa.Array, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask, values): the cells that are ``-?digits[.digits]`` and surely fit, converted."""
    n = len(text)
    whole = _MAX_DIGITS - scale
    if whole < 1:
        return np.zeros(n, dtype=bool), np.zeros(0, dtype=np.int64)
    trimmed = pc.utf8_trim(text, characters=WHITESPACE)
    pattern = rf"^-?[0-9]{{1,{whole}}}(\.[0-9]{{0,{scale}}})?$" if scale else rf"^-?[0-9]{{1,{whole}}}$"
    mask = pc.fill_null(pc.match_substring_regex(trimmed, pattern), False)
    chosen = trimmed.filter(mask)
    if len(chosen) == 0:
        return mask.to_numpy(zero_copy_only=False), np.zeros(0, dtype=np.int64)
    dot = pc.find_substring(chosen, ".").to_numpy(zero_copy_only=False)
    length = pc.utf8_length(chosen).to_numpy(zero_copy_only=False)
    decimals = np.where(dot >= 0, length - dot - 1, 0)
    digits = pc.cast(pc.replace_substring(chosen, ".", ""), pa.int64()).to_numpy(zero_copy_only=False)
    powers = np.array([10**k for k in range(scale + 1)], dtype=np.int64)
    return mask.to_numpy(zero_copy_only=False), digits * powers[scale - decimals]


class _Scattered(Pending):
    """Worker digests of the non-null rows, with their refusals mapped back to block rows."""

    def __init__(self, inner: Pending, rows: np.ndarray, n: int) -> None:
        super().__init__()
        self._inner, self._rows, self._n = inner, rows, n

    def result(self) -> tuple[bytes, list[tuple[int, str]]]:
        digests, refused = self._inner.result()
        full = np.zeros((self._n, DIGEST_SIZE), np.uint8)
        full[self._rows] = np.frombuffer(digests, dtype=np.uint8).reshape(-1, DIGEST_SIZE)
        return full.tobytes(), [(int(self._rows[i]), reason) for i, reason in refused]
