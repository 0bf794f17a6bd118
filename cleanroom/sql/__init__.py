"""Analysts' SQL on the party's side: compile to a query plan and check it as the enclave will.

``compile_query(sql, policy, requester)`` parses the dialect of docs/query-language.md with
sqlglot (``compiler.py``), checks the plan with ``protocol.query_plan.check_plan`` (the enclave's
own code, so an out-of-rule query is refused here with the enclave's message, before anything is
sent), and returns what ``Client.query(..., plan=, sql=)`` sends. sqlglot never enters the
enclave: the enclave parses only the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.policy import Policy
from protocol.query_plan import Plan, PlanCheck, check_plan

__all__ = ["CompiledQuery", "compile_query", "output_columns"]


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    plan: Plan
    check: PlanCheck

    @property
    def wire(self) -> dict[str, Any]:
        """The plan as the signed request carries it."""
        return self.plan.to_wire()

    @property
    def columns(self) -> list[str]:
        return output_columns(self.plan)


def output_columns(plan: Plan) -> list[str]:
    """The result's columns: group-by names, the ``as`` names, then ``persons`` if not selected."""
    return plan.output_columns


def compile_query(sql: str, policy: Policy, requester: str) -> CompiledQuery:
    """Compile ``sql`` and check it against every touched dataset's rule for ``requester``.

    :raise InvalidInput: syntax, or a construct outside the dialect (named, with its position).
    :raise PolicyViolation: the rules refuse it; the message is the enclave's (clause: rule).
    """
    from cleanroom.sql.compiler import compile_plan  # sqlglot loads only when SQL is compiled

    plan = compile_plan(sql, policy)
    return CompiledQuery(sql, plan, check_plan(policy, plan, requester))
