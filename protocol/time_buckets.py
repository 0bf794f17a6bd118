"""Time buckets of ``DATE_TRUNC`` (docs/query-language.md): day, ISO week (from Monday), month.

A bucket is an integer: days since 1970-01-01, weeks since the Monday 1969-12-29, or months since
January 1970. A timestamp column's declared [min, max] fixes its buckets, so how many rows a
grouped query releases is public. The enclave computes each row's bucket with the same
arithmetic, vectorised (``enclave/engine/plan_run.py``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from protocol.policy import Timestamp

__all__ = ["DAY", "TRUNCS", "WEEK_SHIFT", "bucket_of", "bucket_range", "bucket_start"]

TRUNCS = ("day", "week", "month")
DAY = 86_400
_EPOCH = date(1970, 1, 1)
WEEK_SHIFT = 3  # 1970-01-01 was a Thursday: day d lies in week (d + 3) // 7, from Monday


def bucket_of(seconds: int, trunc: str) -> int:
    """The bucket of a Unix time (UTC)."""
    days = seconds // DAY
    if trunc == "day":
        return days
    if trunc == "week":
        return (days + WEEK_SHIFT) // 7
    if trunc == "month":
        moment = datetime.fromtimestamp(seconds, tz=UTC)
        return (moment.year - 1970) * 12 + moment.month - 1
    raise ValueError(f"unknown truncation {trunc!r}")


def bucket_range(column: Timestamp, trunc: str) -> tuple[int, int]:
    """The first bucket of ``column``'s declared range and how many buckets it spans."""
    first = bucket_of(column.min, trunc)
    return first, bucket_of(column.max, trunc) - first + 1


def bucket_start(bucket: int, trunc: str) -> str:
    """The ISO date a bucket starts on: its label in results."""
    if trunc == "day":
        return (_EPOCH + timedelta(days=bucket)).isoformat()
    if trunc == "week":
        return (_EPOCH + timedelta(days=bucket * 7 - WEEK_SHIFT)).isoformat()
    if trunc == "month":
        return date(1970 + bucket // 12, bucket % 12 + 1, 1).isoformat()
    raise ValueError(f"unknown truncation {trunc!r}")
