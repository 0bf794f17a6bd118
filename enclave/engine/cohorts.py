"""Cohorts of a query: their labels, each row's cohort, and the rule that releases a cohort.

Dimension values are declared in the policy, so every cohort key of a query is known before any
data is read, and noise is drawn for every one of them (observed or not), which keeps the work
and its timing independent of which keys the data holds.

* ``public`` keys: every declared cohort is a candidate; it is released when its noisy count of
  distinct units reaches ``min_cohort_size``. This is post-processing of a DP output and costs
  no δ; the minimum size is defence in depth, not the protection.
* ``private`` keys: a cohort is released only when its noisy distinct-unit count also reaches τ
  (``protocol/privacy/threshold.py``), the partition-selection threshold at which a key held by a single
  unit is released with probability ≤ δ/L0. With a public key universe this is still
  post-processing; τ and the δ charge keep the guarantee of private partition selection even
  when a policy's value list was itself compiled from one party's data, so declared but
  unobserved or rare keys are as hidden as undeclared ones would be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from enclave.engine.columns import ColumnarTable
from protocol.errors import InvalidInput
from protocol.policy import ColumnRef, Dimension, Policy

__all__ = ["Selection", "cohort_codes", "cohort_labels", "fixed_point_text", "row_cohorts"]


@dataclass(frozen=True)
class Selection:
    min_cohort_size: int
    tau: int | None  # None for public keys

    def releases(self, noisy_units: int) -> bool:
        """Whether a cohort with this noisy distinct-unit count is released (post-processing)."""
        return noisy_units >= self.min_cohort_size and (self.tau is None or noisy_units >= self.tau)


def _dimension(policy: Policy, ref: ColumnRef) -> Dimension:
    dataset = policy.dataset(ref.dataset)
    dimension = dataset.dimension(ref.column) if dataset is not None else None
    assert dimension is not None, "authorize checked every column"
    return dimension


def cohort_labels(policy: Policy, group_by: Sequence[ColumnRef]) -> list[list[str]]:
    """Labels of every cohort in mixed-radix order (first column most significant)."""
    labels: list[list[str]] = [[]]
    for ref in group_by:
        labels = [[*prefix, value] for prefix in labels for value in _dimension(policy, ref).values]
    return labels


def cohort_codes(dim_columns: Sequence[np.ndarray], sizes: Sequence[int]) -> tuple[np.ndarray, int]:
    """Mixed-radix cohort code per row (first column most significant) and the cohort count."""
    if not dim_columns or len(dim_columns) != len(sizes):
        raise InvalidInput("one size per dimension column is required")
    n_cohorts = 1
    for size in sizes:
        n_cohorts *= int(size)
    if min(sizes) < 1 or n_cohorts > 2**31:
        raise InvalidInput("cohort space is empty or too large")
    codes = np.zeros(len(dim_columns[0]), dtype=np.int64)
    for col, size in zip(dim_columns, sizes, strict=True):
        if len(col) != len(codes):
            raise InvalidInput("dimension columns differ in length")
        if len(col) and int(col.max()) >= size:
            raise InvalidInput("a dimension code is outside its declared values")
        codes *= size
        codes += col
    return codes, n_cohorts


def row_cohorts(policy: Policy, table: ColumnarTable,
                group_by: Sequence[ColumnRef]) -> tuple[np.ndarray, int]:
    """Cohort code of every row of ``table`` (as ``cohort_codes``), and the cohort count.

    Every row, matched or not: bounding and counting take full-length arrays (unmatched rows
    are never kept), so the dimension columns are read in place, never copied.
    """
    if not group_by:  # one cohort: zeros with a zero stride, so no memory
        return np.broadcast_to(np.int64(0), (table.rows,)), 1
    dims = [table.column(ref.column) for ref in group_by]
    sizes = [len(_dimension(policy, ref).values) for ref in group_by]
    return cohort_codes(dims, sizes)


def fixed_point_text(value: Fraction, scale: int) -> str:
    """An exact decimal string with ``scale`` places (the metric's fixed point)."""
    quantum = Decimal(1).scaleb(-scale)
    return str((Decimal(value.numerator) / Decimal(value.denominator)).quantize(quantum))
