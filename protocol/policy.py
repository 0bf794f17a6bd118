"""Parse a collaboration policy (TOML) into frozen dataclasses.

The policy is the contract all parties sign off on; its SHA-256 is bound into every quote. This
module only reads and validates the document: unknown keys, wrong types and dangling references
are ``PolicyInvalid`` errors that name the field. Deciding whether a request is allowed is
``enclave/requests/authorization.py``'s job alone. Schema reference: ``policies/README.md``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from protocol.errors import PolicyInvalid

__all__ = [
    "ANALYSIS_KINDS",
    "COHORT_KEYS",
    "DEFAULT_DELTA",
    "MAX_IDENTIFIERS",
    "MODES",
    "Analysis",
    "ColumnRef",
    "Dataset",
    "Dimension",
    "Metric",
    "Party",
    "Policy",
    "Privacy",
    "parse_policy",
]

POLICY_FORMAT = 1
ANALYSIS_KINDS = ("overlap", "aggregate", "reach_frequency", "attribution", "cohort_activation")
MODES = ("pure", "zcdp")  # pure ε-DP with discrete Laplace, or ρ-zCDP with discrete Gaussian
COHORT_KEYS = ("public", "private")
DEFAULT_DELTA = Fraction(1, 10**9)
MAX_IDENTIFIERS = 100_000  # cohort_activation: ids per result, so a result fits one frame
# Hard caps on a dataset's total budget (reference §5.6: AWS caps ε at 20). ρ = 2 is ε ≈ 15 at
# δ = 1e-9 by the Bun–Steinke bound.
_BUDGET_CAP = {"pure": Fraction(20), "zcdp": Fraction(2)}
_UNIT = {"pure": "epsilon", "zcdp": "rho"}
ID_NORMALIZATIONS = ("email", "phone", "exact")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_COLLAB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_DIMENSION_VALUES = 65_535  # codes travel as uint16
_MAX_ROWS_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class Party:
    id: str
    display_name: str
    signing_key: bytes  # Ed25519 raw public key: verifies this party's requests
    result_key: bytes  # X25519 raw public key: results are sealed to it


@dataclass(frozen=True)
class Dimension:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Metric:
    name: str
    scale: int  # fixed point: the integer sent is value * 10**scale
    min: int  # clamp bounds, already in fixed point
    max: int


@dataclass(frozen=True)
class Dataset:
    name: str
    owner: str
    id_column: str
    id_normalization: str
    max_rows: int
    dimensions: tuple[Dimension, ...]
    metrics: tuple[Metric, ...]

    def schema(self) -> tuple[tuple[str, str], ...]:
        """Upload column layout: the id first, then dimensions, then metrics."""
        return (
            ("id", "id"),
            *((d.name, "dimension") for d in self.dimensions),
            *((m.name, "metric") for m in self.metrics),
        )

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

    @property
    def cost(self) -> Fraction:
        """What one query charges to each protected dataset, in the policy's budget unit."""
        cost = self.epsilon if self.epsilon is not None else self.rho
        assert cost is not None
        return cost


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

    @property
    def unit(self) -> str:
        """The budget unit: "epsilon" or "rho"."""
        return _UNIT[self.mode]

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

    def party(self, party_id: str) -> Party | None:
        return next((p for p in self.parties if p.id == party_id), None)

    def dataset(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)

    def analysis(self, analysis_id: str) -> Analysis | None:
        return next((a for a in self.analyses if a.id == analysis_id), None)

    def datasets_of(self, party_id: str) -> tuple[Dataset, ...]:
        return tuple(d for d in self.datasets if d.owner == party_id)


