"""Typed access to the TOML tables of a policy; every error is a ``PolicyInvalid`` naming the field."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from protocol.errors import PolicyInvalid

__all__ = ["NAME", "NUMBER", "TableReader", "fixed_point"]

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
NUMBER = (str, int, float)  # how a TOML document may write a decimal number


class TableReader:
    """One TOML table, read field by field; ``done`` refuses the fields nobody asked for."""

    def __init__(self, table: object, path: str) -> None:
        if not isinstance(table, dict):
            raise PolicyInvalid(f"{path or 'policy'}: expected a table")
        self.table: dict[str, Any] = table
        self.path = path
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """The value at ``key`` if it is a ``kind`` (never a bool posing as a number)."""
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise PolicyInvalid(f"{self.where(key)}: required field is missing")
            return default
        value = self.table[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise PolicyInvalid(f"{self.where(key)}: wrong type")
        if not isinstance(value, kind):
            raise PolicyInvalid(f"{self.where(key)}: wrong type")
        return value

    def name(self, key: str, pattern: re.Pattern[str] = NAME) -> str:
        value: str = self.get(key, str)
        if not pattern.match(value):
            raise PolicyInvalid(f"{self.where(key)}: {value!r} is not a valid name")
        return value

    def positive_int(self, key: str, default: Any = ..., upper: int = 2**62) -> int:
        value: int = self.get(key, int, default)
        if not 1 <= value <= upper:
            raise PolicyInvalid(f"{self.where(key)}: must be between 1 and {upper}")
        return value

    def fraction(self, key: str, default: Any = ...) -> Fraction:
        return _positive_fraction(self.get(key, NUMBER, default), self.where(key))

    def key_bytes(self, key: str) -> bytes:
        text: str = self.get(key, str)
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise PolicyInvalid(f"{self.where(key)}: not hex") from None
        if len(raw) != 32:
            raise PolicyInvalid(f"{self.where(key)}: must be 32 bytes (64 hex digits)")
        return raw

    def tables(self, key: str) -> list[TableReader]:
        items: list[object] = self.get(key, list, [])
        return [TableReader(item, f"{self.where(key)}[{i}]") for i, item in enumerate(items)]

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        items: list[object] = self.get(key, list, default)
        texts = [s for s in items if isinstance(s, str)]
        if len(texts) != len(items):
            raise PolicyInvalid(f"{self.where(key)}: must be a list of strings")
        if len(set(texts)) != len(texts):
            raise PolicyInvalid(f"{self.where(key)}: duplicate entries")
        return tuple(texts)

    def instant(self, key: str) -> int:
        """An ISO 8601 date or UTC date-time (``2026-10-01``, ``2026-10-01T12:00:00Z``), in Unix
        seconds; a time with another offset is refused rather than silently converted."""
        text: str = self.get(key, str)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise PolicyInvalid(f"{self.where(key)}: {text!r} is not an ISO 8601 date or date-time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment.utcoffset() != timedelta(0):
            raise PolicyInvalid(f"{self.where(key)}: write times in UTC (Z)")
        return int(moment.timestamp())

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise PolicyInvalid(f"{self.where(unknown[0])}: unknown field")


def _decimal(value: object, where: str) -> Decimal:
    # Floats go through their shortest repr, so 0.1 means the decimal 0.1, not the binary one.
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise PolicyInvalid(f"{where}: not a decimal number")
    return number


def _positive_fraction(value: object, where: str) -> Fraction:
    fraction = Fraction(_decimal(value, where))
    if fraction <= 0:
        raise PolicyInvalid(f"{where}: must be positive")
    return fraction


def fixed_point(value: object, scale: int, where: str) -> int:
    """``value`` times 10**scale, refused unless that is an integer."""
    scaled = _decimal(value, where).scaleb(scale)
    if scaled != scaled.to_integral_value():
        raise PolicyInvalid(f"{where}: has more decimal places than the metric's scale")
    return int(scaled)
