"""The parsed policy document: frozen dataclasses that ``protocol/policy.py`` builds and re-exports.

Read-only once parsed; field meanings are in ``policies/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

__all__ = [
    "BUDGET_UNITS", "COHORT_KEYS", "DEFAULT_DELTA", "Analysis", "ColumnRef", "Dataset", "DatasetRules",
    "Dimension", "GroupChoice", "Metric", "Party", "Policy", "Privacy", "Template", "Timestamp",
]

DEFAULT_DELTA = Fraction(1, 10**9)
COHORT_KEYS = ("public", "private")  # declared keys: released by min size, or also past τ
BUDGET_UNITS = {"pure": "epsilon", "zcdp": "rho"}  # privacy.mode -> the unit budgets are kept in


@dataclass(frozen=True)
class Party:
    id: str
    display_name: str
    signing_key: bytes  # Ed25519 raw public key: verifies this party's requests
    result_key: bytes  # X25519 raw public key: results are encrypted to it


@dataclass(frozen=True)
class Dimension:
    name: str
    values: tuple[str, ...]
    # A numeric column bucketed at declared edges: edge i (fixed point at ``edge_scale``) starts
    # bucket i, the last bucket is open; the party's client sends the bucket's code. Empty: the
    # values are declared text.
    edges: tuple[int, ...] = ()
    edge_scale: int = 0


@dataclass(frozen=True)
class Metric:
    name: str
    scale: int  # fixed point: the integer sent is value * 10**scale
    min: int  # clamp bounds, already in fixed point
    max: int


@dataclass(frozen=True)
class Timestamp:
    """An event-time column: Unix seconds (UTC), clamped to [min, max] like a metric."""

    name: str
    min: int  # Unix seconds, inclusive
    max: int
    resolution: int  # seconds the party's client floors each value to (1, 60, 3600 or 86400)


@dataclass(frozen=True)
class DatasetRules:
    """The owner's analysis rule for free-form queries (``protocol/policy_rules.py``)."""

    requesters: tuple[str, ...]
    recipients: tuple[str, ...]
    group_by: tuple[str, ...]  # dimensions of this dataset a query may group by
    filter_by: tuple[str, ...]  # dimensions it may filter on (IN / NOT IN declared values)
    count_rows: bool  # COUNT(*) of this dataset's rows may be released
    metrics: dict[str, tuple[str, ...]]  # metric -> allowed aggregates ("sum", "avg")
    join_with: tuple[str, ...]  # datasets a query of this one must also join
    max_window_days: int  # the longest time window a query may relate this dataset's events by
    min_persons: int  # fewest noisy distinct persons in a released row
    cost: Fraction  # per query, in the policy's budget unit
    max_group_by: int
    max_aggregates: int
    cohort_keys: str = "public"  # "private": a row is released only past the threshold τ


@dataclass(frozen=True)
class Dataset:
    name: str
    owner: str
    id_column: str
    id_normalization: str
    max_rows: int
    dimensions: tuple[Dimension, ...]
    metrics: tuple[Metric, ...]
    max_uploads: int = 1000  # committed uploads the dataset may hold at once
    rules: DatasetRules | None = None  # None: no free-form queries touch this dataset
    timestamps: tuple[Timestamp, ...] = ()

    def schema(self) -> tuple[tuple[str, str], ...]:
        """Upload column layout: the id first, then dimensions, metrics and timestamps."""
        return (
            ("id", "id"),
            *((d.name, "dimension") for d in self.dimensions),
            *((m.name, "metric") for m in self.metrics),
            *((t.name, "timestamp") for t in self.timestamps),
        )

    def timestamp(self, name: str) -> Timestamp | None:
        return next((t for t in self.timestamps if t.name == name), None)

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)


@dataclass(frozen=True)
class ColumnRef:
    dataset: str
    column: str

    def __str__(self) -> str:
        return f"{self.dataset}.{self.column}"


