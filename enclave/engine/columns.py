"""Growable column buffers for one dataset, filled from decoded batches (``protocol/batch.py``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from enclave.engine.join import join_keys
from protocol.batch import ID_BYTES, KIND_DTYPE, Schema, check_schema
from protocol.errors import InvalidInput

__all__ = ["ColumnarTable"]


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
        self._keyed: tuple[bytes, np.ndarray] | None = None  # join key, keyed ids of rows so far
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

    def join_keys(self, key: bytes) -> np.ndarray:
        """``join.join_keys(self.ids, key)``, cached: rows only ever append, so only rows added
        since the last call are keyed (the deadline assumes none are cached: release_timing)."""
        done = self._keyed[1] if self._keyed is not None and self._keyed[0] == key else \
            np.zeros(0, np.uint64)
        if len(done) < self._rows:
            fresh = join_keys(self.ids[len(done):], key)
            # No copy when nothing was cached: the keys are 8 bytes per row of a large table.
            done = np.concatenate([done, fresh]) if len(done) else fresh
            self._keyed = (key, done)
        return done

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

    def shrink_to_fit(self) -> None:
        """Give back capacity far beyond the filled rows (an over-stated row hint, say).

        Kept tables live for the whole collaboration, so a hint of max_rows for a small upload
        must not reserve max_rows of enclave memory until the end. Costs one copy of the rows,
        only when more than half of the capacity is unused.
        """
        if self.capacity > 2 * self._rows:
            self._allocate(self._rows)
