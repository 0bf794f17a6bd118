"""The engine's array core in one namespace: the join, contribution bounding and aggregation.

Arrays in, arrays out, no Python loop per row. Each job lives in its own module
(``join.py``, ``bounding.py``, ``aggregation.py``, and ``cohort_codes`` in ``cohorts.py``); this
module only gathers them for callers that use the whole core, such as the benchmarks.
"""

from __future__ import annotations

from enclave.engine.aggregation import AggregateCounts, aggregate, check_no_overflow, frequency_histogram
from enclave.engine.bounding import bound_contributions, per_user_metric
from enclave.engine.cohorts import cohort_codes
from enclave.engine.join import UserMatch, match_users, unit_codes

__all__ = [
    "AggregateCounts", "UserMatch", "aggregate", "bound_contributions", "check_no_overflow", "cohort_codes",
    "frequency_histogram", "match_users", "per_user_metric", "unit_codes",
]
