"""Party side: encode columns into the enclave's batch layout (see ``enclave/columns.py``).

The layout table is imported from the enclave module so that the two ends cannot drift apart;
``enclave.columns`` is stdlib + NumPy only, so this pulls nothing else into the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from enclave.columns import (
    HEADER,
    KIND_DTYPE,
    KIND_WIDTH,
    MAGIC,
    batch_nbytes,
    check_schema,
    padded,
)
from protocol.errors import InvalidInput

__all__ = ["encode_batch", "rows_per_batch"]


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
        raw = memoryview(np.ascontiguousarray(col).reshape(-1).view(np.uint8))
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
