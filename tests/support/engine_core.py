"""The engine's array core in one namespace, for tests and benchmarks (outside the TCB).

Each job lives in its own enclave module (``join.py``, ``bounding.py``, ``aggregation.py``,
``cohort_codes`` in ``cohorts.py``). ``match_users`` here keys ids under a fixed, public key,
which only a benchmark or a test may do: the query path (``analysis_base.Job.match``) keys
with the sealed secret, and keeping this helper out of ``enclave/`` keeps it off that path.
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
    """``join.match_users``, keying missing join keys under a fixed public key."""
    lk = join_keys(left_ids, bytes(32)) if left_keys is None else left_keys
    rk = join_keys(right_ids, bytes(32)) if right_keys is None else right_keys
    return join.match_users(left_ids, right_ids, lk, rk)
