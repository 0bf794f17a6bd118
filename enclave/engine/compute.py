"""The engine's array core in one namespace: the join, contribution bounding and aggregation.

Arrays in, arrays out, no Python loop per row. Each job lives in its own module
(``join.py``, ``bounding.py``, ``aggregation.py``, and ``cohort_codes`` in ``cohorts.py``); this
module only gathers them for callers that use the whole core, such as the benchmarks.
"""

from __future__ import annotations

import numpy as np

from enclave.engine import join
from enclave.engine.aggregation import AggregateCounts, aggregate, check_no_overflow, frequency_histogram
from enclave.engine.bounding import bound_contributions, per_user_metric
from enclave.engine.cohorts import cohort_codes
from enclave.engine.join import UserMatch, join_keys, unit_codes

__all__ = [
    "AggregateCounts", "UserMatch", "aggregate", "bound_contributions", "check_no_overflow", "cohort_codes",
    "frequency_histogram", "join_keys", "match_users", "per_user_metric", "unit_codes",
]


def match_users(left_ids: np.ndarray, right_ids: np.ndarray, left_keys: np.ndarray | None = None,
                right_keys: np.ndarray | None = None) -> UserMatch:
    """``join.match_users``, keying missing join keys under a fixed public key: for benchmarks and
    tests only (the query path, ``analysis_base.Job.match``, keys with the sealed secret)."""
    lk = join_keys(left_ids, bytes(32)) if left_keys is None else left_keys
    rk = join_keys(right_ids, bytes(32)) if right_keys is None else right_keys
    return join.match_users(left_ids, right_ids, lk, rk)
