"""``cleanroom policy lint`` for the policy's templates (``[[templates]]``).

A template carries both the SQL people read and the plan the enclave runs. The enclave checks the
plan; nothing inside it can check that the SQL says the same. So the lint compiles each
template's SQL here (``cleanroom.sql.compiler.compile_template``) and says loudly when it does
not give exactly the template's plan and parameters: a reviewer who read the SQL would otherwise
approve one query and sign another.
"""

from __future__ import annotations

from typing import Any

from cleanroom.formatting import fraction_decimal
from protocol.errors import CleanroomError
from protocol.policy import Policy

__all__ = ["render_templates", "template_warnings", "templates_section"]


def _compiled(policy: Policy, template: Any) -> tuple[bool, str]:
    from cleanroom.sql.compiler import compile_template  # sqlglot loads only for templates

    try:
        plan, params = compile_template(template.sql, policy)
    except CleanroomError as exc:
        return False, f"its sql does not compile: {exc.message}"
    if plan != template.plan:
        return False, "its sql compiles to another plan than the one it carries"
    if params != {name: str(ref) for name, ref in template.params.items()}:
        return False, "its sql's parameters are not the ones [templates.params] declares"
    return True, "its sql compiles to exactly its plan"


def templates_section(policy: Policy) -> dict[str, Any]:
    unit = policy.privacy.unit
    out = {}
    for template in policy.templates:
        matches, why = _compiled(policy, template)
        out[template.id] = {
            "description": template.description, "requesters": list(template.requesters),
            "recipients": list(template.recipients), "charge_per_query": {unit: str(template.cost)},
            "params": {name: str(ref) for name, ref in template.params.items()},
            "sql_matches_plan": matches, "check": why, "sql": template.sql,
        }
    return out


def template_warnings(section: dict[str, Any]) -> list[str]:
    return [f"templates.{tid}: MISMATCH: {t['check']}; do not sign this policy until its plan is what "
            "its sql says" for tid, t in section.items() if not t["sql_matches_plan"]]


def render_templates(section: dict[str, Any], unit: str) -> list[str]:
    if not section:
        return []
    lines = ["", "templates (fixed reports every party approves with the policy):"]
    for tid, t in section.items():
        params = ", ".join(f":{n} ({ref})" for n, ref in t["params"].items()) or "none"
        charge = fraction_decimal(t["charge_per_query"][unit], up=True)
        lines += [f"  {tid}: {unit} {charge} per query; asked by "
                  f"{', '.join(t['requesters'])}; results to {', '.join(t['recipients'])}",
                  f"    parameters {params}; {t['check']}"]
    return lines
