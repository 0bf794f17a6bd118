"""The columnar batch: the plaintext of one upload chunk, encoded by the party, decoded by the enclave.

The layout (all little-endian) is declared once here, with both ends of it, so they cannot
drift apart::

    b"CRB1" | u32 rows | u32 ncols | u32 reserved = 0
    then, per schema column in order, the raw column bytes zero-padded to a multiple of 8
    (a decoder refuses non-zero padding):
      id        32 bytes per row (SHA-256 of the normalised identifier)
      dimension '<u2' code into the policy's declared value list
      metric    '<i8' fixed-point value (value * 10**scale)
      timestamp '<i8' Unix seconds (UTC)

The 16-byte header and the 8-byte padding keep every column 8-byte aligned inside the chunk, so
``np.frombuffer`` can view it without copying and ids can later be read as four uint64 lanes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np

from protocol.errors import InvalidInput, ProtocolError

__all__ = [
    "HEADER", "ID_BYTES", "KIND_DTYPE", "KIND_WIDTH", "MAGIC", "Schema", "batch_nbytes", "check_schema",
    "decode_batch", "encode_batch", "padded", "rows_per_batch",
]

MAGIC = b"CRB1"
HEADER = struct.Struct("<4sIII")  # magic, rows, ncols, reserved
ID_BYTES = 32
# kind -> (bytes per row, NumPy dtype of one element); ids are (rows, 32) uint8.
KIND_WIDTH: Mapping[str, int] = {"id": ID_BYTES, "dimension": 2, "metric": 8, "timestamp": 8}
KIND_DTYPE: Mapping[str, np.dtype] = {
    "id": np.dtype(np.uint8),
    "dimension": np.dtype("<u2"),
    "metric": np.dtype("<i8"),
    "timestamp": np.dtype("<i8"),
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
        raise InvalidInput("schema must hold one id column and only dimension/metric/timestamp columns")


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

    :raise ProtocolError: bad magic, header, total length or non-zero padding.
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
        end = offset + rows * width
        offset += padded(rows * width)
        # Zero padding makes equal columns equal bytes (docs/wire.md); a buffer reused without
        # clearing it, a common encoder bug, shows here instead of passing silently.
        if any(view[end:offset]):
            raise ProtocolError("batch padding is not zero")
    return out


def _check_codes(name: str, codes: np.ndarray, dimension_sizes: Mapping[str, int]) -> None:
    size = dimension_sizes.get(name)
    if size is None:
        raise InvalidInput(f"dimension column {name!r} has no declared values")
    # One vectorised pass; the message names the column only, never the offending code.
    if len(codes) and int(codes.max()) >= size:
        raise InvalidInput(f"dimension column {name!r} holds a code outside its declared values")


def _as_column(values: np.ndarray, kind: str, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if kind == "id":
        if arr.dtype.kind in "SV" and arr.dtype.itemsize == KIND_WIDTH["id"] and arr.ndim == 1:
            arr = arr.view(np.uint8).reshape(-1, KIND_WIDTH["id"])
        if arr.ndim != 2 or arr.shape[1] != KIND_WIDTH["id"] or arr.dtype != np.uint8:
            raise InvalidInput(f"id column {name!r} must be (rows, 32) uint8 or 32-byte strings")
        return arr
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InvalidInput(f"column {name!r} must be a 1-D integer array")
    target = KIND_DTYPE[kind]
    info = np.iinfo(target)
    if len(arr) and (int(arr.min()) < info.min or int(arr.max()) > info.max):
        raise InvalidInput(f"column {name!r} does not fit its wire type")
    return arr.astype(target, copy=False)


def encode_batch(columns: Mapping[str, np.ndarray], schema: Sequence[tuple[str, str]]) -> bytes:
    """Pack one batch: header, then each column's little-endian bytes padded to 8 bytes."""
    check_schema(schema)
    cols = [_as_column(columns[name], kind, name) for name, kind in schema]
    rows = len(cols[0])
    if any(len(col) != rows for col in cols):
        raise InvalidInput("all columns of a batch must have the same number of rows")
    if rows >= 2**32:
        raise InvalidInput("too many rows for one batch")
    out = bytearray(batch_nbytes(schema, rows))  # zero-filled, so the padding is zeros
    HEADER.pack_into(out, 0, MAGIC, rows, len(schema), 0)
    offset = HEADER.size
    for col in cols:
        raw = np.ascontiguousarray(col).reshape(-1).view(np.uint8).data  # a memoryview, no copy
        out[offset : offset + len(raw)] = raw
        offset += padded(len(raw))
    return bytes(out)


def rows_per_batch(schema: Sequence[tuple[str, str]], max_bytes: int) -> int:
    """The most rows whose encoded batch fits in ``max_bytes`` (at least 1 row must fit)."""
    check_schema(schema)
    row_width = sum(KIND_WIDTH[kind] for _, kind in schema)
    rows = max(0, (max_bytes - HEADER.size) // row_width)
    # Padding adds at most 7 bytes per column, so this loop runs at most a few times.
    while rows > 0 and batch_nbytes(schema, rows) > max_bytes:
        rows -= 1
    if rows < 1:
        raise InvalidInput("batch size limit is too small for one row")
    return rows
