"""The JOIN's ON condition: the person equality, and a time window with its attribution model.

The datasets are always joined on the person, so ``ON a.person = b.person`` says nothing new
and may be left out. The one other thing an ``ON`` may say is a time window between the two
datasets' events (docs/query-language.md, "Time"):

    ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY                  -- last touch (default)
    ON LAST_TOUCH(c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY)
    ON FIRST_TOUCH(c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY) AND i.person = c.person

which becomes the plan's ``window`` {from: i's timestamp, to: c's timestamp, max_days, model}.
Anything else (another column equality, a window in hours, NOT BETWEEN, two windows) would
mean a join the enclave does not compute, so it is refused by name and position.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from cleanroom.sql.scope import Resolved, Scope

__all__ = ["WINDOW_SHAPE", "read_on"]

WINDOW_SHAPE = ("the ON condition is a.person = b.person, a time window "
                "c.ts BETWEEN i.ts AND i.ts + INTERVAL 'n' DAY (whole days), LAST_TOUCH(<window>) "
                "or FIRST_TOUCH(<window>), optionally AND a.person = b.person")
_MODELS = {"LAST_TOUCH": "last_touch", "FIRST_TOUCH": "first_touch"}
_DAY_UNITS = ("DAY", "DAYS")


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    node = _unparen(node)
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _is_person_equality(scope: Scope, node: exp.Expression) -> bool:
    sides = (node.this, node.expression) if isinstance(node, exp.EQ) else ()
    if not sides or not all(isinstance(side, exp.Column) for side in sides):
        return False
    left, right = scope.column(node.this), scope.column(node.expression)
    owners = {left.dataset if left.qualified else None, right.dataset if right.qualified else None}
    return left.kind == right.kind == "person" and owners == set(scope.datasets)


def _timestamp(scope: Scope, node: exp.Expression, role: str) -> Resolved:
    if not isinstance(node, exp.Column):
        scope.source.refuse(node, f"{scope.source.name(node)} as the window's {role}", WINDOW_SHAPE)
    resolved = scope.column(node)
    if resolved.kind != "timestamp":
        scope.source.refuse(node, f"{resolved} in a time window",
                            f"{resolved} is not a timestamp column; " + WINDOW_SHAPE)
    return resolved


def _days(scope: Scope, interval: exp.Expression) -> int:
    """Whole days of ``INTERVAL '7' DAY`` / ``INTERVAL 7 DAY`` / ``INTERVAL '7 days'``."""
    if not isinstance(interval, exp.Interval):
        scope.source.refuse(interval, f"{scope.source.name(interval)} as the window's length", WINDOW_SHAPE)
    unit = interval.args.get("unit")
    amount = interval.this
    unit_name = unit.name.upper() if isinstance(unit, exp.Var) else ""
    text = str(amount.this) if isinstance(amount, exp.Literal) else ""
    if unit_name not in _DAY_UNITS:
        scope.source.refuse(interval, f"a window of INTERVAL {interval.sql()[9:]}",
                            "a window is a whole number of days: INTERVAL '7' DAY")
    if not (text.isascii() and text.isdigit()):
        scope.source.refuse(interval, f"a window of {text or interval.sql()} days",
                            "a window is a whole number of days: INTERVAL '7' DAY")
    return int(text)


def _window(scope: Scope, node: exp.Expression, model: str) -> dict[str, Any]:
    """``end BETWEEN start AND start + INTERVAL 'n' DAY`` as the plan's window."""
    node = _unparen(node)
    if not isinstance(node, exp.Between):
        scope.source.refuse(node, f"{scope.source.name(node)} in the time window", WINDOW_SHAPE)
    end = _timestamp(scope, node.this, "conversion time")
    start = _timestamp(scope, node.args["low"], "start")
    high = _unparen(node.args["high"])
    if not isinstance(high, exp.Add) or not isinstance(high.this, exp.Column):
        scope.source.refuse(high, f"the window's upper bound {high.sql()!r}",
                            "it is the lower bound plus an interval: i.ts + INTERVAL '7' DAY")
    added = scope.column(high.this)
    if (added.dataset, added.column) != (start.dataset, start.column):
        scope.source.refuse(high, f"the window's upper bound {high.sql()!r}",
                            f"it must be {start} + INTERVAL 'n' DAY, the same timestamp as the lower bound")
    days = _days(scope, high.expression)
    if start.dataset == end.dataset:
        scope.source.refuse(node, "a window within one dataset",
                            "a window relates the timestamps of the two joined datasets")
    return {"from": str(start), "to": str(end), "max_days": days, "model": model}


def read_on(scope: Scope) -> dict[str, Any] | None:
    """The plan's ``window`` (None: the plain person join) of the JOIN's ON condition."""
    if scope.on is None:
        return None
    window: dict[str, Any] | None = None
    for part in _conjuncts(scope.on):
        if _is_person_equality(scope, part):
            continue
        if isinstance(part, exp.Anonymous) and part.name.upper() in _MODELS:
            if len(part.expressions) != 1:
                scope.source.refuse(part, f"{part.name.upper()} with {len(part.expressions)} arguments",
                                    WINDOW_SHAPE)
            found = _window(scope, part.expressions[0], _MODELS[part.name.upper()])
        elif isinstance(part, exp.Between):
            found = _window(scope, part, "last_touch")
        else:
            scope.source.refuse(part, f"the join condition {part.sql()!r}", WINDOW_SHAPE)
        if window is not None:
            scope.source.refuse(part, "a second time window", "a join has at most one window")
        window = found
    return window
