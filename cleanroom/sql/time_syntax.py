"""Timestamps in WHERE and GROUP BY: time literals, comparisons, BETWEEN and DATE_TRUNC.

docs/query-language.md, "Time". A bound is one integer of Unix seconds (UTC) in the plan:

* ``DATE '2026-10-01'`` is midnight UTC of that day; ``TIMESTAMP '2026-10-01T12:00:00Z'`` (or
  with an offset, or with none: UTC, as the policy's times are) that instant; a plain string
  ``'2026-10-01'`` either form. A date compared with a timestamp means its midnight, as in
  SQL, so ``c.ts <= DATE '2026-10-31'`` stops at the start of the 31st. Fractional seconds
  are refused rather than rounded: times are whole seconds, and rounding a bound would move it.
* ``c.ts >= / > / <= / < bound`` (the bound on either side), ``c.ts BETWEEN a AND b`` (both
  ends included: ge a, le b);
* ``DATE_TRUNC('day' | 'week' | 'month', c.ts)``: a group key with its ``AS`` name.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from cleanroom.sql.scope import Resolved, Scope
from protocol.query_plan import LAG
from protocol.time_buckets import TRUNCS

__all__ = ["TIME_PREDICATES", "bucket", "time_predicates"]

TIME_PREDICATES = ("a timestamp is filtered by ts >= / > / <= / < DATE '2026-10-01' (or TIMESTAMP "
                   "'2026-10-01T00:00:00Z', or '2026-10-01'), the bound on either side, or ts BETWEEN "
                   "DATE 'a' AND DATE 'b'")
_LITERALS = "a time is DATE '2026-10-01', TIMESTAMP '2026-10-01T00:00:00Z' or the string '2026-10-01'"
_OPS: dict[type[exp.Expression], str] = {exp.GTE: "ge", exp.GT: "gt", exp.LTE: "le", exp.LT: "lt"}
_FLIP = {"ge": "le", "gt": "lt", "le": "ge", "lt": "gt"}  # bound on the left: 'a' <= ts is ts >= 'a'
_DATE_TYPES = (exp.DataType.Type.DATE,)
_TIME_TYPES = (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.DATETIME)


def _seconds(scope: Scope, node: exp.Expression, text: str, date_only: bool) -> int:
    """Unix seconds of an ISO 8601 date or date-time (UTC when it names no zone)."""
    try:
        if date_only:
            day = dt.date.fromisoformat(text.strip())
            return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        what = "a date (YYYY-MM-DD)" if date_only else "an ISO 8601 date or date-time"
        scope.source.refuse(node, f"the time {text!r}", f"{_LITERALS}; this is not {what}")
    if moment.microsecond:
        scope.source.refuse(node, f"the fractional seconds of {text!r}", "times are whole seconds")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def _instant(scope: Scope, node: exp.Expression) -> int:
    """A time literal's Unix seconds (see the module docstring)."""
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        kind = node.to.this if isinstance(node.to, exp.DataType) else None
        if kind in _DATE_TYPES:
            return _seconds(scope, node, str(node.this.this), date_only=True)
        if kind in _TIME_TYPES:
            return _seconds(scope, node, str(node.this.this), date_only=False)
    if isinstance(node, exp.Literal) and node.is_string:
        return _seconds(scope, node, str(node.this), date_only=False)
    scope.source.refuse(node, f"{scope.source.name(node)} as a time", _LITERALS)


def _timestamp(scope: Scope, node: exp.Expression, construct: str) -> Resolved:
    resolved = scope.column(node)
    if resolved.kind != "timestamp":
        scope.source.refuse(node, f"{construct} on {resolved}",
                            f"{resolved} is not a timestamp; comparisons and BETWEEN apply to "
                            "timestamp columns, dimensions take IN, NOT IN, = and <>")
    return resolved


