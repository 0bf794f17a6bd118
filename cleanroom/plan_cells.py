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

A LEFT JOIN (``"join": "left"``) releases, last, the kept dataset's persons with no row in the
other dataset, every group key nil (None; ``NIL_LABEL`` in tables). Those persons have no row of
the other dataset, so the persons bound above does not hold for the other dataset's count there
(nor in an ungrouped LEFT JOIN's one row): an AVG of the other dataset's metric gets a ± only
when its count is selected. A note says what the nil row is.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from cleanroom.noise_intervals import mean_half_width
from cleanroom.result_cells import (
    MEAN_MIN_PLACES,
    NIL_LABEL,
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
          noise: NoiseWidths, unbounded: str | None) -> tuple[Any, Decimal | None]:
    """The AVG cell and its first-order ± (see the module docstring); ``unbounded``: the dataset
    whose count the persons do not bound (a LEFT JOIN's other dataset), if any."""
    total_stat, count_stat = behind[at]
    signed = decimal_cell(row[at])
    count_at, sum_at = _find(behind, [count_stat]), _find(behind, [total_stat])
    base_at = count_at if count_at is not None or count_stat == f"count:{unbounded}" else _find(
        behind, ["persons"])
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


def _left_join(body: dict[str, Any]) -> tuple[str, str, bool] | None:
    """(kept, other, whether WHERE filters other) of a LEFT JOIN plan, else None."""
    plan = _map(_map(body.get("params")).get("plan"))
    datasets, where = plan.get("datasets"), plan.get("where")
    if plan.get("join") != "left" or not isinstance(datasets, list) or len(datasets) != 2:
        return None
    other = str(datasets[1])
    filtered = isinstance(where, list) and any(
        str(_map(p).get("column", "")).startswith(other + ".") for p in where)
    return str(datasets[0]), other, filtered


def _nil_note(left: tuple[str, str, bool] | None, columns: list[Column], rows: list[list[Any]]) -> list[str]:
    labels = [i for i, c in enumerate(columns) if c.kind == "label"]
    if left is None or not labels or not any(all(r[i] is None for i in labels) for r in rows):
        return []
    kept, other, filtered = left
    return [f"{NIL_LABEL}: the persons of {kept} with no {other} row"
            + (" passing the WHERE" if filtered else "")
            + f" (FROM {kept} LEFT JOIN {other}; null in JSON, empty in CSV)"]


def plan_view(body: dict[str, Any]) -> ResultView:
    """``result_view`` of a kind "plan" result (the module docstring says how)."""
    privacy = _map(body.get("privacy"))
    noise = NoiseWidths(privacy)
    columns, behind, scales = _layout(body)
    left = _left_join(body)
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
                row[i], widths[i] = _mean(row, i, column, scales[i], behind, noise,
                                          left[1] if left is not None else None)
        rows.append(row)
        intervals.append(widths)
    notes = _nil_note(left, columns, rows) + consistency_notes("plan", columns, rows, privacy)
    everyone = f"all persons of {left[0]}" if left is not None else "all matched people"
    return ResultView("plan", columns, rows, intervals, notes, everyone)
