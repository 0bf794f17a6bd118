"""What one person can change in each vector a free-form query plan releases (docs/privacy.md).

``plan_statistics`` derives, from the checked plan and the policy's contribution bounds alone,
each released vector with its sensitivity; ``accounting.calibrate`` turns them into exact noise.
It also refuses the aggregates a dataset's rule does not allow. The enclave's plan engine
(``enclave/engine/plan_run.py``, ``plan_attribution.py``) enforces the bounds it relies on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.errors import ProtocolError
from protocol.errors import clause_denied as _deny
from protocol.policy import ColumnRef, DatasetRules, Policy
from protocol.privacy.accounting import Statistic

if TYPE_CHECKING:
    from protocol.query_plan import Plan

__all__ = ["plan_statistics"]



def _ref(text: str) -> ColumnRef:
    if text.count(".") != 1:
        raise ProtocolError("plan select: expected 'dataset.column'")
    dataset, column = text.split(".")
    return ColumnRef(dataset, column)


def plan_statistics(policy: Policy, plan: Plan, rules: dict[str, DatasetRules], n_cohorts: int,
                    group_dataset: str | None) -> tuple[Statistic, ...]:
    """The released vectors and what one person can change in each (docs/privacy.md).

    A person is in at most k = min(L0, cohorts) cohorts (one without GROUP BY), and the engine
    keeps at most Linf of its rows of a dataset per cohort, each metric clamped to C. With a
    LEFT JOIN grouped by the other dataset, ``n_cohorts`` counts the extra cohort of the kept
    dataset's unmatched persons, and k = min(L0, n_cohorts - 1) + 1: removing a person's rows
    from the other dataset moves it from its ≤ min(L0, n_cohorts - 1) cohorts to that one.

    * ``persons`` (COUNT(DISTINCT person), also the release gate): 1 in each of k cells
    * ``persons:D`` (COUNT(DISTINCT D.person): D's persons in the cohort, matched or not): the
      same, 1 in each of at most k cells
    * ``count:D`` (COUNT(*) of D's rows): ≤ Linf in each of k cells, whether the cohorts are D's
      own (its rows in that cohort) or the other dataset's (its kept rows, once per cohort)
    * ``sum:D.m``: ≤ Linf·C in each of k cells, by the same argument
    * AVG(D.m) = noisy ``sum:D.m`` / noisy ``count:D``: post-processing of the two
    * ``histogram:D`` (HISTOGRAM(D, F): persons by their number of kept D rows in the cohort, in
      buckets 1, 2, ..., "F or more"): a person is in exactly one bucket of each of its ≤ k
      cohorts, so 1 in each of k cells of the n_cohorts·F vector (F ≤ Linf, so the cap loses
      nothing bounding has not already removed)
    """
    privacy = policy.privacy
    unmatched = 1 if plan.left_join and plan.group_by else 0  # the LEFT JOIN's extra cohort
    k = min(privacy.max_cohorts_per_user, n_cohorts - unmatched) + unmatched if plan.group_by else 1
    linf = privacy.max_rows_per_user
    out = {"persons": Statistic("persons", n_cohorts, k, 1)}
    for aggregate in plan.select:
        clause = f"SELECT {aggregate.fn.upper()}({aggregate.arg})"
        if aggregate.fn == "count_distinct":
            if aggregate.arg == "person":
                continue
            dataset_name, _, column = aggregate.arg.partition(".")
            # Every person of one dataset in the cohort, matched or not (the exposed of a lift).
            if column != "person" or dataset_name not in rules:
                raise _deny(clause, "COUNT(DISTINCT ...) counts persons: person, or dataset.person")
            if plan.window is not None or plan.left_join or (plan.group_by and dataset_name != group_dataset):
                raise _deny(clause, "counts the persons of the GROUP BY dataset, with JOIN and no window")
            if not rules[dataset_name].count_rows:
                raise _deny(clause, f"the owner's rule does not allow counting {dataset_name}")
            name = f"persons:{dataset_name}"
            out.setdefault(name, Statistic(name, n_cohorts, k, 1))
            continue
        if aggregate.fn == "histogram":
            if aggregate.arg not in rules or not rules[aggregate.arg].count_rows:
                raise _deny(clause, "the owner's rule does not allow counting its rows")
            if (plan.window is not None or plan.left_join
                    or (plan.group_by and aggregate.arg != group_dataset)):
                raise _deny(clause, "a histogram counts the rows of the GROUP BY dataset, with JOIN and no "
                                    "window")
            top = aggregate.max or 0
            if top > linf:
                raise _deny(clause, f"the last bucket ({top}) is above the rows kept per person ({linf})")
            name = f"histogram:{aggregate.arg}"
            if name in out and out[name].length != n_cohorts * top:
                raise _deny(clause, "one histogram per dataset")
            out.setdefault(name, Statistic(name, n_cohorts * top, k, 1))
            continue
        if aggregate.fn == "count":
            if aggregate.arg not in rules or not rules[aggregate.arg].count_rows:
                raise _deny(clause, "the owner's rule does not allow counting its rows")
            out.setdefault(f"count:{aggregate.arg}", Statistic(f"count:{aggregate.arg}", n_cohorts, k, linf))
            continue
        ref = _ref(aggregate.arg)
        dataset = policy.dataset(ref.dataset)
        metric = dataset.metric(ref.column) if dataset else None
        if metric is None or ref.dataset not in rules:
            raise _deny(clause, "not a metric of a joined dataset")
        if aggregate.fn not in rules[ref.dataset].metrics.get(ref.column, ()):
            raise _deny(clause, f"the owner's rule does not allow {aggregate.fn.upper()} of it")
        if aggregate.fn == "avg" and plan.left_join and plan.group_by and ref.dataset != plan.datasets[0]:
            # the nil row has no rows of that dataset: its average would be noise over noise
            raise _deny(clause, f"with LEFT JOIN the (none) row has no {ref.dataset} rows; "
                                "select SUM and COUNT instead")
        clamp = max(abs(metric.min), abs(metric.max))
        out.setdefault(f"sum:{ref}", Statistic(f"sum:{ref}", n_cohorts, k, linf * clamp))
        if aggregate.fn == "avg":
            out.setdefault(f"count:{ref.dataset}", Statistic(f"count:{ref.dataset}", n_cohorts, k, linf))
    return tuple(out.values())
