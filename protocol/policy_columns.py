"""Column declarations of a dataset beyond plain dimensions: bucketed numbers and event times.

* ``[[datasets.dimensions]]`` with ``edges``: a numeric column the party's client cuts at the
  declared edges; the enclave sees only the bucket's code, like any dimension's.
* ``[[datasets.timestamps]]``: Unix seconds (UTC) in a declared range and resolution, clamped to
  that range inside the enclave like a metric.
"""

from __future__ import annotations

import itertools

from protocol.errors import PolicyInvalid
from protocol.policy_model import Dimension, Timestamp
from protocol.policy_reader import TableReader, fixed_point

__all__ = ["bucketed_dimension", "timestamp_column"]

_RESOLUTIONS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def timestamp_column(r: TableReader) -> Timestamp:
    resolution = r.get("resolution", str, "second")
    if resolution not in _RESOLUTIONS:
        raise PolicyInvalid(f"{r.where('resolution')}: must be one of {sorted(_RESOLUTIONS)}")
    column = Timestamp(r.name("name"), r.instant("min"), r.instant("max"), _RESOLUTIONS[resolution])
    if not column.min < column.max:
        raise PolicyInvalid(f"{r.path}: min must be before max")
    r.done()
    return column


def bucketed_dimension(r: TableReader) -> Dimension:
    """A numeric column cut at ``edges`` (increasing decimals): buckets "a-b" and the last "z+"."""
    edges = r.strings("edges")
    if len(edges) < 1 or "values" in r.table:
        raise PolicyInvalid(f"{r.where('edges')}: one or more edges, and no values (the buckets are them)")
    scale = max(len(e.partition(".")[2]) for e in edges)
    if scale > 9:
        raise PolicyInvalid(f"{r.where('edges')}: at most 9 decimal places")
    points = tuple(fixed_point(e, scale, r.where("edges")) for e in edges)
    if any(a >= b for a, b in itertools.pairwise(points)):
        raise PolicyInvalid(f"{r.where('edges')}: must increase strictly")
    labels = (*(f"{a}-{b}" for a, b in itertools.pairwise(edges)), f"{edges[-1]}+")
    return Dimension(r.name("name"), labels, points, scale)
