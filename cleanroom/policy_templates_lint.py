"""``cleanroom policy lint`` for the policy's templates (``[[templates]]``).

A template carries both the SQL people read and the plan the enclave runs. The enclave checks the
plan; nothing inside it can check that the SQL says the same. So the lint compiles each
template's SQL here (``cleanroom.sql.compiler.compile_template``) and says loudly when it does
not give exactly the template's plan and parameters: a reviewer who read the SQL would otherwise
approve one query and sign another. A GROUP BY parameter compiles to ``"GROUP BY"`` (the columns
to choose from are the policy's, which no SQL text states), so it matches a declared
``name = { group_by = [...], max = n }``.

With private cohort keys the lint also gives τ, the noisy persons a row needs, from
``check_plan`` on the template's plan with sample parameter values: τ grows with the cohorts a
choice of GROUP BY columns makes, so the range over the choices is shown.
"""

from __future__ import annotations

from itertools import combinations, product
from typing import Any

from cleanroom.formatting import fraction_decimal
from protocol.errors import CleanroomError
from protocol.policy import Policy
from protocol.policy_model import Template

__all__ = ["render_templates", "template_warnings", "templates_section"]

_MAX_SAMPLES = 64  # choices whose τ is computed, per template (one check_plan each)


def _declared(template: Template) -> dict[str, str]:
    """What ``compile_template`` must report for the template's declared parameters."""
    from cleanroom.sql.template_params import GROUP_PARAMETER

    return {**{name: str(ref) for name, ref in template.params.items()},
            **dict.fromkeys(template.group_params, GROUP_PARAMETER)}


def _compiled(policy: Policy, template: Template) -> tuple[bool, str]:
    from cleanroom.sql.compiler import compile_template  # sqlglot loads only for templates

    try:
        plan, params = compile_template(template.sql, policy)
    except CleanroomError as exc:
        return False, f"its sql does not compile: {exc.message}"
    if plan != template.plan:
        return False, "its sql compiles to another plan than the one it carries"
    if params != _declared(template):
        return False, "its sql's parameters are not the ones [templates.params] declares"
    return True, "its sql compiles to exactly its plan"


def _samples(policy: Policy, template: Template) -> list[dict[str, list[str]]]:
    """Parameter values covering every choice of GROUP BY columns (as sets: their order does not
    change τ), each WHERE parameter at one declared value; at most ``_MAX_SAMPLES``."""
    fixed: dict[str, list[str]] = {}
    for name, ref in template.params.items():
        dataset = policy.dataset(ref.dataset)
        dimension = dataset.dimension(ref.column) if dataset is not None else None
        fixed[name] = [dimension.values[0]] if dimension is not None and dimension.values else []
    choices = [[(name, [str(c) for c in pick]) for size in range(1, choice.max + 1)
                for pick in combinations(choice.columns, size)]
               for name, choice in template.group_params.items()]
    out = []
    for combo in product(*choices):
        out.append({**fixed, **dict(combo)})
        if len(out) == _MAX_SAMPLES:
            break
    return out


def _thresholds(policy: Policy, template: Template) -> list[int]:
    """τ of each sample choice (empty for public keys, or where the plan has no GROUP BY)."""
    from protocol.query_plan import check_plan, parse_plan
    from protocol.templates import instantiate

    if template.cohort_keys != "private":
        return []
    taus = []
    for values in _samples(policy, template):
        try:
            check = check_plan(policy, parse_plan(instantiate(template, values)), template.requesters[0],
                               template=template)
        except CleanroomError:
            continue  # the policy's own check refuses a broken template; nothing to show here
        if check.tau is not None:
            taus.append(check.tau)
    return taus


def templates_section(policy: Policy) -> dict[str, Any]:
    unit = policy.privacy.unit
    out = {}
    for template in policy.templates:
        matches, why = _compiled(policy, template)
        taus = _thresholds(policy, template)
        datasets = template.plan.get("datasets")
        out[template.id] = {
            "description": template.description, "requesters": list(template.requesters),
            "recipients": list(template.recipients), "charge_per_query": {unit: str(template.cost)},
            "params": {name: str(ref) for name, ref in template.params.items()},
            "group_params": {name: {"group_by": [str(c) for c in choice.columns], "max": choice.max}
                             for name, choice in template.group_params.items()},
            "cohort_keys": template.cohort_keys,
            "threshold": {"min": min(taus), "max": max(taus)} if taus else None,
            "left_join": list(datasets) if template.plan.get("join") == "left" and isinstance(
                datasets, list) else None,
            "sql_matches_plan": matches, "check": why, "sql": template.sql,
        }
    return out


def template_warnings(section: dict[str, Any]) -> list[str]:
    return [f"templates.{tid}: MISMATCH: {t['check']}; do not sign this policy until its plan is what "
            "its sql says" for tid, t in section.items() if not t["sql_matches_plan"]]


def _parameters(t: dict[str, Any]) -> str:
    where = [f":{n} ({ref})" for n, ref in t["params"].items()]
    groups = [f":{n} (GROUP BY up to {g['max']} of {', '.join(g['group_by'])})"
              for n, g in t.get("group_params", {}).items()]
    return ", ".join(where + groups) or "none"


def _keys(t: dict[str, Any]) -> list[str]:
    lines = []
    left = t.get("left_join")
    if left:
        kept, other = left
        lines.append(f"    FROM {kept} LEFT JOIN {other}: every person of {kept} counts; the last row, "
                     f"with every group key nil, is those with no {other} row")
    if t.get("cohort_keys") == "private":
        tau = t.get("threshold")
        shown = ("" if tau is None else f" {tau['min']}" if tau["min"] == tau["max"]
                 else f" {tau['min']} to {tau['max']} (by the columns chosen)")
        lines.append(f"    cohort_keys = private: a row also needs its noisy persons to reach tau{shown}")
    return lines


def render_templates(section: dict[str, Any], unit: str) -> list[str]:
    if not section:
        return []
    lines = ["", "templates (fixed reports every party approves with the policy):"]
    for tid, t in section.items():
        charge = fraction_decimal(t["charge_per_query"][unit], up=True)
        lines += [f"  {tid}: {unit} {charge} per query; asked by "
                  f"{', '.join(t['requesters'])}; results to {', '.join(t['recipients'])}",
                  f"    parameters {_parameters(t)}; {t['check']}", *_keys(t)]
    return lines