@dataclass(frozen=True)
class Analysis:
    id: str
    kind: str
    requesters: tuple[str, ...]
    recipients: tuple[str, ...]
    epsilon: Fraction | None  # per-query charge in pure mode ...
    rho: Fraction | None  # ... or in zcdp mode: exactly one of the two is set
    group_by: tuple[ColumnRef, ...]  # dimensions a query may group by
    max_group_by: int
    metrics: tuple[ColumnRef, ...]
    cohort_keys: str = "public"  # "private": a cohort is released only past the threshold τ
    events: str | None = None  # reach_frequency: the dataset whose rows are the exposures
    max_frequency: int | None = None  # reach_frequency: last histogram bucket is ">= this"
    max_identifiers: int | None = None  # cohort_activation: at most this many ids per result
    cohorts_from: str = "any"  # cohort_activation: "recipient": only the recipient's own dimensions
    approval: str = "none"  # cohort_activation: "other_owners" co-sign each activation

    @property
    def cost(self) -> Fraction:
        """What one query charges to each protected dataset, in the policy's budget unit."""
        cost = self.epsilon if self.epsilon is not None else self.rho
        assert cost is not None
        return cost


@dataclass(frozen=True)
class Template:
    """A named query with parameters that every party approved in the policy (a fixed report).

    ``plan`` is a query plan document (protocol/query_plan.py) in which the values of some WHERE
    predicates are ``{"param": name}``; a request names the template and gives each parameter's
    values, which must be declared values of the dimension ``params`` names. An entry
    ``{"param": name}`` of the plan's ``group_by`` is a choice of up to ``max`` of the columns
    ``group_params`` lists. The template's own requesters, recipients and charge apply instead of
    the datasets' rules.
    """

    id: str
    description: str
    requesters: tuple[str, ...]
    recipients: tuple[str, ...]
    cost: Fraction
    sql: str  # what the plan was compiled from, for people to read (the enclave runs the plan)
    plan: dict[str, Any]
    params: dict[str, ColumnRef]
    group_params: dict[str, GroupChoice] = field(default_factory=dict)
    cohort_keys: str = "public"  # "private": a row is released only past the threshold τ


@dataclass(frozen=True)
class GroupChoice:
    """A template's GROUP BY parameter: the request picks 0..``max`` distinct ``columns``."""

    columns: tuple[ColumnRef, ...]
    max: int


@dataclass(frozen=True)
class Privacy:
    mode: str  # "pure" (budgets in ε) or "zcdp" (budgets in ρ)
    min_cohort_size: int
    max_cohorts_per_user: int  # L0
    max_rows_per_user: int  # Linf, per (user, cohort) and per user for metrics
    epsilon_per_query_max: Fraction | None  # pure mode
    budget: dict[str, Fraction]  # total ε (pure) or ρ (zcdp) per protected dataset
    rho_per_query_max: Fraction | None = None  # zcdp mode
    delta: Fraction = DEFAULT_DELTA  # per query: private-cohort selection and ρ -> (ε, δ)
    refresh: str = "none"
    delta_total_max: Fraction | None = None  # cap on a dataset's total δ (conversion + selections)
    # dataset -> requester -> the part of that dataset's budget the requester's queries may spend;
    # a dataset listed here gives nothing to a requester it does not name
    budget_shares: dict[str, dict[str, Fraction]] = field(default_factory=dict)
    witness: str = "none"  # "owners": every charge to a dataset is co-signed by its owner

    @property
    def conversion_delta(self) -> Fraction:
        """The δ at which a zCDP total is stated as (ε, δ), spent once; pure ε needs none."""
        return self.delta if self.mode == "zcdp" else Fraction(0)

    @property
    def unit(self) -> str:
        """The budget unit: "epsilon" or "rho"."""
        return BUDGET_UNITS[self.mode]

    @property
    def per_query_max(self) -> Fraction:
        cap = self.epsilon_per_query_max if self.mode == "pure" else self.rho_per_query_max
        assert cap is not None
        return cap


@dataclass(frozen=True)
class Policy:
    raw: bytes
    hash: bytes
    collaboration_id: str
    description: str
    retention_days: int
    parties: tuple[Party, ...]
    datasets: tuple[Dataset, ...]
    join: tuple[str, str]
    privacy: Privacy
    analyses: tuple[Analysis, ...]
    templates: tuple[Template, ...] = ()

    def template(self, template_id: str) -> Template | None:
        return next((t for t in self.templates if t.id == template_id), None)

    def party(self, party_id: str) -> Party | None:
        return next((p for p in self.parties if p.id == party_id), None)

    def dataset(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)

    def analysis(self, analysis_id: str) -> Analysis | None:
        return next((a for a in self.analyses if a.id == analysis_id), None)
