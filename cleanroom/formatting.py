"""How numbers and times look to people, one way for every command.

* counts and amounts both get thousands separators (``1,234`` and ``12,345.67``); a decimal keeps
  the places it was given, so a sum in cents never loses or gains a digit;
* exact fractions from signed documents (budgets, charges: ``"29/5"``) print as decimals, rounded
  in the direction that never flatters: what is left rounds down, what was spent rounds up;
* times are ISO 8601 in UTC (``2026-09-21T10:00:00Z``), never Unix seconds.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction
from typing import Any

__all__ = ["amount_text", "count_text", "fraction_decimal", "iso_utc", "number_text"]

_PRECISION = 50
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def iso_utc(seconds: Any) -> str:
    """``seconds`` since the epoch as ``YYYY-MM-DDTHH:MM:SSZ``; anything else as given."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return str(seconds)
    try:
        moment = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC)
    except (OverflowError, OSError, ValueError):
        return str(seconds)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def count_text(value: int) -> str:
    return f"{value:,}"


def amount_text(value: Decimal, places: int | None = None) -> str:
    """``value`` with thousands separators and ``places`` decimals (default: as it is written)."""
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    exponent = value.as_tuple().exponent
    shown = max(0, -exponent) if isinstance(exponent, int) else 0
    return f"{value:,.{shown}f}"


def number_text(value: Any) -> str:
    """A released cell for a table: ints and decimal strings with separators, the rest as is."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return count_text(value)
    if isinstance(value, Decimal):
        return amount_text(value)
    if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value):  # "1e5" or "NaN" stay text
        return amount_text(Decimal(value))
    return str(value)


def fraction_decimal(text: Any, *, places: int = 6, up: bool = False) -> str:
    """An exact fraction (``"29/5"``, ``"6"``, a ``Fraction``) as a short decimal.

    Exact when it has at most ``places`` decimals; otherwise rounded down (``up=False``: use it
    for what remains) or up (``up=True``: for what was charged), so a budget never looks larger
    than it is. Anything that is not a number comes back as given.
    """
    try:
        value = Fraction(text) if not isinstance(text, Fraction) else text
    except (TypeError, ValueError, ZeroDivisionError):
        return str(text)
    rounding = ROUND_CEILING if up else ROUND_FLOOR
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        if exact != 0 and abs(exact) < Decimal(1).scaleb(-places):
            # A tiny δ: three significant digits, rounded the same safe way, not a false zero.
            power = exact.adjusted()
            mantissa = exact.scaleb(-power).quantize(Decimal("0.01"), rounding=rounding)
            return f"{mantissa.normalize():f}e{power}"
        rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=rounding)
    if rounded == exact:
        rounded = exact.normalize()
    digits = f"{rounded:f}"
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return "0" if digits in ("-0", "") else digits
