"""Which charts a result gets in the HTML report, per analysis kind, with their intervals.

The cells and their 95% half-widths come from ``cleanroom.result_cells.result_view`` (the same
± every other output shows); this module only picks the columns a marketer looks at first:

* overlap: matched people per cohort;
* aggregate: people, the metric's sum and its mean per person, per cohort;
* reach_frequency: reach per cohort, and each cohort's frequency histogram;
* attribution: exposed converters, their conversions and value per cohort, and each cohort's
  share of all converters that were exposed (a ratio of two noisy counts: no interval shown);
* a SQL query (plan): each selected aggregate per cell (at most ``PLAN_CHARTS``), and the
  persons of the release gate when the query did not select them.

Activation results (identifiers, not DP statistics) get no chart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cleanroom.formatting import amount_text, count_text
from cleanroom.report_svg import Bar, bar_chart, column_chart
from cleanroom.result_cells import ResultView, label_text

__all__ = ["PLAN_CHARTS", "cell_text", "charts", "cohort_label"]

PLAN_CHARTS = 4  # a query may select up to 8 aggregates; the table below the charts has them all


def cell_text(value: Any, half_width: Any = None) -> str:
    """A cell as the report prints it: separators, and `` ± h`` when it carries an interval."""
    def one(v: Any) -> str:
        if v is None:  # only a group key is ever nil: the LEFT JOIN's last row
            return label_text(v)
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, int):
            return count_text(v)
        if isinstance(v, Decimal):
            return amount_text(v)
        if isinstance(v, bytes):
            return v.hex()
        return str(v)

    return one(value) if half_width is None else f"{one(value)} ± {one(half_width)}"


def cohort_label(view: ResultView, row: list[Any]) -> str:
    labels = [label_text(v) for v, c in zip(row, view.columns, strict=False) if c.kind == "label"]
    return " · ".join(labels) if labels else view.everyone


def _bars(view: ResultView, column: str) -> list[Bar]:
    names = [c.name for c in view.columns]
    if column not in names:
        return []
    i = names.index(column)
    bars = []
    for row, widths in zip(view.rows, view.intervals, strict=True):
        value, width = row[i], widths[i]
        bars.append(Bar(cohort_label(view, row), float(value),
                        None if width is None else float(width), cell_text(value, width)))
    return bars


def _titled(view: ResultView, what: str) -> str:
    groups = [c.name for c in view.columns if c.kind == "label"]
    return f"{what} per {' × '.join(groups)}" if groups else what


def _chart(view: ResultView, column: str, what: str, n: int) -> list[str]:
    bars = _bars(view, column)
    return [bar_chart(_titled(view, what), bars, chart_id=f"chart-{n}")] if bars else []


def _frequency(view: ResultView) -> list[str]:
    names = [c.name for c in view.columns]
    buckets = [i for i, name in enumerate(names) if name.startswith("frequency_")]
    out = []
    for r, (row, widths) in enumerate(zip(view.rows, view.intervals, strict=True)):
        bars = [Bar(names[i].removeprefix("frequency_").replace("_plus", "+"), float(row[i]),
                    None if widths[i] is None else float(widths[i]), cell_text(row[i], widths[i]))
                for i in buckets]
        out.append(column_chart(f"Frequency: {cohort_label(view, row)}", bars,
                                chart_id=f"frequency-{r}"))
    return out


def _exposed_share(view: ResultView, n: int) -> list[str]:
    names = [c.name for c in view.columns]
    if "exposed_converters" not in names or "unexposed_converters" not in names:
        return []
    exposed, unexposed = names.index("exposed_converters"), names.index("unexposed_converters")
    bars = []
    for row in view.rows:
        total = row[exposed] + row[unexposed]
        share = 100 * row[exposed] / total if total > 0 else 0.0
        bars.append(Bar(cohort_label(view, row), share, None, f"{share:.1f}%"))
    return [bar_chart(_titled(view, "Share of converters exposed (%)"), bars, chart_id=f"chart-{n}")]


def charts(view: ResultView, metric: str | None) -> list[tuple[str, list[str]]]:
    """(heading, [svg, ...]) per chart group for ``view``; empty for activation results."""
    if not view.rows:
        return []
    m = metric or "metric"
    if view.kind == "overlap":
        return [("Matched people", _chart(view, "matched_users", "Matched people", 1))]
    if view.kind == "aggregate":
        return [("People and value", _chart(view, "users", "Matched people", 1)
                 + _chart(view, f"{m}_sum", f"Sum of {m}", 2)
                 + _chart(view, f"{m}_mean_per_user", f"Mean {m} per person", 3))]
    if view.kind == "reach_frequency":
        return [("Reach", _chart(view, "reach", "Reach (people exposed)", 1)),
                ("Frequency histograms (people by number of exposures)", _frequency(view))]
    if view.kind == "plan":
        noised = [c.name for c in view.columns if c.kind != "label"][:PLAN_CHARTS]
        return [("Released cells", [svg for n, name in enumerate(noised, 1)
                                    for svg in _chart(view, name, name, n)])]
    if view.kind == "attribution":
        return [("Attribution", _chart(view, "exposed_converters", "Exposed converters", 1)
                 + _chart(view, "exposed_conversions", "Conversions of exposed converters", 2)
                 + _chart(view, f"exposed_{m}_sum", f"Exposed converters' {m}", 3)
                 + _exposed_share(view, 4))]
    return []
