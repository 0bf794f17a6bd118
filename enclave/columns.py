"""Columnar upload batches: zero-copy decoding and growable column buffers.

One batch is the plaintext of one AES-GCM chunk. Its layout (all little-endian) is declared once
here and reused by the client's encoder (``cleanroom/batch.py``)::

    b"CRB1" | u32 rows | u32 ncols | u32 reserved = 0
    then, per schema column in order, the raw column bytes zero-padded to a multiple of 8:
      id        32 bytes per row (SHA-256 of the normalised identifier)
      dimension '<u2' code into the policy's declared value list
      metric    '<i8' fixed-point value (value * 10**scale)

The 16-byte header and the 8-byte padding keep every column 8-byte aligned inside the chunk, so
``np.frombuffer`` can view it without copying and ids can later be read as four uint64 lanes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np

from protocol.errors import InvalidInput, ProtocolError

__all__ = [
    "HEADER",
    "KIND_DTYPE",
    "KIND_WIDTH",
    "MAGIC",
    "ColumnarTable",
    "batch_nbytes",
    "check_schema",
    "decode_batch",
    "padded",
]

MAGIC = b"CRB1"
HEADER = struct.Struct("<4sIII")  # magic, rows, ncols, reserved
ID_BYTES = 32
# kind -> (bytes per row, NumPy dtype of one element); ids are (rows, 32) uint8.
KIND_WIDTH: Mapping[str, int] = {"id": ID_BYTES, "dimension": 2, "metric": 8}
KIND_DTYPE: Mapping[str, np.dtype] = {
    "id": np.dtype(np.uint8),
    "dimension": np.dtype("<u2"),
    "metric": np.dtype("<i8"),
}

Schema = Sequence[tuple[str, str]]


def padded(nbytes: int) -> int:
    """``nbytes`` rounded up to a multiple of 8 (each column's padded length)."""
    return (nbytes + 7) & ~7


def check_schema(schema: Schema) -> None:
    """Raise ``InvalidInput`` unless the schema is one id column first, then known kinds."""
    if not schema or schema[0][1] != "id":
        raise InvalidInput("schema must start with the id column")
    names = [name for name, _ in schema]
    if len(set(names)) != len(names):
        raise InvalidInput("schema column names must be unique")
    kinds = [kind for _, kind in schema]
    if kinds.count("id") != 1 or any(kind not in KIND_WIDTH for kind in kinds):
        raise InvalidInput("schema must hold one id column and only dimension/metric columns")


def batch_nbytes(schema: Schema, rows: int) -> int:
    """Exact encoded length of a batch of ``rows`` rows."""
    return HEADER.size + sum(padded(rows * KIND_WIDTH[kind]) for _, kind in schema)


def decode_batch(
    buf: bytes | bytearray | memoryview,
    schema: Schema,
    dimension_sizes: Mapping[str, int],
) -> dict[str, np.ndarray]:
    """View one batch as NumPy columns without copying.

    The arrays alias ``buf``: the caller appends them to a table (one copy) before reusing it.

    :raise ProtocolError: bad magic, header or total length.
    :raise InvalidInput: a dimension code outside the policy's value list (names the column).
    """
    check_schema(schema)
    view = memoryview(buf).cast("B")
    if len(view) < HEADER.size:
        raise ProtocolError("batch shorter than its header")
    magic, rows, ncols, reserved = HEADER.unpack_from(view, 0)
    if magic != MAGIC or reserved != 0 or ncols != len(schema):
        raise ProtocolError("batch header does not match the schema")
    if len(view) != batch_nbytes(schema, rows):
        raise ProtocolError("batch length does not match its header")
    out: dict[str, np.ndarray] = {}
    offset = HEADER.size
    for name, kind in schema:
        width = KIND_WIDTH[kind]
        dtype = KIND_DTYPE[kind]
        col = np.frombuffer(view, dtype=dtype, count=rows * width // dtype.itemsize, offset=offset)
        if kind == "id":
            col = col.reshape(rows, ID_BYTES)
        elif kind == "dimension":
            _check_codes(name, col, dimension_sizes)
        out[name] = col
        offset += padded(rows * width)
    return out


def _check_codes(name: str, codes: np.ndarray, dimension_sizes: Mapping[str, int]) -> None:
    size = dimension_sizes.get(name)
    if size is None:
        raise InvalidInput(f"dimension column {name!r} has no declared values")
    # One vectorised pass; the message names the column only, never the offending code.
    if len(codes) and int(codes.max()) >= size:
        raise InvalidInput(f"dimension column {name!r} holds a code outside its declared values")


class ColumnarTable:
    """Preallocated, growable column buffers for one dataset.

    Capacity starts at ``capacity_hint`` (exact when the upload announces its row count) and
    otherwise doubles, so appending n rows copies O(n) bytes in total, never O(n²). ``max_rows``
    is the policy's hard limit; appending past it raises ``InvalidInput``.
    """

    def __init__(self, schema: Schema, *, capacity_hint: int = 0, max_rows: int) -> None:
        check_schema(schema)
        if max_rows < 0 or capacity_hint < 0:
            raise InvalidInput("row limits must be non-negative")
        self.schema: tuple[tuple[str, str], ...] = tuple((n, k) for n, k in schema)
        self.max_rows = max_rows
        self._rows = 0
        self._cols: dict[str, np.ndarray] = {}
        self._allocate(min(capacity_hint, max_rows))

    def _allocate(self, capacity: int) -> None:
        new: dict[str, np.ndarray] = {}
        for name, kind in self.schema:
            shape = (capacity, ID_BYTES) if kind == "id" else (capacity,)
            new[name] = np.empty(shape, dtype=KIND_DTYPE[kind])
            if name in self._cols:
                new[name][: self._rows] = self._cols[name][: self._rows]
        self._cols = new  # the old buffers are freed here, before the next growth step

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def capacity(self) -> int:
        return len(self._cols[self.schema[0][0]])

    @property
    def nbytes(self) -> int:
        """Bytes held by the allocated column buffers (capacity, not only filled rows)."""
        return sum(col.nbytes for col in self._cols.values())

    @property
    def ids(self) -> np.ndarray:
        """The filled ids as a C-contiguous (rows, 32) uint8 view."""
        return self._cols[self.schema[0][0]][: self._rows]

    def column(self, name: str) -> np.ndarray:
        """The filled part of column ``name`` (a view, not a copy)."""
        if name not in self._cols:
            raise InvalidInput(f"no column {name!r} in this dataset")
        return self._cols[name][: self._rows]

    def append(self, batch: Mapping[str, np.ndarray]) -> None:
        """Copy one decoded batch (from ``decode_batch``) into the buffers."""
        n = len(batch[self.schema[0][0]])
        for name, kind in self.schema:
            col = batch[name]
            shape = (n, ID_BYTES) if kind == "id" else (n,)
            if col.shape != shape or col.dtype != KIND_DTYPE[kind]:
                raise InvalidInput(f"column {name!r} does not match the schema")
        if n > self.max_rows - self._rows:
            raise InvalidInput("dataset exceeds the policy's row limit")
        if self._rows + n > self.capacity:
            self._allocate(min(self.max_rows, max(self._rows + n, 2 * self.capacity)))
        for name, _ in self.schema:
            self._cols[name][self._rows : self._rows + n] = batch[name]
        self._rows += n

    def truncate(self, rows: int) -> None:
        """Forget every row from ``rows`` on (rolls back a failed upload; keeps the capacity)."""
        if not 0 <= rows <= self._rows:
            raise InvalidInput("cannot truncate beyond the filled rows")
        self._rows = rows

    def shrink_to_fit(self) -> None:
        """Give back capacity far beyond the filled rows (an over-stated row hint, say).

        Kept tables live for the whole collaboration, so a hint of max_rows for a small upload
        must not reserve max_rows of enclave memory until the end. Costs one copy of the rows,
        only when more than half of the capacity is unused.
        """
        if self.capacity > 2 * self._rows:
            self._allocate(self._rows)