def time_predicates(scope: Scope, node: exp.Expression, name: str) -> list[dict[str, Any]]:
    """A comparison or BETWEEN of a timestamp with time literals, as the plan's predicates."""
    if isinstance(node, exp.Between):
        if not isinstance(node.this, exp.Column):
            scope.source.refuse(node, f"BETWEEN on {scope.source.name(node.this)}", TIME_PREDICATES)
        if any(isinstance(node.args[k], exp.Column | exp.Add) for k in ("low", "high")):
            scope.source.refuse(node, "a time window in WHERE",
                                "a window between the datasets' times goes in the JOIN's ON: "
                                "ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY")
        ref = str(_timestamp(scope, node.this, "BETWEEN"))
        return [{"column": ref, "op": "ge", "values": [_instant(scope, node.args["low"])]},
                {"column": ref, "op": "le", "values": [_instant(scope, node.args["high"])]}]
    op = _OPS[type(node)]
    column, bound = node.this, node.expression
    if isinstance(bound, exp.Column) and isinstance(column, exp.Column):
        scope.source.refuse(node, f"comparing two columns with {name}",
                            "a timestamp is compared with a time literal; a window between the "
                            "datasets' times goes in the JOIN's ON")
    if not isinstance(column, exp.Column):
        column, bound, op = bound, column, _FLIP[op]
    if not isinstance(column, exp.Column):
        scope.source.refuse(node, f"{name} without a column", TIME_PREDICATES)
    ref = str(_timestamp(scope, column, name))
    return [{"column": ref, "op": op, "values": [_instant(scope, bound)]}]


def time_key(scope: Scope, node: exp.DateTrunc | exp.DateDiff) -> tuple[str, str]:
    """A time group key: ``DATE_TRUNC('week', c.ts)`` or ``DATEDIFF('day', i.ts, c.ts)``."""
    return lag(scope, node) if isinstance(node, exp.DateDiff) else bucket(scope, node)


def lag(scope: Scope, node: exp.DateDiff) -> tuple[str, str]:
    """``DATEDIFF('day', i.ts, c.ts)``: whole days from the credited exposure (i.ts) to the
    conversion (c.ts) of an attributed query, as ("dataset.ts" of c, "lag_days")."""
    unit, start, end = node.this, node.args.get("expression"), node.args.get("unit")
    if not (isinstance(unit, exp.Literal) and unit.is_string and str(unit.this).lower() == "day"):
        scope.source.refuse(node, "DATEDIFF in other units than 'day'",
                            "conversion lag is DATEDIFF('day', exposure.ts, conversion.ts)")
    if not isinstance(start, exp.Column) or not isinstance(end, exp.Column):
        scope.source.refuse(node, "DATEDIFF of an expression",
                            "conversion lag is DATEDIFF('day', exposure.ts, conversion.ts)")
    for column in (start, end):
        resolved = scope.column(column)
        if resolved.kind != "timestamp":
            scope.source.refuse(column, f"DATEDIFF of {resolved}", f"{resolved} is not a timestamp column")
    return str(scope.column(end)), LAG


def bucket(scope: Scope, node: exp.DateTrunc) -> tuple[str, str]:
    """``DATE_TRUNC('week', c.ts)`` as ("dataset.ts", "week")."""
    unit = node.args.get("unit")
    word = str(unit.this if isinstance(unit, exp.Literal) else unit.name if unit is not None else "")
    trunc = word.lower()
    if trunc not in TRUNCS:
        scope.source.refuse(node, f"DATE_TRUNC to {word or 'nothing'!r}",
                            f"DATE_TRUNC takes {', '.join(repr(t) for t in TRUNCS)}")
    target = node.this
    if not isinstance(target, exp.Column):
        scope.source.refuse(node, f"DATE_TRUNC of {scope.source.name(target)}",
                            "DATE_TRUNC takes a timestamp column")
    resolved = scope.column(target)
    if resolved.kind != "timestamp":
        scope.source.refuse(target, f"DATE_TRUNC of {resolved}", f"{resolved} is not a timestamp column")
    return str(resolved), trunc
