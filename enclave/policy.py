"""The only code that says yes or no to a query (DESIGN.md §5).

``authorize`` turns a verified, non-replayed ``query_request`` into a ``QueryPlan`` or raises
``PolicyViolation``. It reads the policy and the request, never data, so a refusal cannot
depend on a data value.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocol.errors import PolicyViolation, ProtocolError
from protocol.policy import Analysis, ColumnRef, Metric, Policy

__all__ = ["QueryPlan", "authorize"]

_PARAMS = {"group_by", "metric"}


@dataclass(frozen=True)
class QueryPlan:
    analysis: Analysis
    requested_by: str
    group_by: tuple[ColumnRef, ...]
    metric: ColumnRef | None
    metric_spec: Metric | None
    epsilon: Fraction
    charged_datasets: tuple[str, ...]  # every protected dataset the query reads

    def public_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"group_by": [str(ref) for ref in self.group_by]}
        if self.metric is not None:
            params["metric"] = str(self.metric)
        return params


def _ref(text: object, field: str) -> ColumnRef:
    if not isinstance(text, str) or text.count(".") != 1:
        raise ProtocolError(f"query params: {field} must be 'dataset.column'")
    dataset, column = text.split(".")
    return ColumnRef(dataset, column)


def authorize(policy: Policy, request: dict[str, Any]) -> QueryPlan:
    if request["collaboration_id"] != policy.collaboration_id or request["policy_hash"] != policy.hash:
        raise PolicyViolation("the request was made for another collaboration or policy")
    analysis = policy.analysis(request["analysis"])
    if analysis is None:
        raise PolicyViolation("the policy has no such analysis")
    if request["party"] not in analysis.requesters:
        raise PolicyViolation(f"party {request['party']!r} may not run analysis {analysis.id!r}")
    params = request["params"]
    if set(params) - _PARAMS:
        raise ProtocolError("query params: unknown parameter")
    group_by_raw = params.get("group_by", [])
    if not isinstance(group_by_raw, list):
        raise ProtocolError("query params: group_by must be a list")
    group_by = tuple(_ref(item, "group_by") for item in group_by_raw)
    if len(set(group_by)) != len(group_by):
        raise PolicyViolation("a column appears twice in group_by")
    if not set(group_by) <= set(analysis.group_by):
        raise PolicyViolation("the analysis does not allow grouping by that column")
    if len(group_by) > analysis.max_group_by:
        raise PolicyViolation("too many group_by columns for this analysis")
    if len({ref.dataset for ref in group_by}) > 1:
        raise PolicyViolation("group_by columns must come from one dataset")

    metric = metric_spec = None
    if analysis.kind == "aggregate":
        if not group_by:
            raise PolicyViolation("an aggregate needs at least one group_by column")
        metric = _ref(params.get("metric"), "metric")
        if metric not in analysis.metrics:
            raise PolicyViolation("the analysis does not allow that metric")
        dataset = policy.dataset(metric.dataset)
        metric_spec = dataset.metric(metric.column) if dataset else None
    elif "metric" in params:
        raise PolicyViolation("this analysis takes no metric")

    return QueryPlan(
        analysis=analysis,
        requested_by=request["party"],
        group_by=group_by,
        metric=metric,
        metric_spec=metric_spec,
        epsilon=analysis.epsilon,
        charged_datasets=policy.join,
    )
