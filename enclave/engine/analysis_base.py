"""What every analysis module receives and returns (``enclave/engine/analyses.py`` drives them).

An analysis module (``analysis_counts``, ``analysis_reach``, ``analysis_attribution``,
``analysis_activation``) has one function, which never sees noise before it is drawn:

``run(job, noisy, selection)``: read the data, add the pre-drawn noise, apply the release rule.
What one unit can change in each released vector is derived from the policy alone, without
data, in ``protocol/privacy/statistics.py`` (the party's lint runs it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from enclave.engine.bounding import RandomBytes, bound_contributions
from enclave.engine.cohorts import row_cohorts
from enclave.engine.columns import ColumnarTable
from enclave.engine.join import UserMatch, match_users
from enclave.requests.authorization import QueryPlan
from protocol.policy import Policy, Privacy

__all__ = ["BoundedRows", "Job", "Output"]


@dataclass(frozen=True)
class Job:
    plan: QueryPlan
    policy: Policy
    tables: dict[str, ColumnarTable]
    random_bytes: RandomBytes
    join_key: bytes  # the enclave's secret PRF key for identifiers (enclave/state/keys.py)

    @property
    def privacy(self) -> Privacy:
        return self.policy.privacy

    def match(self) -> tuple[UserMatch, dict[str, np.ndarray]]:
        """Matched units of the two joined datasets, and each dataset's row -> unit code."""
        left_name, right_name = self.policy.join
        match = match_users(self.tables[left_name].ids, self.tables[right_name].ids,
                            self.row_tags(left_name), self.row_tags(right_name))
        return match, {left_name: match.left_user, right_name: match.right_user}

    def row_tags(self, dataset: str) -> np.ndarray:
        """Each row's keyed join key: its person's name in the join and in bounding (cached)."""
        return self.tables[dataset].join_keys(self.join_key)

    def bounded_rows(self, dataset: str) -> BoundedRows:
        """Every row of ``dataset`` with its cohort, the matched rows bounded to L0 cohorts and
        Linf rows per unit and cohort (the keep-mask), ready for the analyses that count them."""
        match, row_user_of = self.match()
        row_user = row_user_of[dataset]
        # Full-length arrays, unmatched rows coded -1 (never kept): bounding keeps the same rows
        # with the same draws as over the matched rows alone, and no copy of them is made.
        cohorts, n_cohorts = row_cohorts(self.policy, self.tables[dataset], self.plan.group_by)
        keep = bound_contributions(
            row_user, cohorts, match.n_matched,
            max_cohorts_per_user=self.privacy.max_cohorts_per_user,
            max_rows_per_user_per_cohort=self.privacy.max_rows_per_user,
            random_bytes=self.random_bytes, n_cohorts=n_cohorts, row_tag=self.row_tags(dataset),
        )
        return BoundedRows(match, row_user_of, row_user, cohorts, n_cohorts, keep)


@dataclass(frozen=True)
class BoundedRows:
    match: UserMatch
    row_user_of: dict[str, np.ndarray]  # per joined dataset: row -> matched unit code or -1
    users: np.ndarray  # unit of each row of the dataset, -1 if unmatched
    cohorts: np.ndarray  # cohort code of each row of the dataset
    n_cohorts: int
    keep: np.ndarray  # rows kept by contribution bounding (never an unmatched one)


@dataclass
class Output:
    columns: list[str]
    rows: list[list[Any]]
    cohorts_total: int
    suppressed: int
    metadata: dict[str, Any] = field(default_factory=dict)

