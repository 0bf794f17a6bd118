"""Analysts' SQL -> plan v1 (docs/query-language.md), on the party's machine only.

The compiler accepts exactly the documented dialect and refuses everything else, naming the
construct and where it is. FROM and column names are ``scope.py``'s, the JOIN's ON (person
equality, time window) ``join_on.py``'s, time literals and DATE_TRUNC ``time_syntax.py``'s, a
template's parameters ``template_params.py``'s. It
emits the plan's wire map and hands it to ``protocol.query_plan.parse_plan``, so the structure
is checked by the same code as in the enclave; whether the policy's rules allow it is
``check_plan``'s call (``cleanroom.sql``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from cleanroom.sql.join_on import read_on
from cleanroom.sql.scope import PERSON, Resolved, Scope, read_from
from cleanroom.sql.syntax import Source, identifier
from cleanroom.sql.template_params import (
    GROUP_PARAMETER,
    PARAMETER,
    group_parameter,
    parameter_name,
    selected_parameter,
)
from cleanroom.sql.time_syntax import TIME_PREDICATES, time_key, time_predicates
from protocol.errors import InvalidInput, ProtocolError
from protocol.policy import Policy
from protocol.query_plan import PLAN_VERSION, Plan, parse_plan

__all__ = ["compile_plan", "compile_template"]

_ALIAS = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")  # what parse_plan accepts for an `as` name
_CLAUSES = ("expressions", "from_", "joins", "where", "group")
_CLAUSE_NAMES = {"with_": "WITH", "distinct": "SELECT DISTINCT", "having": "HAVING", "qualify": "QUALIFY",
                 "order": "ORDER BY", "limit": "LIMIT", "offset": "OFFSET", "windows": "WINDOW",
                 "laterals": "LATERAL", "sample": "TABLESAMPLE", "into": "SELECT INTO",
                 "locks": "FOR UPDATE", "pivots": "PIVOT", "sort": "SORT BY", "cluster": "CLUSTER BY",
                 "distribute": "DISTRIBUTE BY", "prewhere": "PREWHERE", "connect": "CONNECT BY"}
_WHY_NOT = {"order": "the result has one row per declared combination of the group-by values, "
                     "in the policy's order",
            "limit": "every combination of declared values is a row of the result (the shape is public)",
            "having": "rows are released when their noisy persons reach the rules' min_persons"}
_STATEMENT = ("one SELECT of group-by columns and aggregates FROM two joined datasets (JOIN or LEFT "
              "JOIN), with optional WHERE and GROUP BY")
_PREDICATES = ("WHERE takes predicates joined by AND: col IN ('v', ...), col NOT IN (...), col = 'v', "
               "col <> 'v' (or !=) on dimension columns; ts >= / > / <= / < DATE '2026-10-01' and "
               "ts BETWEEN DATE 'a' AND DATE 'b' on timestamp columns")
_AGGREGATES = ("SELECT takes group-by columns, DATE_TRUNC('week', a.ts) AS name, and aggregates with AS "
               "names: COUNT(DISTINCT person), COUNT(DISTINCT a.person), COUNT(*), COUNT(a.*), "
               "COUNT(a.column), SUM(a.metric), AVG(a.metric)")
_GROUP_BY = ("GROUP BY lists dimension columns, time buckets by their SELECT name "
             "(DATE_TRUNC('week', a.ts) AS week ... GROUP BY week), or SELECT positions")


# A group key: (dataset.column, DATE_TRUNC unit or None, output name); a template's GROUP BY :name
# is (":name", PARAMETER, name).
Key = tuple[str, str | None, str]


def _ref(resolved: Resolved) -> str:
    return f"{resolved.dataset}.{resolved.column}"


class _Compiler:
    def __init__(self, source: Source, policy: Policy, *, parameters: bool = False) -> None:
        self.source = source
        # A template's SQL (protocol/templates.py): ``IN (:name)`` is a parameter of the column.
        self.parameters: dict[str, str] | None = {} if parameters else None
        statement = source.statement
        if not isinstance(statement, exp.Select):
            set_operation = isinstance(statement, exp.Union | exp.Intersect | exp.Except)
            source.refuse(statement, source.name(statement) if set_operation
                          else f"the statement {statement.key.upper()}", _STATEMENT)
        self.select = statement
        for key, value in statement.args.items():
            if value and key not in _CLAUSES:
                label = _CLAUSE_NAMES.get(key, key.upper().replace("_", " "))
                node = value if isinstance(value, exp.Expression) else (
                    value[0] if isinstance(value, list) and value and isinstance(value[0], exp.Expression)
                    else None)
                self.source.refuse(node, label, _WHY_NOT.get(key, _STATEMENT))
        self.scope: Scope = read_from(source, statement, policy)
        self.window = read_on(self.scope)

    # --- WHERE --------------------------------------------------------------------------------

    def _conjuncts(self, node: exp.Expression) -> list[exp.Expression]:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.And):
            return self._conjuncts(node.this) + self._conjuncts(node.expression)
        return [node]

    def _literal(self, node: exp.Expression, context: exp.Expression) -> str:
        if isinstance(node, exp.Literal) and node.is_string:
            return str(node.this)
        hint = " (double quotes name columns; a value takes single quotes)" if isinstance(
            node, exp.Column) else ""
        self.source.refuse(node, f"{self.source.name(node)} as a value",
                           f"values are string literals such as 'north'{hint}")

    def _filter_column(self, node: exp.Expression, construct: str) -> str:
        resolved = self.scope.column(node)
        if resolved.kind == "person":
            self.source.refuse(node, "a filter on person", "person is the join column; " + _PREDICATES)
        if resolved.kind == "timestamp":
            self.source.refuse(node, f"{construct} on the timestamp {resolved}", TIME_PREDICATES)
        return _ref(resolved)

    def _predicates(self, node: exp.Expression) -> list[dict[str, Any]]:
        if isinstance(node, exp.Between) or type(node) in (exp.GT, exp.GTE, exp.LT, exp.LTE):
            return time_predicates(self.scope, node, self.source.name(node))
        return [self._predicate(node)]

    def _predicate(self, node: exp.Expression) -> dict[str, Any]:
        negated = False
        if isinstance(node, exp.Not) and isinstance(node.this, exp.In):
            negated, node = True, node.this
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                self.source.refuse(node, "IN with a subquery", _PREDICATES)
            column = self._filter_column(node.this, "NOT IN" if negated else "IN")
            places = node.expressions
            if len(places) == 1 and isinstance(places[0], exp.Placeholder):
                name = parameter_name(self.source, places[0], self.parameters)
                assert self.parameters is not None
                self.parameters[name] = column
                return {"column": column, "op": "not_in" if negated else "in", "values": {"param": name}}
            values = [self._literal(v, node) for v in places]
            return {"column": column, "op": "not_in" if negated else "in", "values": values}
        if isinstance(node, exp.EQ | exp.NEQ):
            column, value = node.this, node.expression
            if not isinstance(column, exp.Column) and isinstance(value, exp.Column):
                column, value = value, column  # 'v' = col reads the same
            op = "in" if isinstance(node, exp.EQ) else "not_in"
            return {"column": self._filter_column(column, "=" if op == "in" else "<>"), "op": op,
                    "values": [self._literal(value, node)]}
        self.source.refuse(node, self.source.name(node), _PREDICATES)

    def where(self) -> list[dict[str, Any]]:
        clause = self.select.args.get("where")
        if clause is None:
            return []
        return [q for p in self._conjuncts(clause.this) for q in self._predicates(p)]

    # --- GROUP BY -----------------------------------------------------------------------------

    def _select_items(self) -> list[exp.Expression]:
        items = list(self.select.expressions)
        if not items:
            self.source.refuse(self.select, "an empty SELECT", _AGGREGATES)
        return items

    def _bucket_name(self, item: exp.Expression, node: exp.Expression) -> str:
        if not isinstance(item, exp.Alias):
            self.source.refuse(node, "a time bucket without AS",
                               "name it in SELECT: DATE_TRUNC('week', c.ts) AS week, then GROUP BY week")
        return identifier(item.args.get("alias"))

    def _key(self, node: exp.Expression, items: list[exp.Expression],
             aliases: Mapping[str, exp.Expression]) -> Key:
        """One GROUP BY entry as (dataset.column, trunc or None, output name)."""
        target, item = node, None
        if isinstance(node, exp.Literal) and not node.is_string:
            position = int(node.this) if str(node.this).isdigit() else 0
            if not 1 <= position <= len(items):
                raise InvalidInput(f"GROUP BY {node.this}{self.source.where(node)}: the SELECT has "
                                   f"{len(items)} items")
            target = item = items[position - 1]
        elif (isinstance(node, exp.Column) and node.args.get("table") is None
              and identifier(node.this) in aliases and not self._is_column_name(node)):
            target = item = aliases[identifier(node.this)]
        elif isinstance(node, exp.DateTrunc | exp.DateDiff):  # written out again: its SELECT name
            item = next((i for i in items if isinstance(i, exp.Alias) and i.this == node), node)
        if isinstance(target, exp.Alias):
            target = target.this
        if isinstance(target, exp.Placeholder):
            return group_parameter(self.source, target, self.parameters)
        if isinstance(target, exp.DateTrunc | exp.DateDiff):
            ref, trunc = time_key(self.scope, target)
            return ref, trunc, self._bucket_name(item if item is not None else target, node)
        if not isinstance(target, exp.Column):
            self.source.refuse(node, f"GROUP BY {self.source.name(target)}",
                               _GROUP_BY + "; not aggregates or other expressions")
        resolved = self.scope.column(target)
        if resolved.kind == "timestamp":
            self.source.refuse(node, f"GROUP BY the timestamp {resolved}",
                               "group by a time bucket: DATE_TRUNC('day' | 'week' | 'month', "
                               f"{target.sql()}) AS name in SELECT, and GROUP BY name")
        if resolved.kind != "dimension":
            self.source.refuse(node, f"GROUP BY {resolved}",
                               "GROUP BY takes dimension columns and time buckets")
        return _ref(resolved), None, resolved.column

    def group_by(self) -> list[Key]:
        """The group keys in GROUP BY order: (dataset.column, trunc or None, output name)."""
        clause = self.select.args.get("group")
        if clause is None:
            return []
        for key in ("all", "rollup", "cube", "grouping_sets", "totals"):
            if clause.args.get(key):
                self.source.refuse(clause, f"GROUP BY {key.upper().replace('_', ' ')}", _GROUP_BY)
        items = self._select_items()
        aliases = {identifier(i.args.get("alias")): i for i in items if isinstance(i, exp.Alias)}
        out: list[Key] = []
        for node in clause.expressions:
            entry = self._key(node, items, aliases)
            if any(k[:2] == entry[:2] for k in out):
                what = entry[0] if entry[1] in (None, PARAMETER) else f"DATE_TRUNC('{entry[1]}', {entry[0]})"
                raise InvalidInput(f"GROUP BY names {what} twice{self.source.where(node)}")
            out.append(entry)
        return out

    def _is_column_name(self, node: exp.Column) -> bool:
        name = identifier(node.this)
        return any(name in self.scope.columns_of(d) for d in self.scope.datasets)

    # --- SELECT -------------------------------------------------------------------------------

    def _count_target(self, node: exp.Count, group_by: list[Key]) -> tuple[str, str]:
        arg = node.this
        if isinstance(arg, exp.Distinct):
            inner = arg.expressions
            person = self.scope.column(inner[0]) if len(inner) == 1 and isinstance(
                inner[0], exp.Column) else None
            if person is None or person.kind != "person":
                self.source.refuse(node, f"COUNT(DISTINCT {', '.join(i.sql() for i in inner)})",
                                   "COUNT(DISTINCT ...) counts persons only: COUNT(DISTINCT person) "
                                   "(matched persons) or COUNT(DISTINCT a.person) (a's persons)")
            # a.person: every person of dataset a in the cohort, matched or not (a lift's exposed)
            return "count_distinct", f"{person.dataset}.{PERSON}" if person.qualified else PERSON
        if isinstance(arg, exp.Star):
            if self.window is not None:  # an attributed query counts its conversion side's rows
                return "count", str(self.window["to"]).split(".")[0]
            if not group_by:
                raise InvalidInput(f"COUNT(*){self.source.where(node)} counts the rows of the GROUP BY "
                                   "dataset, and this query has no GROUP BY: write COUNT(a.*) for the "
                                   "rows of dataset a")
            named = [ref for ref, trunc, _ in group_by if trunc != PARAMETER]
            if not named:  # which dataset the request's columns come from is not in the SQL
                raise InvalidInput(f"COUNT(*){self.source.where(node)} counts the rows of the GROUP BY "
                                   f"dataset, which GROUP BY {group_by[0][0]} leaves to the request: "
                                   "write COUNT(a.*) for the rows of dataset a")
            return "count", named[0].split(".")[0]
        if isinstance(arg, exp.Column) and isinstance(arg.this, exp.Star):
            return "count", self.scope.dataset_of(arg.args.get("table"), arg)
        if isinstance(arg, exp.Column):
            resolved = self.scope.column(arg)
            if resolved.kind == "person":
                self.source.refuse(node, "COUNT(person)", "persons are counted by COUNT(DISTINCT person)")
            return "count", str(resolved.dataset)
        self.source.refuse(node, f"COUNT({arg.sql() if arg is not None else ''})", _AGGREGATES)

    def _histogram(self, node: exp.Anonymous) -> tuple[str, str, int]:
        """``HISTOGRAM(a.*, F)``: persons by their number of a's rows, buckets 1 .. "F or more"."""
        args = node.expressions
        usage = "HISTOGRAM(a.*, F): persons by their number of rows of dataset a, F from 2 to 32"
        if (len(args) != 2 or not isinstance(args[0], exp.Column) or not isinstance(args[0].this, exp.Star)
                or not isinstance(args[1], exp.Literal) or args[1].is_string
                or not str(args[1].this).isdigit() or not 2 <= int(args[1].this) <= 32):
            self.source.refuse(node, self.source.name(node), usage)
        return "histogram", self.scope.dataset_of(args[0].args.get("table"), args[0]), int(args[1].this)

    def _aggregate(self, node: exp.Expression, group_by: list[Key]) -> tuple[str, str]:
        if isinstance(node, exp.Count):
            return self._count_target(node, group_by)
        if type(node) in (exp.Sum, exp.Avg):
            fn = "sum" if isinstance(node, exp.Sum) else "avg"
            arg = node.this
            if isinstance(arg, exp.Distinct):
                self.source.refuse(node, f"{fn.upper()}(DISTINCT ...)", _AGGREGATES)
            if not isinstance(arg, exp.Column) or isinstance(arg.this, exp.Star):
                what = self.source.name(arg) if arg is not None else "nothing"
                self.source.refuse(arg if arg is not None else node, f"{fn.upper()} of {what}",
                                   f"{fn.upper()} takes one metric column: {fn.upper()}(a.metric)")
            resolved = self.scope.column(arg)
            if resolved.kind != "metric":
                self.source.refuse(arg, f"{fn.upper()}({resolved})",
                                   f"{resolved} is not a metric; {fn.upper()} takes a metric column")
            return fn, _ref(resolved)
        self.source.refuse(node, self.source.name(node), _AGGREGATES)

    def _selected_bucket(self, item: exp.Expression, inner: exp.DateTrunc | exp.DateDiff,
                         group_by: list[Key]) -> None:
        """A DATE_TRUNC (or lag) in SELECT must be a group key, under the name GROUP BY gave it."""
        ref, trunc = time_key(self.scope, inner)
        name = self._bucket_name(item, item)
        if (ref, trunc, name) not in group_by:
            self.source.refuse(item, f"DATE_TRUNC('{trunc}', {ref}) AS {name} outside GROUP BY",
                               "a time bucket in SELECT must be a GROUP BY key: GROUP BY its name or "
                               "position")

    def select_list(self, group_by: list[Key]) -> list[dict[str, Any]]:
        aggregates: list[dict[str, Any]] = []
        names = [name for _, trunc, name in group_by if trunc != PARAMETER]  # a parameter names none yet
        if "persons" in names:
            raise InvalidInput("a group key may not be called persons: the name is reserved for "
                               "COUNT(DISTINCT person), which every result carries")
        dimensions = [ref for ref, trunc, _ in group_by if trunc is None]
        for item in self._select_items():
            inner = item.this if isinstance(item, exp.Alias) else item
            if isinstance(inner, exp.Star):
                self.source.refuse(item, "SELECT *", _AGGREGATES)
            if isinstance(inner, exp.Placeholder):
                selected_parameter(self.source, item, inner, self.parameters, group_by)
                continue
            if isinstance(inner, exp.DateTrunc | exp.DateDiff):
                self._selected_bucket(item, inner, group_by)
                continue
            if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
                resolved = self.scope.column(inner)
                if resolved.kind == "timestamp":
                    self.source.refuse(item, f"the timestamp {resolved} in SELECT",
                                       "select a time bucket: DATE_TRUNC('week', ts) AS week, and "
                                       "GROUP BY week")
                if resolved.kind != "dimension" or _ref(resolved) not in dimensions:
                    self.source.refuse(item, f"{resolved} outside an aggregate",
                                       "a plain column in SELECT must be a GROUP BY column")
                if isinstance(item, exp.Alias) and identifier(item.args.get("alias")) != resolved.column:
                    self.source.refuse(item.args.get("alias"), "renaming a group-by column",
                                       f"the result names it {resolved.column}")
                continue
            if not isinstance(item, exp.Alias):
                self.source.refuse(item, f"{item.sql()} without AS",
                                   "every aggregate needs a name: COUNT(DISTINCT person) AS users")
            extra: dict[str, Any] = {}
            if isinstance(inner, exp.Anonymous) and str(inner.this).upper() == "HISTOGRAM":
                fn, arg, extra["max"] = self._histogram(inner)
            else:
                fn, arg = self._aggregate(inner, group_by)
            alias = identifier(item.args.get("alias"))
            if not _ALIAS.match(alias):
                raise InvalidInput(f"AS {alias!r}{self.source.where(item.args.get('alias'))}: a name is "
                                   "lower-case letters, digits and _, starting with a letter or _")
            if alias in names:
                raise InvalidInput(f"AS {alias}{self.source.where(item.args.get('alias'))}: the result "
                                   "already has a column of that name")
            if alias == "persons" and (fn, arg) != ("count_distinct", PERSON):
                raise InvalidInput(f"AS persons{self.source.where(item.args.get('alias'))}: the name is "
                                   "reserved for COUNT(DISTINCT person), which every result carries")
            names.append(alias)
            aggregates.append({"fn": fn, "arg": arg, "as": alias, **extra})
        if not aggregates:
            self.source.refuse(self.select, "a SELECT without aggregates", _AGGREGATES)
        return aggregates


