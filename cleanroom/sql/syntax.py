"""Parsing analysts' SQL with sqlglot, and refusals that point at the construct.

sqlglot parses far more than the dialect of docs/query-language.md accepts; the compiler walks
its tree and accepts only the listed shapes. Every refusal is an ``InvalidInput`` that names the
construct, where it is (line and column, 1-based, from sqlglot's token offsets) and what is
supported instead, so an analyst can fix the query without reading the spec.
"""

from __future__ import annotations

import re
from typing import NoReturn

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from protocol.errors import InvalidInput

__all__ = ["MAX_SQL_CHARS", "Source", "identifier"]

MAX_SQL_CHARS = 16 * 1024  # bytes of SQL a query_request may carry (protocol/wire.py)

# Names for the constructs an analyst is most likely to try; anything else is named by its SQL.
_NAMES: dict[type[exp.Expression], str] = {
    exp.Or: "OR", exp.Not: "NOT", exp.Like: "LIKE", exp.ILike: "ILIKE", exp.Between: "BETWEEN",
    exp.Is: "IS", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.Case: "CASE",
    exp.Cast: "CAST", exp.Window: "a window function (OVER)", exp.Filter: "FILTER",
    exp.Subquery: "a subquery", exp.Select: "a subquery", exp.Star: "*", exp.Null: "NULL",
    exp.Boolean: "a boolean literal", exp.Add: "arithmetic (+)", exp.Sub: "arithmetic (-)",
    exp.Mul: "arithmetic (*)", exp.Div: "arithmetic (/)", exp.Neg: "a negative number",
    exp.Rollup: "ROLLUP", exp.Cube: "CUBE", exp.GroupingSets: "GROUPING SETS",
    exp.Union: "UNION", exp.Intersect: "INTERSECT", exp.Except: "EXCEPT",
}


def identifier(node: exp.Expression | None) -> str:
    """An identifier's name: unquoted names fold to lower case (as DuckDB and PostgreSQL do)."""
    if isinstance(node, exp.Identifier):
        return node.name if node.quoted else node.name.lower()
    return node.name if node is not None else ""


class Source:
    """One SQL text and its parsed statement; turns tree nodes into 'line L, column C'."""

    def __init__(self, sql: str) -> None:
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidInput("the query is empty")
        if len(sql.encode("utf-8", "surrogatepass")) > MAX_SQL_CHARS:
            raise InvalidInput(f"the query is longer than {MAX_SQL_CHARS:,} bytes, what a request carries")
        self.sql = sql
        try:
            statements = [s for s in sqlglot.parse(sql) if s is not None]
            self.tokens = sqlglot.tokenize(sql)
        except ParseError as exc:
            first = exc.errors[0] if exc.errors else {}
            where = self._at_line_col(first.get("line"), first.get("col"))
            # sqlglot's description embeds a token's repr; its text is what the analyst wrote.
            text = re.sub(r"<Token token_type: [^>]*?text: (.*?), line: .*?>", r"'\1'",
                          str(first.get("description", exc)))
            raise InvalidInput(f"SQL syntax error{where}: {text}") from None
        except TokenError as exc:
            raise InvalidInput(f"SQL syntax error: {exc}") from None
        if len(statements) != 1:
            raise InvalidInput(f"expected one SELECT statement, found {len(statements)}")
        self.statement = statements[0]

    @staticmethod
    def _at_line_col(line: object, col: object) -> str:
        return f" at line {line}, column {col}" if isinstance(line, int) and isinstance(col, int) else ""

    def offset(self, node: exp.Expression) -> int | None:
        """The character offset of the node's first token, if sqlglot recorded one."""
        starts = [n.meta["start"] for n in node.walk() if isinstance(n.meta.get("start"), int)]
        return min(starts) if starts else None

    def where(self, node: exp.Expression | None) -> str:
        """`` at line L, column C`` of the node's first token ('' if sqlglot kept no position)."""
        start = self.offset(node) if node is not None else None
        if start is None:
            return ""
        before = self.sql[:start]
        line = before.count("\n") + 1
        return f" at line {line}, column {start - (before.rfind(chr(10)) + 1) + 1}"

    def name(self, node: exp.Expression) -> str:
        """What to call ``node`` in a message: its keyword, or its SQL text."""
        for kind, label in _NAMES.items():
            if type(node) is kind:
                return label
        if isinstance(node, exp.Anonymous):
            return f"function {node.name.upper()}"
        if isinstance(node, exp.Func):
            return f"function {node.sql_name()}"
        text = node.sql()
        text = text if len(text) <= 40 else text[:37] + "..."
        return f"the literal {text}" if isinstance(node, exp.Literal) else text

    def refuse(self, node: exp.Expression | None, construct: str, supported: str) -> NoReturn:
        """Raise the dialect's refusal: what, where, and what is supported instead."""
        raise InvalidInput(f"{construct}{self.where(node)} is not supported: {supported}")

    def has_token_between(self, kind: sqlglot.TokenType, start: int, end: int) -> bool:
        """Whether a token of ``kind`` lies in the character range [start, end)."""
        return any(t.token_type == kind and start <= t.start < end for t in self.tokens)
