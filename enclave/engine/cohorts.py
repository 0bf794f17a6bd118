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

from enclave.engine import compute
from enclave.engine.columns import ColumnarTable
from protocol.policy import ColumnRef, Dataset, Policy

__all__ = ["Selection", "cohort_labels", "fixed_point_text", "row_cohorts"]


@dataclass(frozen=True)
class Selection:
    min_cohort_size: int
    tau: int | None  # None for public keys

    def releases(self, noisy_units: int) -> bool:
        """Whether a cohort with this noisy distinct-unit count is released (post-processing)."""
        return noisy_units >= self.min_cohort_size and (self.tau is None or noisy_units >= self.tau)


def _dataset(policy: Policy, name: str) -> Dataset:
    dataset = policy.dataset(name)
    assert dataset is not None, "authorize checked every column"
    return dataset


def cohort_labels(policy: Policy, group_by: Sequence[ColumnRef]) -> list[list[str]]:
    """Labels of every cohort in mixed-radix order (first column most significant)."""
    labels: list[list[str]] = [[]]
    for ref in group_by:
        dimension = _dataset(policy, ref.dataset).dimension(ref.column)
        assert dimension is not None
        labels = [[*prefix, value] for prefix in labels for value in dimension.values]
    return labels


def row_cohorts(policy: Policy, table: ColumnarTable, group_by: Sequence[ColumnRef],
                rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Cohort code of each selected row (as ``compute.cohort_codes``), and the cohort count.

    ``rows`` selects rows of ``table``: a boolean mask or an index array.
    """
    if not group_by:
        n = int(np.count_nonzero(rows)) if rows.dtype == bool else len(rows)
        return np.zeros(n, dtype=np.int64), 1
    dataset = _dataset(policy, group_by[0].dataset)
    dims = [table.column(ref.column)[rows] for ref in group_by]
    sizes = [len(dataset.dimension(ref.column).values) for ref in group_by]  # type: ignore[union-attr]
    return compute.cohort_codes(dims, sizes)


def fixed_point_text(value: Fraction, scale: int) -> str:
    """An exact decimal string with ``scale`` places (the metric's fixed point)."""
    quantum = Decimal(1).scaleb(-scale)
    return str((Decimal(value.numerator) / Decimal(value.denominator)).quantize(quantum))
