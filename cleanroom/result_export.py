"""A verified result for tools: JSON (the signed document's shape, plus intervals) and CSV.

JSON keeps the result document exactly as signed (``columns``, ``rows``, ``privacy``, ... with
bytes as hex) and adds, alongside and clearly client-derived:

* ``ci95_half_width``: one list per row, like ``rows``, with the 95% half-width of each noised
  cell (an int for counts, a decimal string for amounts and means) and null elsewhere;
* ``mean_per_user``: where a mean column exists, sum / users recomputed to more places than the
  enclave's rounding (``cleanroom.result_cells``), per row;
* ``created_at_utc`` (ISO 8601) next to ``created_at`` (Unix seconds), and ``notes``.

CSV has one header line, then one line per released row: each column, and after every noised
column a ``<column>_ci95`` column. Numbers are plain (no thousands separators), amounts keep
their fixed-point places, digests are hex. An activation's CSV is its ``id_sha256`` column.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from cleanroom.formatting import iso_utc
from cleanroom.result_cells import Column, ResultView, result_view
from cleanroom.result_display import jsonable
from cleanroom.result_open import Result

__all__ = ["CI_SUFFIX", "result_csv", "result_json"]

CI_SUFFIX = "_ci95"
_NOISED = ("count", "amount", "mean")


def _plain(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal(1).scaleb(-column.places)) if value.is_finite() else value)
    return value


def result_json(result: Result) -> dict[str, Any]:
    """The signed document as JSON values, with the client-derived fields of the module docstring."""
    body = result.body
    view = result_view(body)
    doc = jsonable(body)
    doc["created_at_utc"] = iso_utc(body.get("created_at"))
    doc["ci95_half_width"] = [[_plain(c, w) for c, w in zip(view.columns, widths, strict=True)]
                              for widths in view.intervals]
    means = [i for i, c in enumerate(view.columns) if c.kind == "mean"]
    if means:
        doc["mean_per_user"] = [_plain(view.columns[means[0]], row[means[0]]) for row in view.rows]
    doc["notes"] = view.notes
    return doc


def _header(view: ResultView) -> list[str]:
    header = []
    for column in view.columns:
        header.append(column.name)
        if column.kind in _NOISED and view.has_intervals:
            header.append(column.name + CI_SUFFIX)
    return header


def result_csv(result: Result) -> str:
    """The released rows as CSV text (see the module docstring)."""
    view = result_view(result.body)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_header(view))
    for row, widths in zip(view.rows, view.intervals, strict=True):
        line = []
        for column, value, width in zip(view.columns, row, widths, strict=True):
            line.append(_plain(column, value))
            if column.kind in _NOISED and view.has_intervals:
                line.append(_plain(column, width))
        writer.writerow(["" if v is None else v for v in line])
    return out.getvalue()