def compile_template(sql: str, policy: Policy) -> tuple[dict[str, Any], dict[str, str]]:
    """A template's SQL as its plan document (``{"param": name}`` in place of ``IN (:name)``
    values and of ``GROUP BY :name``) and its parameters: name -> "dataset.column" for a WHERE
    parameter, name -> ``GROUP_PARAMETER`` ("GROUP BY") for a GROUP BY one. What the policy's
    template must hold."""
    compiler = _Compiler(Source(sql), policy, parameters=True)
    doc = _document(compiler)
    assert compiler.parameters is not None
    groups = {key["param"]: GROUP_PARAMETER for key in doc["group_by"] if isinstance(key, dict)
              and set(key) == {"param"}}
    return doc, {**compiler.parameters, **groups}


def compile_plan(sql: str, policy: Policy) -> Plan:
    """Compile ``sql`` to a plan (not yet checked against the rules: see ``cleanroom.sql``).

    :raise InvalidInput: a syntax error, or a construct the dialect does not have; the message
        names it, says where it is and what is supported.
    :raise PolicyViolation: the FROM clause names a dataset the policy does not have.
    """
    doc = _document(_Compiler(Source(sql), policy))
    try:  # the enclave's own structural check; here only its size limits can still refuse
        return parse_plan(doc)
    except ProtocolError as exc:
        raise InvalidInput(exc.message) from None


def _document(compiler: _Compiler) -> dict[str, Any]:
    where = compiler.where()
    group_by = compiler.group_by()
    select = compiler.select_list(group_by)
    keys: list[Any] = [ref if trunc is None else {"param": name} if trunc == PARAMETER
                       else {"column": ref, "trunc": trunc, "as": name} for ref, trunc, name in group_by]
    doc: dict[str, Any] = {"v": PLAN_VERSION, "datasets": list(compiler.scope.datasets), "where": where,
                           "group_by": keys, "select": select}
    if compiler.scope.join == "left":  # FROM a LEFT JOIN b: every person of a (the plan's datasets[0])
        doc["join"] = "left"
    if compiler.window is not None:
        doc["window"] = compiler.window
    return doc
