"""A party's event times as Unix seconds (UTC): what a policy's timestamp columns carry.

Accepted, per cell: an ISO 8601 date (``2026-10-05``: midnight UTC) or date-time with ``Z`` or an
offset (``2026-10-05T12:00:00+02:00`` is 10:00 UTC) or without one (read as UTC, as the policy's
times are), with fractional seconds dropped; an integer of Unix seconds; and Parquet/Arrow
timestamp and date columns. Whole blocks go through Arrow's casts; a block with anything else
falls back to one value at a time, so a refusal names its row.

An integer above 10^11 (after the year 5138 in seconds) is refused as probably milliseconds
rather than silently read 1,000 times too late.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MAX_EPOCH_SECONDS", "unix_seconds"]

MAX_EPOCH_SECONDS = 10**11
_US = 1_000_000


def _from_arrow_times(raw: pa.Array) -> np.ndarray | None:
    """Seconds of a timestamp, date or ISO text column, or None if Arrow cannot cast all of it."""
    if pa.types.is_timestamp(raw.type) or pa.types.is_date(raw.type):
        unit = pa.timestamp("us", tz="UTC") if getattr(raw.type, "tz", None) else pa.timestamp("us")
        micro = pc.cast(raw, unit).cast(pa.int64())
        return None if micro.null_count else np.floor_divide(micro.to_numpy(), _US)
    if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
        return None
    for target in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):  # zoned, then naive (UTC)
        try:
            micro = pc.cast(raw, target).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if micro.null_count == 0:
            return np.floor_divide(micro.to_numpy(), _US)
    return None


def _one(value: object) -> int:
    """One cell's Unix seconds; ``ValueError`` (not quoting the value) if it is not a time."""
    if value is None:
        raise ValueError("time is missing")
    if isinstance(value, bool):
        raise ValueError("not a time")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(moment.timestamp())
    elif isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp())
    else:
        text = str(value).strip()
        if text.lstrip("-").isdigit() and text.isascii():
            seconds = int(text)
        else:
            try:
                moment = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError("not an ISO 8601 date or date-time, nor Unix seconds") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return int(moment.timestamp())
    if abs(seconds) > MAX_EPOCH_SECONDS:
        raise ValueError("too large for Unix seconds (milliseconds? divide by 1000)")
    return seconds


def unix_seconds(raw: pa.Array) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Each cell as int64 Unix seconds, and the (row, reason) of every cell that is not a time."""
    if pa.types.is_dictionary(raw.type):
        raw = raw.dictionary_decode()
    fast = _from_arrow_times(raw)
    if fast is not None:
        return fast.astype(np.int64), []
    if pa.types.is_integer(raw.type) and raw.null_count == 0:
        ints = raw.cast(pa.int64()).to_numpy()
        if len(ints) == 0 or np.abs(ints).max() <= MAX_EPOCH_SECONDS:
            return ints, []
    out = np.zeros(len(raw), dtype=np.int64)
    bad: list[tuple[int, str]] = []
    for i, value in enumerate(raw.to_pylist()):
        try:
            out[i] = _one(value)
        except (ValueError, OverflowError) as exc:
            bad.append((i, str(exc)))
    return out, bad
