"""A dataset owner's analysis rule for free-form queries: ``[datasets.rules]`` (docs/query-language.md).

The rule is the AWS Clean Rooms aggregation rule adapted to differential privacy: which of the
dataset's columns a query may group by and filter on, which aggregates of its metrics it may
release, which datasets it must be joined with, the fewest noisy distinct persons per released
row, what one query costs, who may ask, and who receives the answer. A query that touches
several datasets must pass every one of their rules (``protocol/query_plan.py``).
"""

from __future__ import annotations

from fractions import Fraction

from protocol.errors import PolicyInvalid
from protocol.policy_model import BUDGET_UNITS, COHORT_KEYS, Dataset, DatasetRules
from protocol.policy_reader import TableReader

__all__ = ["METRIC_AGGREGATES", "dataset_rules"]

METRIC_AGGREGATES = ("sum", "avg")


def dataset_rules(r: TableReader, dataset: Dataset, party_ids: set[str], mode: str,
                  dataset_names: set[str]) -> DatasetRules:
    """Parse one ``[datasets.rules]`` table; every error names its field."""
    unit = BUDGET_UNITS[mode]
    requesters, recipients = r.strings("requesters"), r.strings("recipients")
    for key, ids in (("requesters", requesters), ("recipients", recipients)):
        if not ids or not set(ids) <= party_ids:
            raise PolicyInvalid(f"{r.where(key)}: must name parties of the policy")
    columns = {d.name for d in dataset.dimensions} | {t.name for t in dataset.timestamps}
    group_by = r.strings("group_by", default=())
    filter_by = r.strings("filter_by", default=())
    for key, names in (("group_by", group_by), ("filter_by", filter_by)):
        unknown = sorted(set(names) - columns)
        if unknown:
            raise PolicyInvalid(f"{r.where(key)}: {unknown[0]!r} is not a dimension or timestamp "
                                f"of {dataset.name}")
    metrics: dict[str, tuple[str, ...]] = {}
    if "metrics" in r.table:
        table = TableReader(r.get("metrics", dict), r.where("metrics"))
        for name in sorted(table.table):
            if dataset.metric(name) is None:
                raise PolicyInvalid(f"{table.where(name)}: not a metric of {dataset.name}")
            functions = table.strings(name)
            if not functions or set(functions) - set(METRIC_AGGREGATES):
                raise PolicyInvalid(f"{table.where(name)}: aggregates must be among {METRIC_AGGREGATES}")
            metrics[name] = functions
        table.done()
    join_with = r.strings("join_with", default=())
    if set(join_with) - (dataset_names - {dataset.name}):
        raise PolicyInvalid(f"{r.where('join_with')}: must name other datasets of the policy")
    other = "rho" if unit == "epsilon" else "epsilon"
    if other in r.table:
        raise PolicyInvalid(f"{r.where(other)}: privacy.mode {mode!r} charges {unit}")
    rules = DatasetRules(
        requesters=requesters, recipients=recipients, group_by=group_by, filter_by=filter_by,
        count_rows=r.get("count_rows", bool, True), metrics=metrics, join_with=join_with,
        max_window_days=r.positive_int("max_window_days", default=30, upper=366),
        min_persons=r.positive_int("min_persons", upper=1_000_000),
        cost=r.fraction(unit), max_group_by=r.positive_int("max_group_by", default=2, upper=8),
        max_aggregates=r.positive_int("max_aggregates", default=8, upper=32),
        cohort_keys=r.get("cohort_keys", str, "public"),
    )
    r.done()
    if rules.cohort_keys not in COHORT_KEYS:
        raise PolicyInvalid(f"{r.where('cohort_keys')}: must be one of {COHORT_KEYS}")
    if rules.cost <= Fraction(0):
        raise PolicyInvalid(f"{r.where(unit)}: must be positive")
    return rules
