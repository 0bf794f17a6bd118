"""The FROM clause and column names: which datasets a query joins, and what each name means.

``FROM a [alias] JOIN b [alias] [ON ...]`` and ``FROM a LEFT [OUTER] JOIN b ...`` are the only
shapes: the datasets are always joined on the person, the inner join keeping the persons of both
and the left join every person of ``a`` (the plan's ``"join": "left"``); any other join (RIGHT,
FULL, CROSS, NATURAL, USING, or a comma) would mean something the enclave does not compute and is
refused. What the ``ON`` may say (the person equality, a time window) is
``join_on.py``'s. Columns resolve against the policy's declared dimensions, metrics and
timestamps of the joined datasets; ``person`` is the reserved join column.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import TokenType, exp

from cleanroom.sql.syntax import Source, identifier
from protocol.errors import InvalidInput, PolicyViolation
from protocol.policy import Policy

__all__ = ["PERSON", "Resolved", "Scope", "read_from"]

PERSON = "person"
_JOIN_SHAPE = ("FROM a [alias] JOIN b [alias] [ON a.person = b.person] joins two datasets on the person; "
               "FROM a LEFT [OUTER] JOIN b keeps every person of a")


@dataclass(frozen=True)
class Resolved:
    """A column of a joined dataset (``kind`` "dimension", "metric", "timestamp"), or the person."""

    dataset: str | None  # None for the person, which every joined dataset shares
    column: str
    kind: str  # "dimension", "metric", "timestamp" or "person"
    qualified: bool = False  # written as alias.column (for the person: whose person it is)

    def __str__(self) -> str:
        return self.column if self.dataset is None else f"{self.dataset}.{self.column}"


class Scope:
    """The joined datasets, their aliases, and column resolution against the policy."""

    def __init__(self, source: Source, policy: Policy, datasets: list[str], aliases: dict[str, str],
                 on: exp.Expression | None = None, join: str = "inner") -> None:
        self.source = source
        self.policy = policy
        self.datasets = datasets
        self.aliases = aliases  # alias (or dataset name when it is not shadowed) -> dataset
        self.on = on  # the JOIN's ON condition, read by join_on.py
        self.join = join  # "inner", or "left": every person of datasets[0] counts

    def _kind(self, dataset: str, column: str) -> str | None:
        spec = self.policy.dataset(dataset)
        if spec is None:
            return None
        if spec.dimension(column) is not None:
            return "dimension"
        if spec.timestamp(column) is not None:
            return "timestamp"
        return "metric" if spec.metric(column) is not None else None

    def columns_of(self, dataset: str) -> list[str]:
        spec = self.policy.dataset(dataset)
        if spec is None:
            return []
        return ([d.name for d in spec.dimensions] + [m.name for m in spec.metrics]
                + [t.name for t in spec.timestamps])

    def dataset_of(self, table: exp.Expression | None, node: exp.Expression) -> str:
        """The dataset a qualifier (alias or dataset name) stands for."""
        name = identifier(table)
        if name not in self.aliases:
            raise InvalidInput(f"{name!r}{self.source.where(node)} is not a dataset or alias of the "
                               f"FROM clause; it has: {', '.join(sorted(self.aliases))}")
        return self.aliases[name]

    def column(self, node: exp.Expression) -> Resolved:
        """Resolve a column reference; an unqualified name must belong to exactly one dataset."""
        if not isinstance(node, exp.Column) or node.args.get("db") or node.args.get("catalog"):
            self.source.refuse(node, self.source.name(node), "expected a column: name or alias.name")
        if isinstance(node.this, exp.Star):
            self.source.refuse(node, f"{node.sql()}", "alias.* only inside COUNT(alias.*)")
        name = identifier(node.this)
        qualifier = node.args.get("table")
        if name == PERSON:
            if qualifier is not None:  # whose person: COUNT(DISTINCT i.person) counts i's persons
                return Resolved(self.dataset_of(qualifier, node), PERSON, "person", True)
            return Resolved(None, PERSON, "person")
        if qualifier is not None:
            dataset = self.dataset_of(qualifier, node)
            kind = self._kind(dataset, name)
            if kind is None:
                raise InvalidInput(f"{dataset} has no column {name!r}{self.source.where(node)}; its "
                                   f"columns: {', '.join(self.columns_of(dataset)) or '(none)'}")
            return Resolved(dataset, name, kind, True)
        owners = [d for d in self.datasets if self._kind(d, name) is not None]
        if len(owners) > 1:
            raise InvalidInput(f"column {name!r}{self.source.where(node)} is ambiguous: both "
                               f"{owners[0]} and {owners[1]} have it; qualify it with an alias")
        if not owners:
            listed = "; ".join(f"{d}: {', '.join(self.columns_of(d)) or '(none)'}" for d in self.datasets)
            raise InvalidInput(f"no joined dataset has a column {name!r}{self.source.where(node)} "
                               f"(the columns are {listed}; the join column is person)")
        return Resolved(owners[0], name, self._kind(owners[0], name) or "")


def _table(source: Source, node: exp.Expression | None) -> tuple[str, str | None]:
    """A plain dataset name and its optional alias."""
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
        source.refuse(node, source.name(node) if node is not None else "FROM",
                      "FROM names datasets of the policy, not subqueries or functions")
    extra = [k for k in ("db", "catalog", "joins", "laterals", "pivots", "sample", "hints",
                         "version", "when", "only", "partition", "ordinality") if node.args.get(k)]
    if extra:
        source.refuse(node, f"{node.sql()!r}", "a dataset is named by its policy name alone")
    alias = node.args.get("alias")
    if alias is not None and alias.args.get("columns"):
        source.refuse(alias, "column aliases in FROM", "a dataset takes an alias only: FROM a x")
    return identifier(node.this), identifier(alias.this) if alias is not None else None


def _join_kind(source: Source, join: exp.Join) -> str:
    """"inner" for JOIN / INNER JOIN, "left" for LEFT [OUTER] JOIN; any other join is refused."""
    side, kind = str(join.args.get("side") or "").upper(), str(join.args.get("kind") or "").upper()
    for key, label in (("method", "JOIN"), ("using", "USING"), ("match_condition", "ASOF JOIN"),
                       ("global_", "GLOBAL JOIN")):
        value = join.args.get(key)
        if value:
            source.refuse(join, f"{value} {label}" if isinstance(value, str) else label,
                          _JOIN_SHAPE + " (JOIN, INNER JOIN, LEFT JOIN or LEFT OUTER JOIN)")
    if (side, kind) in (("", ""), ("", "INNER")):
        return "inner"
    if (side, kind) in (("LEFT", ""), ("LEFT", "OUTER")):
        return "left"
    word = " ".join(w for w in (side, kind) if w) + " JOIN"
    hint = " (FROM b LEFT JOIN a keeps every person of b)" if side == "RIGHT" else ""
    source.refuse(join, word, _JOIN_SHAPE + hint + "; the joins are JOIN, INNER JOIN, LEFT JOIN and "
                  "LEFT OUTER JOIN")


def read_from(source: Source, select: exp.Select, policy: Policy) -> Scope:
    """The joined datasets (in FROM order) and the scope their aliases define."""
    from_ = select.args.get("from_")
    if from_ is None:
        source.refuse(select, "a SELECT without FROM", _JOIN_SHAPE)
    tables = [_table(source, from_.this)]
    joins = select.args.get("joins") or []
    if len(joins) > 1:
        source.refuse(joins[1], "a join of more than two datasets", _JOIN_SHAPE)
    kind = "inner"
    for join in joins:
        kind = _join_kind(source, join)
        tables.append(_table(source, join.this))
        # sqlglot parses `FROM a, b` and `FROM a JOIN b` alike; only the tokens tell them apart.
        before, after = source.offset(from_.this), source.offset(join.this)
        if before is not None and after is not None and not source.has_token_between(
                TokenType.JOIN, before, after):
            source.refuse(join, "a comma join (FROM a, b)", _JOIN_SHAPE)
    datasets = [name for name, _ in tables]
    for name in datasets:
        if policy.dataset(name) is None:  # the message check_plan gives for a plan naming it
            raise PolicyViolation(f"FROM {name}: the policy has no such dataset")
    if len(set(datasets)) != len(datasets):
        source.refuse(joins[0] if joins else from_, f"joining {datasets[0]} with itself", _JOIN_SHAPE)
    aliases: dict[str, str] = {}
    for name, alias in tables:
        if alias is not None:
            if alias in aliases or alias == PERSON:
                raise InvalidInput(f"the alias {alias!r} is used twice or is reserved")
            aliases[alias] = name
    for name, _ in tables:  # a dataset's own name works too, unless an alias took it
        aliases.setdefault(name, name)
    return Scope(source, policy, datasets, aliases, joins[0].args.get("on") if joins else None, kind)
