"""A verified result as typed cells, each with the 95% interval of its noise: what every output reads.

The signed ``result`` document holds rows of labels, counts and fixed-point decimal strings,
and, in its privacy metadata, one noise parameter per released statistic (``noise_scale`` for
discrete Laplace, ``noise_sigma2`` for discrete Gaussian; sums in fixed-point units). This
module maps each column of each analysis kind to the statistic whose noise it carries
(``protocol/privacy/statistics.py`` names them) and derives the per-cell ± with
``cleanroom.noise_intervals``. Nothing here changes a released value, with one exception: a
mean per user is recomputed from the released sum and users (post-processing), because the
enclave rounds it to the metric's scale, which for a whole-number metric is to an integer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from fractions import Fraction
from typing import Any

from cleanroom.noise_intervals import half_width, mean_half_width

__all__ = ["MEAN_MIN_PLACES", "NIL_LABEL", "Column", "NoiseWidths", "ResultView", "ceil_places",
           "consistency_notes", "decimal_cell", "label_text", "result_view"]

MEAN_MIN_PLACES = 2  # a mean of whole numbers still shows cents-like precision
# A nil group key: the LEFT JOIN's last row, the kept dataset's persons with no row in the other
# (docs/query-language.md). Tables and the report show this; JSON keeps null, CSV an empty field.
NIL_LABEL = "(none)"


def label_text(value: Any) -> str:
    """A group key as people read it: a dimension value is text even when it looks like a number."""
    return NIL_LABEL if value is None else str(value)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "label", "count", "amount" (fixed point), "mean", "digest"
    places: int = 0  # decimals shown for amounts and means


@dataclass(frozen=True)
class ResultView:
    """Typed rows: labels ``str`` (None: a LEFT JOIN's nil key), counts ``int``, amounts and means
    ``Decimal``, digests ``bytes``.

    ``intervals[r][c]`` is the 95% half-width of cell (r, c) in the same type as the cell, or
    None where nothing was noised (labels, digests) or the result carries no noise parameter.
    """

    kind: str
    columns: list[Column]
    rows: list[list[Any]]
    intervals: list[list[int | Decimal | None]]
    notes: list[str]
    everyone: str = "all matched people"  # what a row without group keys counts

    @property
    def has_intervals(self) -> bool:
        return any(h is not None for row in self.intervals for h in row)


# column name -> (statistic, is a difference of two noisy cells); ``{m}`` is the metric's column.
_STATISTICS: dict[str, dict[str, tuple[str, bool]]] = {
    "overlap": {"matched_users": ("users", False)},
    "aggregate": {"users": ("users", False), "rows": ("rows", False), "{m}_sum": ("sum", False)},
    "reach_frequency": {"reach": ("reach", False), "frequency_*": ("frequency", False)},
    "attribution": {
        "exposed_converters": ("converters", False), "exposed_conversions": ("conversions", False),
        "exposed_{m}_sum": ("value", False), "unexposed_converters": ("converters", True),
        "unexposed_conversions": ("conversions", True), "unexposed_{m}_sum": ("value", True),
    },
}


def _metric(body: dict[str, Any]) -> tuple[str | None, int]:
    metric = body.get("params", {}).get("metric")
    scales = body.get("privacy", {}).get("fixed_point_scale") or {}
    if not isinstance(metric, str):
        return None, 0
    scale = scales.get(metric, 0)
    return metric.partition(".")[2], scale if isinstance(scale, int) else 0


def _statistic(kind: str, column: str, metric: str | None) -> tuple[str, bool] | None:
    for pattern, stat in _STATISTICS.get(kind, {}).items():
        name = pattern.replace("{m}", metric or "\0")
        if name == column or (name.endswith("*") and column.startswith(name[:-1])):
            return stat
    return None


class NoiseWidths:
    """Half-widths per statistic from the signed privacy metadata (None when it has none)."""

    def __init__(self, privacy: dict[str, Any]) -> None:
        self.mechanism = privacy.get("mechanism")
        params = privacy.get("noise_scale") if self.mechanism == "discrete_laplace" else \
            privacy.get("noise_sigma2")
        self.params = params if isinstance(params, dict) else {}
        self._cache: dict[tuple[str, bool], int | None] = {}

    def width(self, statistic: str, difference: bool = False) -> int | None:
        key = (statistic, difference)
        if key not in self._cache:
            param = self.params.get(statistic)
            try:
                self._cache[key] = None if param is None else half_width(
                    str(self.mechanism), Fraction(str(param)), difference=difference)
            except (ValueError, ZeroDivisionError):
                self._cache[key] = None  # a parameter this client cannot read shows no ±
        return self._cache[key]


def decimal_cell(value: Any) -> Any:
    """A fixed-point text as a ``Decimal``; anything else is kept as it is (shown verbatim)."""
    try:
        return Decimal(str(value)) if isinstance(value, str | int) else value
    except ArithmeticError:
        return value


def ceil_places(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def result_view(body: dict[str, Any]) -> ResultView:
    """The typed cells and intervals of a verified ``result`` body (see ``ResultView``)."""
    kind = str(body.get("kind", ""))
    if kind == "plan":  # free-form SQL: the layout is in the signed plan and column_statistics
        from cleanroom.plan_cells import plan_view  # here: plan_cells builds on this module

        return plan_view(body)
    names = [str(c) for c in body.get("columns", [])]
    privacy = body.get("privacy", {}) if isinstance(body.get("privacy"), dict) else {}
    metric, scale = _metric(body)
    n_labels = len(body.get("params", {}).get("group_by", []) or [])
    noise = NoiseWidths(privacy)
    columns: list[Column] = []
    for i, name in enumerate(names):
        if kind == "cohort_activation":
            columns.append(Column(name, "digest"))
        elif i < n_labels:
            columns.append(Column(name, "label"))
        elif metric is not None and name.endswith("_mean_per_user"):
            columns.append(Column(name, "mean", max(scale, MEAN_MIN_PLACES)))
        elif metric is not None and name.endswith(f"{metric}_sum"):
            columns.append(Column(name, "amount", scale))
        else:
            columns.append(Column(name, "count"))
    rows, intervals = [], []
    for raw in body.get("rows", []):
        row, widths = _cells(raw if isinstance(raw, list) else [raw], columns, kind, metric, scale, noise)
        rows.append(row)
        intervals.append(widths)
    return ResultView(kind, columns, rows, intervals, consistency_notes(kind, columns, rows, privacy))


def _cells(raw: list[Any], columns: list[Column], kind: str, metric: str | None, scale: int,
           noise: NoiseWidths) -> tuple[list[Any], list[int | Decimal | None]]:
    unit = Decimal(1).scaleb(-scale)
    row: list[Any] = []
    widths: list[int | Decimal | None] = []
    for column, value in zip(columns, raw, strict=False):
        width: int | Decimal | None = None
        if column.kind == "amount":
            value = decimal_cell(value)
        stat = _statistic(kind, column.name, metric)
        if stat is not None:
            units = noise.width(*stat)
            if units is not None:
                width = units if column.kind == "count" else ceil_places(units * unit, scale)
        row.append(value)
        widths.append(width)
    for i, column in enumerate(columns):
        if column.kind == "mean":
            row[i], widths[i] = _mean(columns, row, widths, column.places, row[i])
    return row, widths


def _mean(columns: list[Column], row: list[Any], widths: list[int | Decimal | None], places: int,
          signed: Any) -> tuple[Any, Decimal | None]:
    """sum / users at ``places`` decimals, with its first-order ±; the signed text if absent."""
    names = [c.name for c in columns]
    total_at = next((i for i, c in enumerate(columns) if c.kind == "amount"), None)
    if total_at is None or "users" not in names:
        return decimal_cell(signed), None
    users, total = row[names.index("users")], row[total_at]
    if not isinstance(users, int) or users <= 0 or not isinstance(total, Decimal):
        return decimal_cell(signed), None
    with localcontext() as ctx:
        ctx.prec = 50
        mean = total / Decimal(users)
    width = None
    users_width, total_width = widths[names.index("users")], widths[total_at]
    if isinstance(users_width, int) and isinstance(total_width, Decimal):
        width = ceil_places(mean_half_width(mean, users, total_width, users_width), places)
    return mean.quantize(Decimal(1).scaleb(-places)), width


def _lowest_clamp(privacy: dict[str, Any]) -> Fraction:
    """The smallest clamp minimum (signed as exact fractions, e.g. "0" or "-5/2"); -1 if none."""
    lows = []
    for bounds in (privacy.get("clamps") or {}).values():
        try:
            lows.append(Fraction(str(bounds[0])))
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
            continue
    return min(lows, default=Fraction(-1))


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def consistency_notes(kind: str, columns: list[Column], rows: list[list[Any]],
                      privacy: dict[str, Any]) -> list[str]:
    """Where independent noise made released cells contradict each other (one line at most)."""
    names = [c.name for c in columns]
    pairs = {"aggregate": [("users", "rows")],
             "attribution": [("exposed_converters", "exposed_conversions"),
                             ("unexposed_converters", "unexposed_conversions")]}.get(kind, [])
    found: list[str] = []
    for fewer, more in pairs:  # every unit has at least one row (conversion): true fewer ≤ more
        if fewer in names and more in names:
            a, b = names.index(fewer), names.index(more)
            n = sum(1 for r in rows if _ints(r[a], r[b]) and r[a] > r[b])
            if n:
                found.append(f"{fewer} > {more} in {n} row{'s' if n != 1 else ''}")
    if kind == "reach_frequency" and "reach" in names:
        buckets = [i for i, c in enumerate(names) if c.startswith("frequency_")]
        at = names.index("reach")
        n = sum(1 for r in rows if any(_ints(r[i], r[at]) and r[i] > r[at] for i in buckets))
        if n:
            found.append(f"a frequency bucket > reach in {n} row{'s' if n != 1 else ''}")
    if _lowest_clamp(privacy) >= 0:
        amounts = [i for i, c in enumerate(columns) if c.kind in ("amount", "mean")]
        n = sum(1 for r in rows if any(isinstance(r[i], Decimal) and r[i] < 0 for i in amounts))
        if n:
            found.append(f"a negative sum of non-negative values in {n} row{'s' if n != 1 else ''}")
    if not found:
        return []
    return ["note: noise makes some cells inconsistent (" + "; ".join(found) + "); cells are "
            "noised independently, so differences within ± are expected"]
