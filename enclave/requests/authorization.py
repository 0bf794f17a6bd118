"""The only code that says yes or no to a query (docs/design.md).

``authorize`` turns a verified, non-replayed ``query_request`` into a ``QueryPlan`` or raises
``PolicyViolation``. It reads the policy and the request, never data, so a refusal cannot
depend on a data value. Everything the budget check needs (the charge, δ, the released shape)
is fixed here, before the ledger is debited.

Query ``params`` (documented in policies/README.md):

* ``group_by``: list of "dataset.column" dimensions the analysis allows (all from one dataset)
* ``metric``:   "dataset.column" metric (aggregate, attribution)
* ``cohort``:   {"dataset.column": "declared value"} (cohort_activation: the cohort to activate)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocol.errors import PolicyViolation, ProtocolError
from protocol.policy import Analysis, ColumnRef, Metric, Policy
from protocol.query_plan import Plan, PlanCheck, check_plan, parse_plan
from protocol.templates import instantiate

__all__ = ["MAX_RELEASED_CELLS", "FreeformQuery", "QueryPlan", "authorize"]

MAX_RELEASED_CELLS = 100_000
_PARAMS = {"group_by", "metric", "cohort"}
_NEEDS_METRIC = ("aggregate", "attribution")
_NEEDS_GROUP_BY = ("aggregate", "attribution")


@dataclass(frozen=True)
class QueryPlan:
    analysis: Analysis
    requested_by: str
    group_by: tuple[ColumnRef, ...]
    metric: ColumnRef | None
    metric_spec: Metric | None
    epsilon: Fraction | None  # pure mode: the ε charged
    charged_datasets: tuple[str, ...]  # every protected dataset the query reads
    mode: str = "pure"
    cost: Fraction = Fraction(0)  # what the ledger debits from each dataset (ε or ρ)
    delta: Fraction = Fraction(0)  # δ debited: private-cohort selection only
    n_cohorts: int = 1  # public shape: cohorts the group_by spans
    cohort: tuple[tuple[ColumnRef, str], ...] = ()  # cohort_activation: (column, declared value)

    @property
    def kind(self) -> str:
        return self.analysis.kind

    @property
    def analysis_id(self) -> str:
        return self.analysis.id

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.analysis.recipients

    @property
    def approval(self) -> str:
        return self.analysis.approval

    def public_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"group_by": [str(ref) for ref in self.group_by]}
        if self.metric is not None:
            params["metric"] = str(self.metric)
        if self.cohort:
            params["cohort"] = {str(ref): value for ref, value in self.cohort}
        return params


def _ref(text: object, field: str) -> ColumnRef:
    if not isinstance(text, str) or text.count(".") != 1:
        raise ProtocolError(f"query params: {field} must be 'dataset.column'")
    dataset, column = text.split(".")
    return ColumnRef(dataset, column)


def _group_by(analysis: Analysis, params: dict[str, Any]) -> tuple[ColumnRef, ...]:
    raw = params.get("group_by", [])
    if not isinstance(raw, list):
        raise ProtocolError("query params: group_by must be a list")
    group_by = tuple(_ref(item, "group_by") for item in raw)
    if len(set(group_by)) != len(group_by):
        raise PolicyViolation("a column appears twice in group_by")
    if not set(group_by) <= set(analysis.group_by):
        raise PolicyViolation("the analysis does not allow grouping by that column")
    if len(group_by) > analysis.max_group_by:
        raise PolicyViolation("too many group_by columns for this analysis")
    if len({ref.dataset for ref in group_by}) > 1:
        raise PolicyViolation("group_by columns must come from one dataset")
    if analysis.kind in _NEEDS_GROUP_BY and not group_by:
        raise PolicyViolation(f"an {analysis.kind} needs at least one group_by column")
    if analysis.kind == "cohort_activation" and group_by:
        raise PolicyViolation("cohort_activation takes a cohort, not group_by")
    return group_by


def _cohort(policy: Policy, analysis: Analysis, params: dict[str, Any]) -> tuple[tuple[ColumnRef, str], ...]:
    raw = params.get("cohort", {})
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ProtocolError("query params: cohort must map 'dataset.column' to a value")
    if raw and analysis.kind != "cohort_activation":
        raise PolicyViolation("only cohort_activation takes a cohort")
    cohort = []
    for text in sorted(raw):
        ref = _ref(text, "cohort")
        if ref not in analysis.group_by:
            raise PolicyViolation("the analysis does not allow a cohort on that column")
        dataset = policy.dataset(ref.dataset)
        dimension = dataset.dimension(ref.column) if dataset else None
        if dimension is None or raw[text] not in dimension.values:
            raise PolicyViolation("the cohort value is not declared in the policy")
        cohort.append((ref, raw[text]))
    if len(cohort) > analysis.max_group_by or len({ref.dataset for ref, _ in cohort}) > 1:
        raise PolicyViolation("the cohort uses too many columns or more than one dataset")
    return tuple(cohort)


def _n_cohorts(policy: Policy, group_by: tuple[ColumnRef, ...]) -> int:
    n = 1
    for ref in group_by:
        dataset = policy.dataset(ref.dataset)
        dimension = dataset.dimension(ref.column) if dataset else None
        if dimension is None:
            raise PolicyViolation("unknown group_by column")
        n *= len(dimension.values)
    return n


@dataclass(frozen=True)
class FreeformQuery:
    """A checked free-form query plan (docs/query-language.md): its charge and recipients."""

    plan: Plan
    check: PlanCheck
    sql: str | None
    requested_by: str
    kind: str = "plan"
    analysis_id: str = ""
    approval: str = "none"
    template_params: dict[str, Any] | None = None  # a template's request: its parameter values

    @property
    def charged_datasets(self) -> tuple[str, ...]:
        return tuple(sorted(self.plan.datasets))

    @property
    def cost(self) -> Fraction:
        return self.check.cost

    @property
    def delta(self) -> Fraction:  # private cohort keys' selection δ (0 for public keys)
        return self.check.delta

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.check.recipients

    def public_params(self) -> dict[str, Any]:
        return {"plan": self.plan.to_wire(), **({"sql": self.sql} if self.sql is not None else {}),
                **({"template_params": self.template_params} if self.template_params is not None else {})}


def authorize(policy: Policy, request: dict[str, Any]) -> QueryPlan | FreeformQuery:
    if request["collaboration_id"] != policy.collaboration_id or request["policy_hash"] != policy.hash:
        raise PolicyViolation("the request was made for another collaboration or policy")
    if "plan" in request:
        if request["analysis"] != "" or request["params"]:
            raise ProtocolError("a query with a plan has analysis \"\" and no params")
        plan = parse_plan(request["plan"])
        return FreeformQuery(plan, check_plan(policy, plan, request["party"]), request.get("sql"),
                             request["party"])
    if "sql" in request:
        raise ProtocolError("sql is carried only with its plan")
    template = policy.template(request["analysis"])
    if template is not None:  # a fixed report every party approved: its plan, these values
        plan = parse_plan(instantiate(template, request["params"]))
        return FreeformQuery(plan, check_plan(policy, plan, request["party"], template=template),
                             template.sql, request["party"], analysis_id=template.id,
                             template_params=dict(request["params"]))
    analysis = policy.analysis(request["analysis"])
    if analysis is None:
        raise PolicyViolation("the policy has no such analysis")
    if request["party"] not in analysis.requesters:
        raise PolicyViolation(f"party {request['party']!r} may not run analysis {analysis.id!r}")
    params = request["params"]
    if set(params) - _PARAMS:
        raise ProtocolError("query params: unknown parameter")
    group_by = _group_by(analysis, params)
    cohort = _cohort(policy, analysis, params)

    metric = metric_spec = None
    if analysis.kind in _NEEDS_METRIC:
        metric = _ref(params.get("metric"), "metric")
        if metric not in analysis.metrics:
            raise PolicyViolation("the analysis does not allow that metric")
        dataset = policy.dataset(metric.dataset)
        metric_spec = dataset.metric(metric.column) if dataset else None
    elif "metric" in params:
        raise PolicyViolation("this analysis takes no metric")

    n_cohorts = _n_cohorts(policy, group_by)
    if n_cohorts * (analysis.max_frequency or 1) > MAX_RELEASED_CELLS:
        raise PolicyViolation("the query would release too many cells")
    private = analysis.cohort_keys == "private" and bool(group_by)
    return QueryPlan(
        analysis=analysis,
        requested_by=request["party"],
        group_by=group_by,
        metric=metric,
        metric_spec=metric_spec,
        epsilon=analysis.epsilon,
        charged_datasets=policy.join,
        mode=policy.privacy.mode,
        cost=analysis.cost,
        delta=policy.privacy.delta if private else Fraction(0),
        n_cohorts=n_cohorts,
        cohort=cohort,
    )
