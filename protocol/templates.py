"""Named query templates of the policy (``[[templates]]``, docs/query-language.md#templates).

A template is a query plan that every party approved by signing the policy, with parameters in
place of some WHERE values (declared values of one dimension) and of some GROUP BY keys (up to
``max`` of the columns the template lists: the named analyses' choice of cohorts).
``parse_templates`` validates each one when the policy is parsed (so a broken template is a
broken policy), ``instantiate`` fills in a request's parameter values, and
``template_rules`` gives ``check_plan`` the template's own terms in place of the datasets' rules:
its requesters, recipients and charge, the policy's ``min_cohort_size``, and every column the
plan names (the plan was approved as it is; only its parameter values vary, and only within the
declared values of their dimension).
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from protocol.errors import PolicyInvalid, PolicyViolation, ProtocolError
from protocol.policy_model import (
    BUDGET_UNITS,
    COHORT_KEYS,
    ColumnRef,
    Dataset,
    DatasetRules,
    GroupChoice,
    Policy,
    Template,
)
from protocol.policy_reader import TableReader

__all__ = ["instantiate", "parse_templates", "template_rules"]

_MAX_SQL = 16 * 1024


def _param_ref(text: object, where: str, datasets: dict[str, Dataset]) -> ColumnRef:
    if not isinstance(text, str) or text.count(".") != 1:
        raise PolicyInvalid(f"{where}: expected 'dataset.column'")
    name, column = text.split(".")
    dataset = datasets.get(name)
    if dataset is None or dataset.dimension(column) is None:
        raise PolicyInvalid(f"{where}: {text!r} is not a dimension of a dataset")
    return ColumnRef(name, column)


def _group_choice(r: TableReader, datasets: dict[str, Dataset]) -> GroupChoice:
    columns = [_param_ref(text, r.where("group_by"), datasets) for text in r.strings("group_by")]
    if not columns:  # the reader has refused duplicates
        raise PolicyInvalid(f"{r.where('group_by')}: must list the columns to choose from")
    choice = GroupChoice(tuple(columns), r.positive_int("max", default=1, upper=len(columns)))
    r.done()
    return choice


def _template(r: TableReader, party_ids: set[str], datasets: dict[str, Dataset], mode: str,
              per_query_max: Fraction) -> Template:
    unit = BUDGET_UNITS[mode]
    requesters, recipients = r.strings("requesters"), r.strings("recipients")
    for key, ids in (("requesters", requesters), ("recipients", recipients)):
        if not ids or not set(ids) <= party_ids:
            raise PolicyInvalid(f"{r.where(key)}: must name parties of the policy")
    sql = r.get("sql", str)
    if len(sql.encode()) > _MAX_SQL:
        raise PolicyInvalid(f"{r.where('sql')}: longer than {_MAX_SQL} bytes")
    try:
        plan = json.loads(r.get("plan", str))
        if not isinstance(plan, dict):
            raise ValueError
    except ValueError:
        raise PolicyInvalid(f"{r.where('plan')}: not valid JSON (a template's plan is a JSON map: "
                            "docs/query-language.md#the-plan)") from None
    params_reader = TableReader(r.get("params", dict, {}), r.where("params"))
    params, group_params = {}, {}
    for name in sorted(params_reader.table):
        if isinstance(params_reader.table[name], dict):  # name = { group_by = [...], max = 2 }
            group_params[name] = _group_choice(
                TableReader(params_reader.get(name, dict), params_reader.where(name)), datasets)
        else:
            params[name] = _param_ref(params_reader.get(name, str), params_reader.where(name), datasets)
    params_reader.done()
    cohort_keys = r.get("cohort_keys", str, "public")
    if cohort_keys not in COHORT_KEYS:
        raise PolicyInvalid(f"{r.where('cohort_keys')}: must be one of {COHORT_KEYS}")
    cost = r.fraction(unit)
    if cost > per_query_max:
        raise PolicyInvalid(f"{r.where(unit)}: exceeds privacy.{unit}_per_query_max")
    template = Template(r.name("id"), r.get("description", str, ""), requesters, recipients, cost, sql,
                        plan, params, group_params, cohort_keys)
    r.done()
    return template


def parse_templates(r: TableReader, party_ids: set[str], datasets: dict[str, Dataset], mode: str,
                    per_query_max: Fraction) -> tuple[Template, ...]:
    """Every ``[[templates]]`` entry; check each by instantiating it with declared values."""
    templates = tuple(_template(t, party_ids, datasets, mode, per_query_max) for t in r.tables("templates"))
    if len({t.id for t in templates}) != len(templates):
        raise PolicyInvalid("templates: duplicate template id")
    return templates


def check_templates(policy: Policy) -> None:
    """Refuse a policy whose template plan is malformed or names what the policy lacks."""
    from protocol.query_plan import check_plan, parse_plan  # imports protocol.policy

    for template in policy.templates:
        sample = {}
        for name, ref in template.params.items():
            dataset = policy.dataset(ref.dataset)
            assert dataset is not None
            dimension = dataset.dimension(ref.column)
            assert dimension is not None
            sample[name] = [dimension.values[0]]
        try:
            for choice in _group_samples(template):
                plan = parse_plan(instantiate(template, {**sample, **choice}))
                check_plan(policy, plan, template.requesters[0], template=template)
        except (ProtocolError, PolicyViolation) as exc:
            raise PolicyInvalid(f"templates.{template.id}.plan: {exc.message}") from None


def _group_samples(template: Template) -> list[dict[str, list[str]]]:
    """Group-by choices that exercise every listed column, and each parameter at its most
    columns (where a too-wide or mis-sourced choice would show)."""
    samples: list[dict[str, list[str]]] = [{}]
    for name, choice in template.group_params.items():
        picks = [[str(c)] for c in choice.columns] + [[str(c) for c in choice.columns[-choice.max:]]]
        samples = [{**s, name: pick} for s in samples for pick in picks]
    return samples[:64]  # a bound on the policy check's work; one parameter is the usual case


def instantiate(template: Template, values: object) -> dict[str, Any]:
    """The template's plan with each ``{"param": name}`` replaced by the request's values."""
    names = set(template.params) | set(template.group_params)
    if not isinstance(values, dict) or set(values) != names:
        raise ProtocolError(f"template {template.id}: params must be exactly {sorted(names)}")
    plan: dict[str, Any] = json.loads(json.dumps(template.plan))  # a copy no request can reach into
    used = _fill_group_by(template, plan, values)
    for predicate in plan.get("where", []):
        slot = predicate.get("values") if isinstance(predicate, dict) else None
        if isinstance(slot, dict) and set(slot) == {"param"}:
            name = slot["param"]
            if name not in template.params or str(template.params[name]) != predicate.get("column"):
                raise ProtocolError(f"template {template.id}: parameter {name!r} is not of that column")
            given = values[name]
            if not isinstance(given, list) or not all(isinstance(v, str) for v in given):
                raise ProtocolError(f"template {template.id}: {name} takes a list of declared values")
            predicate["values"] = given
            used.add(name)
    if used != names:
        raise ProtocolError(f"template {template.id}: parameters {sorted(names - used)} "
                            "are not used by its plan")
    return plan


def _fill_group_by(template: Template, plan: dict[str, Any], values: dict[str, Any]) -> set[str]:
    """Replace each ``{"param": name}`` of ``group_by`` by the chosen columns (0..max, distinct,
    from the template's list, in the order asked); the names used."""
    keys, used = [], set()
    for key in plan.get("group_by", []) if isinstance(plan.get("group_by"), list) else []:
        if not (isinstance(key, dict) and set(key) == {"param"}):
            keys.append(key)
            continue
        name = key["param"]
        choice = template.group_params.get(name)
        if choice is None or name in used:
            raise ProtocolError(f"template {template.id}: {name!r} is not a GROUP BY parameter")
        given = values[name]
        allowed = {str(c) for c in choice.columns}
        if (not isinstance(given, list) or not all(isinstance(v, str) and v in allowed for v in given)
                or len(set(given)) != len(given) or len(given) > choice.max):
            raise PolicyViolation(f"template {template.id}: {name} takes at most {choice.max} distinct "
                                  f"of {sorted(allowed)}")
        keys.extend(given)
        used.add(name)
    if "group_by" in plan:
        plan["group_by"] = keys
    return used


def template_rules(policy: Policy, template: Template, dataset: Dataset) -> DatasetRules:
    """What the template allows on ``dataset``: everything its plan names, on its own terms."""
    return DatasetRules(
        requesters=template.requesters, recipients=template.recipients,
        group_by=tuple(d.name for d in dataset.dimensions) + tuple(t.name for t in dataset.timestamps),
        filter_by=tuple(d.name for d in dataset.dimensions) + tuple(t.name for t in dataset.timestamps),
        count_rows=True, metrics={m.name: ("sum", "avg") for m in dataset.metrics}, join_with=(),
        max_window_days=366, min_persons=policy.privacy.min_cohort_size, cost=template.cost,
        max_group_by=8, max_aggregates=32, cohort_keys=template.cohort_keys,
    )
