"""Inline SVG charts for the HTML report: horizontal bars and column histograms with error bars.

Plain SVG text, drawn here: no script, no library, nothing fetched. Every label passes through
``html.escape``. Bars use ``shape-rendering="crispEdges"`` and one fill colour (``BAR_COLOUR``),
so a screenshot shows them in exactly that colour (the report's browser test relies on it).
An error bar spans value ± the 95% half-width of the cell's noise.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

__all__ = ["BAR_COLOUR", "WHISKER_COLOUR", "Bar", "bar_chart", "column_chart"]

BAR_COLOUR = "#1f6fb2"
WHISKER_COLOUR = "#202020"
_WIDTH = 900
_LABEL_W = 190  # left column for cohort labels
_VALUE_W = 250  # right column for "value ± half-width"
_ROW = 24
_BAR = 16


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    half_width: float | None  # None: no interval for this cell
    text: str  # the value as shown, e.g. "14,425 ± 60"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _span(bars: list[Bar]) -> tuple[float, float]:
    """The value axis: from min(0, lowest whisker) to the highest whisker (never empty)."""
    low = min([0.0] + [b.value - (b.half_width or 0) for b in bars])
    high = max([0.0] + [b.value + (b.half_width or 0) for b in bars])
    return low, high if high > low else low + 1


def _whisker_h(x1: float, x2: float, y: float) -> str:
    return (f'<line class="whisker" x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}"/>'
            f'<line class="whisker" x1="{x1:.1f}" y1="{y - 5:.1f}" x2="{x1:.1f}" y2="{y + 5:.1f}"/>'
            f'<line class="whisker" x1="{x2:.1f}" y1="{y - 5:.1f}" x2="{x2:.1f}" y2="{y + 5:.1f}"/>')


def bar_chart(title: str, bars: list[Bar], *, chart_id: str) -> str:
    """One horizontal bar per cohort, value ± half-width drawn as a whisker and printed."""
    low, high = _span(bars)
    plot = _WIDTH - _LABEL_W - _VALUE_W

    def x(value: float) -> float:
        return _LABEL_W + (value - low) / (high - low) * plot

    height = 30 + _ROW * max(1, len(bars)) + 10
    parts = [f'<svg class="chart bars" id="{_esc(chart_id)}" role="img" aria-label="{_esc(title)}" '
             f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}">',
             f'<title>{_esc(title)}</title>',
             f'<text class="chart-title" x="0" y="16">{_esc(title)}</text>',
             f'<line class="axis" x1="{x(0):.1f}" y1="26" x2="{x(0):.1f}" y2="{height - 8}"/>']
    for i, bar in enumerate(bars):
        top = 30 + i * _ROW
        middle = top + _BAR / 2
        start, end = sorted((x(0), x(bar.value)))
        parts.append(f'<text class="label" x="{_LABEL_W - 8}" y="{middle + 4:.1f}" '
                     f'text-anchor="end">{_esc(bar.label)}</text>')
        parts.append(f'<rect class="bar" x="{round(start)}" y="{top}" width="{max(1, round(end - start))}" '
                     f'height="{_BAR}" fill="{BAR_COLOUR}" shape-rendering="crispEdges">'
                     f'<title>{_esc(bar.label)}: {_esc(bar.text)}</title></rect>')
        if bar.half_width:
            parts.append(_whisker_h(x(bar.value - bar.half_width), x(bar.value + bar.half_width), middle))
        parts.append(f'<text class="value" x="{_WIDTH - _VALUE_W + 8}" y="{middle + 4:.1f}">'
                     f'{_esc(bar.text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(title: str, bars: list[Bar], *, chart_id: str, width: int = 360,
                 height: int = 220) -> str:
    """A histogram: one vertical column per bucket, with its whisker; values under the labels."""
    low, high = _span(bars)
    left, bottom, top = 8, height - 42, 28
    slot = (width - 2 * left) / max(1, len(bars))

    def y(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    parts = [f'<svg class="chart columns" id="{_esc(chart_id)}" role="img" aria-label="{_esc(title)}" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f'<title>{_esc(title)}</title>',
             f'<text class="chart-title" x="0" y="16">{_esc(title)}</text>',
             f'<line class="axis" x1="{left}" y1="{y(0):.1f}" x2="{width - left}" y2="{y(0):.1f}"/>']
    for i, bar in enumerate(bars):
        centre = left + slot * (i + 0.5)
        span = sorted((y(0), y(bar.value)))
        parts.append(f'<rect class="bar" x="{round(centre - slot * 0.35)}" y="{round(span[0])}" '
                     f'width="{round(slot * 0.7)}" height="{max(1, round(span[1] - span[0]))}" '
                     f'fill="{BAR_COLOUR}" shape-rendering="crispEdges">'
                     f'<title>{_esc(bar.label)}: {_esc(bar.text)}</title></rect>')
        if bar.half_width:
            y1, y2 = y(bar.value - bar.half_width), y(bar.value + bar.half_width)
            parts.append(f'<line class="whisker" x1="{centre:.1f}" y1="{y1:.1f}" x2="{centre:.1f}" '
                         f'y2="{y2:.1f}"/>'
                         f'<line class="whisker" x1="{centre - 5:.1f}" y1="{y1:.1f}" '
                         f'x2="{centre + 5:.1f}" y2="{y1:.1f}"/>'
                         f'<line class="whisker" x1="{centre - 5:.1f}" y1="{y2:.1f}" '
                         f'x2="{centre + 5:.1f}" y2="{y2:.1f}"/>')
        parts.append(f'<text class="label" x="{centre:.1f}" y="{bottom + 15}" '
                     f'text-anchor="middle">{_esc(bar.label)}</text>')
        parts.append(f'<text class="value small" x="{centre:.1f}" y="{bottom + 30}" '
                     f'text-anchor="middle">{_esc(bar.text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
