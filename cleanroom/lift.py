"""Lift of a test arm over a control arm, with 95% intervals, from a signed plan result.

The query (docs/query-language.md, "Lift") groups by one dimension of the exposure dataset, the
arm, and releases per arm ``COUNT(DISTINCT i.person)`` (the exposed: every person of that
dataset in the arm, matched or not; statistic ``persons:impressions``) and the matched persons
(the converters; statistic ``persons``, which every result carries). Everything here is
post-processing of the signed noisy counts and the signed noise parameters
(``privacy.column_statistics`` says which statistic each column is, ``privacy.noise_scale`` /
``noise_sigma2`` its noise), so it costs no privacy and anyone holding the result can recompute it.

The derivation. For one arm let N be the true exposed, C the true converters, and model
C | N ~ Binomial(N, p): p, the arm's conversion probability, is what the rate estimates, so
the sampling variance counts as well as the noise. The released counts are N^ = N + Z_N and
C^ = C + Z_C with independent noise of mean 0 and variances v_N, v_C:

* discrete Laplace of scale t, P(x) ∝ exp(-|x|/t), q = e^(-1/t): Var = 2q / (1 - q)^2
  (sum 2·Σ_{x≥1} x²·c·q^x with c = (1-q)/(1+q));
* discrete Gaussian of parameter σ²: Var ≤ σ² (equal in the limit); σ² is used, which can only
  widen the interval.

The rate is p^ = C^ / N^. With f(c, n) = c/n, ∂f/∂c = 1/n and ∂f/∂n = -c/n², and since
Var(C^) = N·p·(1-p) + v_C, Var(N^) = v_N and Cov(C^, N^) = 0 (N is fixed, the noises are
independent), the delta method gives

    Var(p^) ≈ (N·p·(1-p) + v_C) / N²  +  p²·v_N / N²,

and, as Var(log p^) ≈ Var(p^) / p²,

    Var(log p^) ≈ (1-p) / (N·p)  +  v_C / (N·p)²  +  v_N / N².

The lift is R - 1 with R = p_T / p_C. The arms are disjoint sets of persons (each person is
assigned one arm) and every cell's noise is an independent draw, so
Var(log R^) = Var(log p^_T) + Var(log p^_C), and the 95% interval of the lift is
exp(log R^ ± 1.96·√Var(log R^)) - 1, which stays above -1 as a lift must. The rate's interval is
p^ ± 1.96·√Var(p^), cut to [0, 1]. N and p are replaced by their estimates N^ and p^ (p^ cut to
[0, 1] in the binomial term). The first-order approximation needs C^ and N^ well above their
noise, which the release gate (min_persons noisy persons per row) goes some way to ensure; an
arm with C^ ≤ 0 or N^ ≤ 0 has no rate, and a lift with it has no interval.
``tests/cleanroom/test_lift.py`` checks the formula and the coverage against a seeded simulation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from protocol.errors import InvalidInput
from protocol.policy import Policy
from protocol.query_plan import Plan

__all__ = ["Z95", "ArmRate", "LiftReport", "check_lift_query", "lift_json", "lift_report",
           "log_rate_variance", "noise_variance", "render_lift"]

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def noise_variance(mechanism: str, parameter: Fraction | str) -> float:
    """The variance of one cell's noise from its signed parameter (see the module docstring)."""
    value = Fraction(str(parameter))
    if value <= 0:
        raise ValueError("a noise parameter must be positive")
    if mechanism == "discrete_laplace":
        q = math.exp(-1 / float(value))
        return 2 * q / (1 - q) ** 2
    if mechanism == "discrete_gaussian":
        return float(value)
    raise ValueError(f"unknown noise mechanism {mechanism!r}")


def rate_variance(exposed: float, converters: float, v_exposed: float, v_converters: float) -> float:
    """Var(p^) to first order, at the estimates (module docstring); needs exposed > 0."""
    p = converters / exposed
    binomial = exposed * min(max(p, 0.0), 1.0) * (1 - min(max(p, 0.0), 1.0))
    return (binomial + v_converters) / exposed**2 + p * p * v_exposed / exposed**2


def log_rate_variance(exposed: float, converters: float, v_exposed: float, v_converters: float) -> float:
    """Var(log p^) to first order, at the estimates; needs exposed > 0 and converters > 0."""
    p = converters / exposed
    return rate_variance(exposed, converters, v_exposed, v_converters) / (p * p)


@dataclass(frozen=True)
class ArmRate:
    arm: str
    exposed: int
    converters: int
    rate: float | None  # converters / exposed; None if either is ≤ 0
    rate_low: float | None
    rate_high: float | None


@dataclass(frozen=True)
class LiftReport:
    arm_column: str
    arms: list[ArmRate]  # every released arm, in the result's order
    test: str
    control: str
    lift: float | None  # p_T / p_C - 1
    lift_low: float | None
    lift_high: float | None


@dataclass(frozen=True)
class _Columns:
    arm: int
    exposed: int
    converters: int
    v_exposed: float
    v_converters: float


