"""Parse a collaboration policy (TOML) into the frozen dataclasses of ``protocol/policy_model.py``.

The policy is the contract all parties sign off on; its SHA-256 is bound into every quote. This
module only reads and validates the document: unknown keys, wrong types and dangling references
are ``PolicyInvalid`` errors that name the field. Deciding whether a request is allowed is
``enclave/requests/authorization.py``'s job alone. Schema reference: ``policies/README.md``.
Every dataclass is re-exported here, so ``protocol.policy`` is the one import for the document.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from fractions import Fraction
from typing import Any

from protocol.errors import PolicyInvalid
from protocol.policy_columns import bucketed_dimension, timestamp_column
from protocol.policy_model import (
    BUDGET_UNITS,
    COHORT_KEYS,
    DEFAULT_DELTA,
    Analysis,
    ColumnRef,
    Dataset,
    DatasetRules,
    Dimension,
    Metric,
    Party,
    Policy,
    Privacy,
    Timestamp,
)
from protocol.policy_reader import NUMBER, TableReader, fixed_point
from protocol.policy_rules import dataset_rules
from protocol.report_data import policy_hash
from protocol.templates import check_templates, parse_templates
from protocol.wire import MAX_UPLOADS_LIMIT

__all__ = [
    "ANALYSIS_KINDS",
    "COHORT_KEYS",
    "DEFAULT_DELTA",
    "MAX_IDENTIFIERS",
    "MODES",
    "WITNESS_MODES",
    "Analysis",
    "ColumnRef",
    "Dataset",
    "DatasetRules",
    "Dimension",
    "Metric",
    "Party",
    "Policy",
    "Privacy",
    "Timestamp",
    "parse_policy",
]

POLICY_FORMAT = 1
ANALYSIS_KINDS = ("overlap", "aggregate", "reach_frequency", "attribution", "cohort_activation")
WITNESS_MODES = ("none", "owners")  # docs/witness.md
MODES = ("pure", "zcdp")  # pure ε-DP with discrete Laplace, or ρ-zCDP with discrete Gaussian
MAX_IDENTIFIERS = 100_000  # cohort_activation: ids per result, so a result fits one frame
# Hard caps on a dataset's total budget (docs/privacy.md: AWS caps ε at 20). ρ = 2 is ε ≈ 15 at
# δ = 1e-9 by the Bun–Steinke bound.
_BUDGET_CAP = {"pure": Fraction(20), "zcdp": Fraction(2)}
ID_NORMALIZATIONS = ("email", "phone", "exact")
_COLLAB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_DIMENSION_VALUES = 65_535  # codes travel as uint16
_MAX_ROWS_LIMIT = 2**31 - 1


def _party(r: TableReader) -> Party:
    party = Party(r.name("id"), r.get("display_name", str, ""), r.key_bytes("signing_key"),
                  r.key_bytes("result_key"))
    r.done()
    return party


def _dataset(r: TableReader, party_ids: set[str]) -> Dataset:
    name = r.name("name")
    r.used.add("rules")  # parsed with the privacy section, whose unit it charges in
    owner = r.get("owner", str)
    if owner not in party_ids:
        raise PolicyInvalid(f"{r.path}.owner: unknown party {owner!r}")
    normalization = r.get("id_normalization", str)
    if normalization not in ID_NORMALIZATIONS:
        raise PolicyInvalid(f"{r.path}.id_normalization: must be one of {ID_NORMALIZATIONS}")
    dimensions = []
    for d in r.tables("dimensions"):
        dimension = (bucketed_dimension(d) if "edges" in d.table
                     else Dimension(d.name("name"), d.strings("values")))
        if not 1 <= len(dimension.values) <= _MAX_DIMENSION_VALUES:
            raise PolicyInvalid(f"{d.path}.values: between 1 and {_MAX_DIMENSION_VALUES} values")
        dimensions.append(dimension)
        d.done()
    metrics = []
    for m in r.tables("metrics"):
        scale = m.get("scale", int)
        if not 0 <= scale <= 9:
            raise PolicyInvalid(f"{m.path}.scale: must be between 0 and 9")
        lo = fixed_point(m.get("min", NUMBER), scale, f"{m.path}.min")
        hi = fixed_point(m.get("max", NUMBER), scale, f"{m.path}.max")
        if lo > hi:
            raise PolicyInvalid(f"{m.path}: min is greater than max")
        if max(abs(lo), abs(hi)) >= 2**40:
            raise PolicyInvalid(f"{m.path}: clamp too large for exact 64-bit sums")
        metrics.append(Metric(m.name("name"), scale, lo, hi))
        m.done()
    timestamps = [timestamp_column(t) for t in r.tables("timestamps")]
    columns = [d.name for d in dimensions] + [m.name for m in metrics] + [t.name for t in timestamps]
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
        max_uploads=r.positive_int("max_uploads", 1000, upper=MAX_UPLOADS_LIMIT),
        timestamps=tuple(timestamps),
    )
    r.done()
    return dataset


def _column_refs(r: TableReader, key: str, datasets: dict[str, Dataset], role: str) -> tuple[ColumnRef, ...]:
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


def _kind_rules(r: TableReader, kind: str, group_by: tuple[ColumnRef, ...], metrics: tuple[ColumnRef, ...],
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
        extra.update(_activation_limits(r, group_by, recipients[0], datasets))
    cohort_keys = r.get("cohort_keys", str, "public")
    if cohort_keys not in COHORT_KEYS:
        raise PolicyInvalid(f"{r.path}.cohort_keys: must be one of {COHORT_KEYS}")
    if cohort_keys == "private" and (kind == "cohort_activation" or not group_by):
        raise PolicyInvalid(f"{r.path}.cohort_keys: 'private' needs group_by and is not for activation")
    extra["cohort_keys"] = cohort_keys
    return extra


def _activation_limits(r: TableReader, group_by: tuple[ColumnRef, ...], recipient: str,
                       datasets: dict[str, Dataset]) -> dict[str, str]:
    """The two ways a data owner narrows the activation membership oracle (docs/privacy.md).

    ``cohorts_from = "recipient"``: cohorts may use only the recipient's own dimensions, so the
    other party's attributes never select whom to release. ``approval = "other_owners"``: every
    other owner of a joined dataset co-signs each activation before it runs (docs/witness.md).
    """
    cohorts_from = r.get("cohorts_from", str, "any")
    if cohorts_from not in ("any", "recipient"):
        raise PolicyInvalid(f"{r.path}.cohorts_from: must be 'any' or 'recipient'")
    if cohorts_from == "recipient" and any(datasets[ref.dataset].owner != recipient for ref in group_by):
        raise PolicyInvalid(f"{r.path}.group_by: cohorts_from = 'recipient' allows only dimensions "
                            f"of datasets {recipient!r} owns")
    approval = r.get("approval", str, "none")
    if approval not in ("none", "other_owners"):
        raise PolicyInvalid(f"{r.path}.approval: must be 'none' or 'other_owners'")
    return {"cohorts_from": cohorts_from, "approval": approval}


def _analysis(r: TableReader, party_ids: set[str], datasets: dict[str, Dataset], privacy: Privacy,
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


def _privacy(r: TableReader, datasets: dict[str, Dataset], party_ids: set[str]) -> Privacy:
    mode = r.get("mode", str)
    if mode not in MODES:
        raise PolicyInvalid(f"{r.path}.mode: must be 'pure' (epsilon-DP, discrete Laplace) or "
                            "'zcdp' (rho-zCDP, discrete Gaussian)")
    unit, other = BUDGET_UNITS[mode], BUDGET_UNITS["zcdp" if mode == "pure" else "pure"]
    if f"{other}_per_query_max" in r.table:
        raise PolicyInvalid(f"{r.path}.{other}_per_query_max: privacy.mode {mode!r} uses {unit}")
    per_query_max = r.fraction(f"{unit}_per_query_max")
    budget_reader = TableReader(r.get("budget", dict), f"{r.path}.budget")
    budget = {}
    for name in datasets:
        budget[name] = budget_reader.fraction(name)
        if budget[name] > _BUDGET_CAP[mode]:
            raise PolicyInvalid(f"{r.path}.budget.{name}: at most {_BUDGET_CAP[mode]} ({unit})")
    budget_reader.done()
    delta = r.fraction("delta", default="1e-9")
    if delta >= Fraction(1, 1000):
        raise PolicyInvalid(f"{r.path}.delta: must be below 0.001 (the default is 1e-9)")
    # A dataset's whole guarantee is (ε, conversion δ + every private-cohort selection's δ);
    # the cap bounds that sum, so a long run of private-cohort queries cannot grow δ unseen.
    delta_total_max = r.fraction("delta_total_max") if "delta_total_max" in r.table else None
    conversion = delta if mode == "zcdp" else Fraction(0)
    if delta_total_max is not None and not conversion < delta_total_max < Fraction(1, 100):
        raise PolicyInvalid(f"{r.path}.delta_total_max: must be below 0.01 and above the "
                            f"conversion delta ({conversion})")
    shares = _budget_shares(r, budget, party_ids)
    witness = r.get("witness", str, "none")
    if witness not in WITNESS_MODES:
        raise PolicyInvalid(f"{r.path}.witness: must be 'none' or 'owners' (docs/witness.md)")
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
        delta_total_max=delta_total_max,
        budget_shares=shares,
        witness=witness,
    )
    r.done()
    return privacy


def _budget_shares(r: TableReader, budget: dict[str, Fraction],
                   party_ids: set[str]) -> dict[str, dict[str, Fraction]]:
    """``[privacy.budget_shares.<dataset>]``: requester -> share; the shares fit in the budget.

    Without shares every requester draws on the one pool, so one party can spend what another
    needed; with them, a requester's queries stop at its own share.
    """
    if "budget_shares" not in r.table:
        return {}
    tables = TableReader(r.get("budget_shares", dict), f"{r.path}.budget_shares")
    shares: dict[str, dict[str, Fraction]] = {}
    for name in budget:
        if name not in tables.table:
            continue
        reader = TableReader(tables.get(name, dict), f"{tables.path}.{name}")
        shares[name] = {}
        for party in sorted(reader.table):
            if party not in party_ids:
                raise PolicyInvalid(f"{reader.path}.{party}: not a party of the policy")
            shares[name][party] = reader.fraction(party)
            if shares[name][party] <= 0:
                raise PolicyInvalid(f"{reader.path}.{party}: a share must be positive")
        reader.done()
        if sum(shares[name].values()) > budget[name]:
            raise PolicyInvalid(f"{tables.path}.{name}: the shares add up to more than "
                                f"privacy.budget.{name}")
    tables.done()
    return shares


def parse_policy(raw: bytes) -> Policy:
    """Validate policy bytes; raise ``PolicyInvalid`` naming the first bad field."""
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyInvalid(f"policy is not valid UTF-8 TOML: {exc}") from None
    r = TableReader(doc, "")
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
    join_reader = TableReader(r.get("join", dict), "join")
    join = join_reader.strings("datasets")
    join_reader.done()
    if len(join) != 2 or not set(join) <= set(datasets):
        raise PolicyInvalid("join.datasets: must name exactly two datasets")
    if datasets[join[0]].owner == datasets[join[1]].owner:
        raise PolicyInvalid("join.datasets: must belong to different parties")
    privacy = _privacy(TableReader(r.get("privacy", dict), "privacy"), datasets, party_ids)
    for d in r.tables("datasets"):
        if "rules" in d.table:
            name = d.table["name"]
            rules = dataset_rules(TableReader(d.table["rules"], f"{d.path}.rules"), datasets[name],
                                  party_ids, privacy.mode, set(datasets))
            if rules.cost > privacy.per_query_max:
                raise PolicyInvalid(f"{d.path}.rules.{privacy.unit}: exceeds "
                                    f"privacy.{privacy.unit}_per_query_max")
            datasets[name] = replace(datasets[name], rules=rules)
    analyses = tuple(_analysis(a, party_ids, datasets, privacy, join) for a in r.tables("analyses"))
    templates = parse_templates(r, party_ids, datasets, privacy.mode, privacy.per_query_max)
    if len({a.id for a in analyses} | {t.id for t in templates}) != len(analyses) + len(templates):
        raise PolicyInvalid("analyses: duplicate analysis or template id")
    policy = Policy(
        raw=raw,
        hash=policy_hash(raw),
        collaboration_id=r.name("collaboration_id", _COLLAB),
        description=r.get("description", str, ""),
        retention_days=r.positive_int("retention_days", default=30, upper=3650),
        parties=parties,
        datasets=tuple(datasets.values()),
        join=(join[0], join[1]),
        privacy=privacy,
        analyses=analyses,
        templates=templates,
    )
    r.done()
    check_templates(policy)
    return policy
