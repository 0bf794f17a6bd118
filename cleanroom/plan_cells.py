"""The typed cells and 95% intervals of a free-form (SQL) result, kind "plan".

A plan result's columns are the plan's group keys (labels: dimension values or bucket start
dates), then the ``as`` names of its aggregates, then ``persons`` when the query did not select
it (docs/query-language.md). Which released vector each column is comes from the signed
``privacy.column_statistics`` (column -> statistic names), never from guessing by name:

* one ``persons``, ``persons:D`` or ``count:D``: a count, ± from that statistic's noise;
* one ``sum:D.m``: an amount at the metric's fixed-point scale (``privacy.fixed_point_scale``);
* ``[sum:D.m, count:D]``: AVG = noisy sum / max(1, noisy count), a mean. Its ± is the
  first-order combination of both noises (``noise_intervals.mean_half_width``) at the row's
  released count when the query selected that count, else at the row's persons, a lower bound on
  the count (every person in a cell has at least one counted row there), so the ± is then an
  upper bound. When the sum and count are both in the row, the mean is recomputed from them to
  at least ``MEAN_MIN_PLACES`` decimals (the enclave rounds it to the metric's scale).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from cleanroom.noise_intervals import mean_half_width
from cleanroom.result_cells import (
    MEAN_MIN_PLACES,
    Column,
    NoiseWidths,
    ResultView,
    ceil_places,
    consistency_notes,
    decimal_cell,
)

__all__ = ["plan_view"]


def _map(value: Any) -> dict[str, Any]:
    """A map of the signed document, or {} where it has none (nothing here may raise on it)."""
    return value if isinstance(value, dict) else {}


def _layout(body: dict[str, Any]) -> tuple[list[Column], list[list[str]], list[int]]:
    """Each column's kind and places, the statistics behind it ([] for labels), its metric scale."""
    keys = _map(_map(body.get("params")).get("plan")).get("group_by")
    n_labels = len(keys) if isinstance(keys, list) else 0
    privacy = _map(body.get("privacy"))
    stats, scales = _map(privacy.get("column_statistics")), _map(privacy.get("fixed_point_scale"))
    names = [str(c) for c in body.get("columns", [])]
    behind: list[list[str]] = []
    for i, name in enumerate(names):
        found = stats.get(name) if i >= n_labels else None
        behind.append([str(s) for s in found] if isinstance(found, list) else [])
    columns: list[Column] = []
    metric_scales: list[int] = []
    for i, name in enumerate(names):
        sums = [s for s in behind[i] if s.startswith("sum:")]
        scale = scales.get(sums[0][4:], 0) if sums else 0
        scale = scale if isinstance(scale, int) else 0
        metric_scales.append(scale)
        if i < n_labels:
            columns.append(Column(name, "label"))
        elif sums and len(behind[i]) == 2:
            recomputed = all(_find(behind, [stat]) is not None for stat in behind[i])
            columns.append(Column(name, "mean", max(scale, MEAN_MIN_PLACES) if recomputed else scale))
        elif sums:
            columns.append(Column(name, "amount", scale))
        else:
            columns.append(Column(name, "count"))
    return columns, behind, metric_scales


def _find(behind: list[list[str]], wanted: list[str]) -> int | None:
    return next((i for i, names in enumerate(behind) if names == wanted), None)


def _mean(row: list[Any], at: int, column: Column, scale: int, behind: list[list[str]],
          noise: NoiseWidths) -> tuple[Any, Decimal | None]:
    """The AVG cell and its first-order ± (see the module docstring)."""
    total_stat, count_stat = behind[at]
    signed = decimal_cell(row[at])
    count_at, sum_at = _find(behind, [count_stat]), _find(behind, [total_stat])
    base_at = count_at if count_at is not None else _find(behind, ["persons"])
    count = row[base_at] if base_at is not None else None
    h_count, h_sum_units = noise.width(count_stat), noise.width(total_stat)
    mean = signed
    if (sum_at is not None and count_at is not None and isinstance(row[sum_at], Decimal)
            and isinstance(count, int)):
        with localcontext() as ctx:
            ctx.prec = 50
            mean = (row[sum_at] / Decimal(max(1, count))).quantize(Decimal(1).scaleb(-column.places))
    if (not isinstance(count, int) or count <= 0 or h_count is None or h_sum_units is None
            or not isinstance(mean, Decimal)):
        return mean, None
    h_sum = Decimal(h_sum_units).scaleb(-scale)
    return mean, ceil_places(mean_half_width(mean, count, h_sum, h_count), column.places)


def plan_view(body: dict[str, Any]) -> ResultView:
    """``result_view`` of a kind "plan" result (the module docstring says how)."""
    privacy = _map(body.get("privacy"))
    noise = NoiseWidths(privacy)
    columns, behind, scales = _layout(body)
    rows: list[list[Any]] = []
    intervals: list[list[int | Decimal | None]] = []
    for raw in body.get("rows", []):
        row = list(raw) if isinstance(raw, list) else [raw]
        widths: list[int | Decimal | None] = [None] * len(row)
        for i, (column, names) in enumerate(zip(columns, behind, strict=False)):
            if column.kind == "count" and len(names) == 1:
                widths[i] = noise.width(names[0])
            elif column.kind == "amount":
                row[i] = decimal_cell(row[i])
                units = noise.width(names[0])
                widths[i] = None if units is None else ceil_places(
                    Decimal(units).scaleb(-column.places), column.places)
        for i, column in enumerate(columns[:len(row)]):
            if column.kind == "mean":
                row[i], widths[i] = _mean(row, i, column, scales[i], behind, noise)
        rows.append(row)
        intervals.append(widths)
    return ResultView("plan", columns, rows, intervals, consistency_notes("plan", columns, rows, privacy))