def check_lift_query(plan: Plan, policy: Policy, test: str, control: str) -> None:
    """Whether ``plan`` is a lift query whose arm column declares ``test`` and ``control``.

    Checked before anything is sent, so a wrong ``--lift`` costs nothing.

    :raise InvalidInput: not the lift form (docs/query-language.md), or an undeclared arm.
    """
    if len(plan.group_by) != 1 or plan.group_by[0].trunc is not None:
        raise InvalidInput("--lift needs a query grouped by one dimension, the arm (GROUP BY i.arm)")
    arm = plan.group_by[0].column
    exposed = f"{arm.dataset}.person"
    if not any(a.fn == "count_distinct" and a.arg == exposed for a in plan.select):
        raise InvalidInput(f"--lift needs the exposed of each arm: COUNT(DISTINCT {exposed}) AS exposed")
    dataset = policy.dataset(arm.dataset)
    dimension = dataset.dimension(arm.column) if dataset else None
    values = dimension.values if dimension else ()
    for value in (test, control):
        if value not in values:
            raise InvalidInput(f"--lift: {value!r} is not a value of {arm}; its values: {', '.join(values)}")
    if test == control:
        raise InvalidInput("--lift TEST:CONTROL names two different arms")


def _columns(body: dict[str, Any]) -> _Columns:
    params = body.get("params")
    plan = params.get("plan") if isinstance(params, dict) else None
    privacy: dict[str, Any] = body["privacy"] if isinstance(body.get("privacy"), dict) else {}
    keys = plan.get("group_by") if isinstance(plan, dict) else None
    names = [str(c) for c in body.get("columns", [])]
    one_dimension = isinstance(keys, list) and len(keys) == 1 and isinstance(keys[0], str)
    if body.get("kind") != "plan" or not one_dimension:
        raise InvalidInput("the lift is computed from a SQL result grouped by one arm dimension")
    arm_dataset = str(keys[0]).split(".")[0]  # type: ignore[index]  # one_dimension: a list
    stats = privacy.get("column_statistics") or {}
    exposed = [n for n in names if stats.get(n) == [f"persons:{arm_dataset}"]]
    converters = [n for n in names if stats.get(n) == ["persons"]]
    if not exposed or not converters:
        raise InvalidInput(f"the result has no COUNT(DISTINCT {arm_dataset}.person) column (the exposed)")
    mechanism = str(privacy.get("mechanism"))
    parameters = privacy.get("noise_scale" if mechanism == "discrete_laplace" else "noise_sigma2") or {}
    try:
        v_exposed = noise_variance(mechanism, parameters[f"persons:{arm_dataset}"])
        v_converters = noise_variance(mechanism, parameters["persons"])
    except (KeyError, ValueError, ZeroDivisionError, TypeError):
        raise InvalidInput("the result's privacy metadata has no readable noise parameter for the "
                           "exposed and converters") from None
    return _Columns(0, names.index(exposed[0]), names.index(converters[0]), v_exposed, v_converters)


def _arm(label: str, n: int, c: int, cols: _Columns) -> ArmRate:
    if n <= 0 or c <= 0:
        return ArmRate(label, n, c, None, None, None)
    p = c / n
    half = Z95 * math.sqrt(rate_variance(n, c, cols.v_exposed, cols.v_converters))
    return ArmRate(label, n, c, p, max(0.0, p - half), min(1.0, p + half))


def lift_report(body: dict[str, Any], test: str, control: str) -> LiftReport:
    """Per arm the conversion rate, and the lift of ``test`` over ``control``, with 95% intervals.

    :raise InvalidInput: the result is not a lift query's, or an arm was not released.
    """
    cols = _columns(body)
    arms: list[ArmRate] = []
    for row in body.get("rows", []):
        n, c = row[cols.exposed], row[cols.converters]
        if not (isinstance(n, int) and isinstance(c, int)):
            raise InvalidInput("the exposed and converters of a lift are counts")
        arms.append(_arm(str(row[cols.arm]), n, c, cols))
    found = {a.arm: a for a in arms}
    for value in (test, control):
        if value not in found:
            raise InvalidInput(f"arm {value!r} was not released (fewer noisy persons than min_persons), "
                               "so there is no lift to compute")
    t, c = found[test], found[control]
    plan = body["params"]["plan"]
    column = str(plan["group_by"][0]).split(".")[1]
    if t.rate is None or c.rate is None:
        return LiftReport(column, arms, test, control, None, None, None)
    log_ratio = math.log(t.rate / c.rate)
    var = (log_rate_variance(t.exposed, t.converters, cols.v_exposed, cols.v_converters)
           + log_rate_variance(c.exposed, c.converters, cols.v_exposed, cols.v_converters))
    half = Z95 * math.sqrt(var)
    return LiftReport(column, arms, test, control, math.exp(log_ratio) - 1,
                      math.exp(log_ratio - half) - 1, math.exp(log_ratio + half) - 1)


def lift_json(report: LiftReport) -> dict[str, Any]:
    """The report as JSON values (floats); client-derived, next to the signed result."""
    return {**asdict(report), "level": 0.95, "derived": "post-processing of the signed noisy counts"}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def render_lift(report: LiftReport) -> str:
    """The report for people: a line per arm, then the lift."""
    lines = [f"lift of {report.arm_column} = {report.test} over {report.control} "
             "(95% intervals; noise and sampling variance, delta method)"]
    width = max([len(report.arm_column)] + [len(a.arm) for a in report.arms])
    for a in report.arms:
        interval = "" if a.rate is None else f"  [{_pct(a.rate_low)}, {_pct(a.rate_high)}]"
        lines.append(f"  {a.arm:<{width}}  exposed {a.exposed:>10,}  converters {a.converters:>9,}  "
                     f"rate {_pct(a.rate)}{interval}")
    if report.lift is None:
        lines.append("  lift: undefined (an arm has no positive noisy converters or exposed)")
    else:
        lines.append(f"  lift: {_pct(report.lift)}  [{_pct(report.lift_low)}, {_pct(report.lift_high)}]")
    return "\n".join(lines)