class _Reader:
    """Typed access to one TOML table; every error names the dotted path of the field."""

    def __init__(self, table: Any, path: str) -> None:
        if not isinstance(table, dict):
            raise PolicyInvalid(f"{path or 'policy'}: expected a table")
        self.table, self.path, self.used = table, path, set()

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise PolicyInvalid(f"{self._where(key)}: required field is missing")
            return default
        value = self.table[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise PolicyInvalid(f"{self._where(key)}: wrong type")
        if not isinstance(value, kind):
            raise PolicyInvalid(f"{self._where(key)}: wrong type")
        return value

    def name(self, key: str, pattern: re.Pattern[str] = _NAME) -> str:
        value = self.get(key, str)
        if not pattern.match(value):
            raise PolicyInvalid(f"{self._where(key)}: {value!r} is not a valid name")
        return value

    def positive_int(self, key: str, default: Any = ..., upper: int = 2**62) -> int:
        value = self.get(key, int, default)
        if not 1 <= value <= upper:
            raise PolicyInvalid(f"{self._where(key)}: must be between 1 and {upper}")
        return value

    def fraction(self, key: str, default: Any = ...) -> Fraction:
        return _positive_fraction(self.get(key, (str, int, float), default), self._where(key))

    def key_bytes(self, key: str) -> bytes:
        text = self.get(key, str)
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise PolicyInvalid(f"{self._where(key)}: not hex") from None
        if len(raw) != 32:
            raise PolicyInvalid(f"{self._where(key)}: must be 32 bytes (64 hex digits)")
        return raw

    def tables(self, key: str) -> list[_Reader]:
        items = self.get(key, list, [])
        return [_Reader(item, f"{self._where(key)}[{i}]") for i, item in enumerate(items)]

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        items = self.get(key, list, default)
        if not all(isinstance(s, str) for s in items):
            raise PolicyInvalid(f"{self._where(key)}: must be a list of strings")
        if len(set(items)) != len(items):
            raise PolicyInvalid(f"{self._where(key)}: duplicate entries")
        return tuple(items)

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise PolicyInvalid(f"{self._where(unknown[0])}: unknown field")


def _decimal(value: object, where: str) -> Decimal:
    # Floats go through their shortest repr, so 0.1 means the decimal 0.1, not the binary one.
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise PolicyInvalid(f"{where}: not a decimal number")
    return number


def _positive_fraction(value: object, where: str) -> Fraction:
    fraction = Fraction(_decimal(value, where))
    if fraction <= 0:
        raise PolicyInvalid(f"{where}: must be positive")
    return fraction


def _fixed_point(value: object, scale: int, where: str) -> int:
    scaled = _decimal(value, where).scaleb(scale)
    if scaled != scaled.to_integral_value():
        raise PolicyInvalid(f"{where}: has more decimal places than the metric's scale")
    return int(scaled)


def _party(r: _Reader) -> Party:
    party = Party(r.name("id"), r.get("display_name", str, ""), r.key_bytes("signing_key"),
                  r.key_bytes("result_key"))
    r.done()
    return party


def _dataset(r: _Reader, party_ids: set[str]) -> Dataset:
    name = r.name("name")
    owner = r.get("owner", str)
    if owner not in party_ids:
        raise PolicyInvalid(f"{r.path}.owner: unknown party {owner!r}")
    normalization = r.get("id_normalization", str)
    if normalization not in ID_NORMALIZATIONS:
        raise PolicyInvalid(f"{r.path}.id_normalization: must be one of {ID_NORMALIZATIONS}")
    dimensions = []
    for d in r.tables("dimensions"):
        values = d.strings("values")
        if not 1 <= len(values) <= _MAX_DIMENSION_VALUES:
            raise PolicyInvalid(f"{d.path}.values: between 1 and {_MAX_DIMENSION_VALUES} values")
        dimensions.append(Dimension(d.name("name"), values))
        d.done()
    metrics = []
    for m in r.tables("metrics"):
        scale = m.get("scale", int)
        if not 0 <= scale <= 9:
            raise PolicyInvalid(f"{m.path}.scale: must be between 0 and 9")
        lo = _fixed_point(m.get("min", (str, int, float)), scale, f"{m.path}.min")
        hi = _fixed_point(m.get("max", (str, int, float)), scale, f"{m.path}.max")
        if lo > hi:
            raise PolicyInvalid(f"{m.path}: min is greater than max")
        if max(abs(lo), abs(hi)) >= 2**40:
            raise PolicyInvalid(f"{m.path}: clamp too large for exact 64-bit sums")
        metrics.append(Metric(m.name("name"), scale, lo, hi))
        m.done()
    columns = [d.name for d in dimensions] + [m.name for m in metrics]
    if len(set(columns)) != len(columns) or "id" in columns:
        raise PolicyInvalid(f"{r.path}: column names must be unique and not 'id'")
    dataset = Dataset(
        name=name,
        owner=owner,
        id_column=r.get("id_column", str),
        id_normalization=normalization,
        max_rows=r.positive_int("max_rows", upper=_MAX_ROWS_LIMIT),
        dimensions=tuple(dimensions),
        metrics=tuple(metrics),
    )
    r.done()
    return dataset


def _column_refs(r: _Reader, key: str, datasets: dict[str, Dataset], role: str) -> tuple[ColumnRef, ...]:
    refs = []
    for text in r.strings(key, ()):
        dataset_name, _, column = text.partition(".")
        dataset = datasets.get(dataset_name)
        found = dataset and (dataset.dimension(column) if role == "dimension" else dataset.metric(column))
        if not found:
            raise PolicyInvalid(f"{r.path}.{key}: {text!r} is not a {role} of a dataset")
        refs.append(ColumnRef(dataset_name, column))
    return tuple(refs)


def _one_dataset(refs: tuple[ColumnRef, ...], where: str) -> str | None:
    names = {ref.dataset for ref in refs}
    if len(names) > 1:
        raise PolicyInvalid(f"{where}: columns must all come from one dataset")
    return next(iter(names), None)


def _kind_rules(r: _Reader, kind: str, group_by: tuple[ColumnRef, ...], metrics: tuple[ColumnRef, ...],
                recipients: tuple[str, ...], privacy: Privacy, datasets: dict[str, Dataset],
                join: tuple[str, ...]) -> dict[str, Any]:
    """Fields and constraints that only one analysis kind has; returns the extra fields."""
    extra: dict[str, Any] = {}
    if kind in ("overlap", "reach_frequency", "cohort_activation") and metrics:
        raise PolicyInvalid(f"{r.path}.metrics: a {kind} analysis has no metrics")
    if kind == "aggregate" and not (group_by and metrics):
        raise PolicyInvalid(f"{r.path}: an aggregate needs group_by and metrics")
    if kind == "reach_frequency":
        events = r.get("events", str)
        if events not in join:
            raise PolicyInvalid(f"{r.path}.events: must name one of the joined datasets")
        if {ref.dataset for ref in group_by} - {events}:
            raise PolicyInvalid(f"{r.path}.group_by: must be dimensions of the events dataset")
        extra["events"] = events
        extra["max_frequency"] = r.positive_int("max_frequency", upper=privacy.max_rows_per_user)
    if kind == "attribution":
        if not (group_by and metrics):
            raise PolicyInvalid(f"{r.path}: an attribution needs group_by (exposures) and metrics")
        exposures = _one_dataset(group_by, f"{r.path}.group_by")
        converters = _one_dataset(metrics, f"{r.path}.metrics")
        if exposures == converters:
            raise PolicyInvalid(f"{r.path}.metrics: must come from the other joined dataset than group_by")
    if kind == "cohort_activation":
        if len(recipients) != 1 or not any(datasets[name].owner == recipients[0] for name in join):
            raise PolicyInvalid(f"{r.path}.recipients: exactly one party that owns a joined dataset")
        # Activation releases row-level identifiers, which no DP mechanism protects: the policy
        # must say so in words both parties sign.
        if r.get("release_own_identifiers", bool, False) is not True:
            raise PolicyInvalid(f"{r.path}.release_own_identifiers: must be true for cohort_activation")
        extra["max_identifiers"] = r.positive_int("max_identifiers", default=MAX_IDENTIFIERS,
                                                  upper=MAX_IDENTIFIERS)
    cohort_keys = r.get("cohort_keys", str, "public")
    if cohort_keys not in COHORT_KEYS:
        raise PolicyInvalid(f"{r.path}.cohort_keys: must be one of {COHORT_KEYS}")
    if cohort_keys == "private" and (kind == "cohort_activation" or not group_by):
        raise PolicyInvalid(f"{r.path}.cohort_keys: 'private' needs group_by and is not for activation")
    extra["cohort_keys"] = cohort_keys
    return extra


def _analysis(r: _Reader, party_ids: set[str], datasets: dict[str, Dataset], privacy: Privacy,
              join: tuple[str, ...]) -> Analysis:
    kind = r.get("kind", str)
    if kind not in ANALYSIS_KINDS:
        raise PolicyInvalid(f"{r.path}.kind: must be one of {ANALYSIS_KINDS}")
    requesters, recipients = r.strings("requesters"), r.strings("recipients")
    for key, ids in (("requesters", requesters), ("recipients", recipients)):
        if not ids or not set(ids) <= party_ids:
            raise PolicyInvalid(f"{r.path}.{key}: must name parties of the policy")
    group_by = _column_refs(r, "group_by", datasets, "dimension")
    metrics = _column_refs(r, "metrics", datasets, "metric")
    if {ref.dataset for ref in group_by + metrics} - set(join):
        raise PolicyInvalid(f"{r.path}: columns must come from the joined datasets")
    unit, other = ("epsilon", "rho") if privacy.mode == "pure" else ("rho", "epsilon")
    if other in r.table:
        raise PolicyInvalid(f"{r.path}.{other}: privacy.mode {privacy.mode!r} charges {unit}")
    cost = r.fraction(unit)
    extra = _kind_rules(r, kind, group_by, metrics, recipients, privacy, datasets, join)
    analysis = Analysis(
        id=r.name("id"),
        kind=kind,
        requesters=requesters,
        recipients=recipients,
        epsilon=cost if unit == "epsilon" else None,
        rho=cost if unit == "rho" else None,
        group_by=group_by,
        max_group_by=r.positive_int("max_group_by", default=max(1, len(group_by)), upper=8),
        metrics=metrics,
        **extra,
    )
    r.done()
    if cost > privacy.per_query_max:
        raise PolicyInvalid(f"analyses.{analysis.id}.{unit}: exceeds privacy.{unit}_per_query_max")
    return analysis


def _privacy(r: _Reader, datasets: dict[str, Dataset]) -> Privacy:
    mode = r.get("mode", str)
    if mode not in MODES:
        raise PolicyInvalid(f"{r.path}.mode: must be 'pure' (epsilon-DP, discrete Laplace) or "
                            "'zcdp' (rho-zCDP, discrete Gaussian)")
    unit, other = _UNIT[mode], _UNIT["zcdp" if mode == "pure" else "pure"]
    if f"{other}_per_query_max" in r.table:
        raise PolicyInvalid(f"{r.path}.{other}_per_query_max: privacy.mode {mode!r} uses {unit}")
    per_query_max = r.fraction(f"{unit}_per_query_max")
    budget_reader = _Reader(r.get("budget", dict), f"{r.path}.budget")
    budget = {}
    for name in datasets:
        budget[name] = budget_reader.fraction(name)
        if budget[name] > _BUDGET_CAP[mode]:
            raise PolicyInvalid(f"{r.path}.budget.{name}: at most {_BUDGET_CAP[mode]} ({unit})")
    budget_reader.done()
    delta = r.fraction("delta", default="1e-9")
    if delta >= Fraction(1, 1000):
        raise PolicyInvalid(f"{r.path}.delta: must be below 0.001 (the default is 1e-9)")
    refresh = r.get("refresh", str, "none")
    if refresh != "none":
        raise PolicyInvalid(f"{r.path}.refresh: only 'none' is supported (budgets never refresh)")
    privacy = Privacy(
        mode=mode,
        min_cohort_size=r.positive_int("min_cohort_size", upper=1_000_000),
        max_cohorts_per_user=r.positive_int("max_cohorts_per_user", upper=1000),
        max_rows_per_user=r.positive_int("max_rows_per_user", upper=100_000),
        epsilon_per_query_max=per_query_max if mode == "pure" else None,
        rho_per_query_max=per_query_max if mode == "zcdp" else None,
        budget=budget,
        delta=delta,
        refresh=refresh,
    )
    r.done()
    return privacy


def parse_policy(raw: bytes) -> Policy:
    """Validate policy bytes; raise ``PolicyInvalid`` naming the first bad field."""
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyInvalid(f"policy is not valid UTF-8 TOML: {exc}") from None
    r = _Reader(doc, "")
    if r.get("format", int) != POLICY_FORMAT:
        raise PolicyInvalid(f"format: only format {POLICY_FORMAT} is supported")
    parties = tuple(_party(p) for p in r.tables("parties"))
    party_ids = {p.id for p in parties}
    if len(parties) < 2 or len(party_ids) != len(parties):
        raise PolicyInvalid("parties: at least two parties with distinct ids")
    datasets = {}
    for d in r.tables("datasets"):
        dataset = _dataset(d, party_ids)
        if dataset.name in datasets:
            raise PolicyInvalid(f"{d.path}.name: duplicate dataset")
        datasets[dataset.name] = dataset
    join_reader = _Reader(r.get("join", dict), "join")
    join = join_reader.strings("datasets")
    join_reader.done()
    if len(join) != 2 or not set(join) <= set(datasets):
        raise PolicyInvalid("join.datasets: must name exactly two datasets")
    if datasets[join[0]].owner == datasets[join[1]].owner:
        raise PolicyInvalid("join.datasets: must belong to different parties")
    privacy = _privacy(_Reader(r.get("privacy", dict), "privacy"), datasets)
    analyses = tuple(_analysis(a, party_ids, datasets, privacy, join) for a in r.tables("analyses"))
    if len({a.id for a in analyses}) != len(analyses):
        raise PolicyInvalid("analyses: duplicate analysis id")
    policy = Policy(
        raw=raw,
        hash=hashlib.sha256(raw).digest(),
        collaboration_id=r.name("collaboration_id", _COLLAB),
        description=r.get("description", str, ""),
        retention_days=r.positive_int("retention_days", default=30, upper=3650),
        parties=parties,
        datasets=tuple(datasets.values()),
        join=(join[0], join[1]),
        privacy=privacy,
        analyses=analyses,
    )
    r.done()
    return policy
