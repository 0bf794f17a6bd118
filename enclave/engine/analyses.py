"""Run an authorized query over the joined datasets and produce released (noised) rows.

Order matters for privacy, and this module owns it:

1. everything about privacy is fixed from the policy and the query alone
   (``protocol/privacy/plan.py``):
   the statistics, their sensitivities, the exact noise parameters and τ;
2. the overflow bound is proven before any data is read (``aggregation.check_no_overflow``);
3. the noise for every cell is drawn before any data is read: how much is drawn depends only
   on the public shape, never on which cohorts the data holds;
4. the analysis module reads the data, bounds contributions per unit after the join, adds the
   noise and applies the release rule (``enclave/engine/cohorts.py``);
5. the result, or an error, leaves only at a deadline that depends on the public shape alone
   (cells and the policy's ``max_rows``: ``enclave/engine/release_timing.py``), measured on
   the session's clock and slept with its ``sleep``: the engine reads no clock of its own.

The ledger has already been debited by the session (check and debit in one step) before this
runs. Each analysis module's first statistic is its distinct-unit count: the one τ applies to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from enclave.engine import analysis_activation, analysis_attribution, analysis_counts, analysis_reach
from enclave.engine.aggregation import check_no_overflow
from enclave.engine.analysis_base import Job, Output
from enclave.engine.bounding import RandomBytes
from enclave.engine.cohorts import Selection
from enclave.engine.columns import ColumnarTable
from enclave.engine.release_timing import release_deadline, wait_for_release
from enclave.requests.authorization import QueryPlan
from protocol.policy import Policy
from protocol.privacy.accounting import Calibrated, bun_steinke_epsilon, decimal_text
from protocol.privacy.plan import PrivacyPlan, privacy_plan

__all__ = ["NoiseSource", "Release", "draw", "run_query"]

# Each kind's ``run(job, noisy, selection)`` (the contract: ``enclave/engine/analysis_base.py``).
ANALYSES: dict[str, Callable[[Job, dict[str, list[int]], Selection], Output]] = {
    "overlap": analysis_counts.run,
    "aggregate": analysis_counts.run,
    "reach_frequency": analysis_reach.run,
    "attribution": analysis_attribution.run,
    "cohort_activation": analysis_activation.run,
}


class NoiseSource(Protocol):
    mechanism: str

    def laplace(self, scale: Fraction, count: int) -> list[int]: ...

    def gaussian(self, sigma2: Fraction, count: int) -> list[int]: ...


@dataclass(frozen=True)
class Release:
    columns: list[str]
    rows: list[list[Any]]
    privacy: dict[str, Any]


def draw(noise: NoiseSource, c: Calibrated) -> list[int]:
    """One statistic's noise vector, from its calibrated mechanism and scale."""
    if c.mechanism == "discrete_laplace":
        return noise.laplace(c.scale, c.statistic.length)
    return noise.gaussian(c.scale, c.statistic.length)


def _metadata(plan: QueryPlan, policy: Policy, pp: PrivacyPlan, noise: NoiseSource,
              out: Output) -> dict[str, Any]:
    privacy = policy.privacy
    unit = privacy.unit
    meta: dict[str, Any] = {"mechanism": pp.mechanism, "noise_source": noise.mechanism,
                            "accounting": pp.mode, "delta_charged": str(pp.delta),
                            # the query's whole (ε, δ): conversion δ (zCDP) + selection δ
                            "delta_total": str(privacy.conversion_delta + pp.delta)}
    if pp.mode == "pure":
        meta["epsilon_charged"] = str(pp.charge)
        meta["sensitivity"] = {c.statistic.name: c.statistic.l1 for c in pp.calibrated}
        meta["noise_scale"] = {c.statistic.name: str(c.scale) for c in pp.calibrated}
    else:
        meta["rho_charged"] = str(pp.charge)
        # The (ε, δ) this query alone amounts to, as an upper bound (Bun–Steinke).
        meta["epsilon_charged"] = decimal_text(bun_steinke_epsilon(pp.charge, privacy.delta))
        meta["epsilon_at_delta"] = str(privacy.delta)
        meta["sensitivity_l2_squared"] = {c.statistic.name: c.statistic.l2_sq for c in pp.calibrated}
        meta["noise_sigma2"] = {c.statistic.name: str(c.scale) for c in pp.calibrated}
    meta[f"{unit}_per_statistic"] = {c.statistic.name: str(c.share) for c in pp.calibrated}
    meta.update({
        "cohort_keys": plan.analysis.cohort_keys,
        "threshold": pp.tau,
        "min_cohort_size": privacy.min_cohort_size,
        "cohorts_total": out.cohorts_total,
        "suppressed_cohorts": out.suppressed,
        "contribution_bounds": {"max_cohorts_per_user": privacy.max_cohorts_per_user,
                                "max_rows_per_user": privacy.max_rows_per_user},
        "clamps": {},
    })
    spec = plan.metric_spec
    if plan.metric is not None and spec is not None:
        meta["clamps"] = {str(plan.metric): [str(Fraction(spec.min, 10**spec.scale)),
                                             str(Fraction(spec.max, 10**spec.scale))]}
        meta["fixed_point_scale"] = {str(plan.metric): spec.scale}
    meta.update(out.metadata)
    return meta


def run_query(
    plan: QueryPlan,
    policy: Policy,
    tables: dict[str, ColumnarTable],
    noise: NoiseSource,
    random_bytes: RandomBytes,
    *,
    join_key: bytes,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Release:
    """Run ``plan``; the ledger must already have been charged. See the module docstring."""
    started = clock()
    pp = privacy_plan(plan.analysis, policy.privacy, plan.metric_spec, plan.n_cohorts,
                      private=plan.delta > 0)
    # Public shape: the released cells and the policy's row limits of the joined datasets (the
    # worst case for the work; the rows actually uploaded never enter the deadline).
    max_rows = sum(d.max_rows for d in policy.datasets if d.name in policy.join)
    try:
        if plan.metric is not None and plan.metric_spec is not None:
            metric_dataset = policy.dataset(plan.metric.dataset)
            assert metric_dataset is not None
            check_no_overflow(metric_dataset.max_rows, plan.metric_spec.min, plan.metric_spec.max)
        noisy = {c.statistic.name: draw(noise, c) for c in pp.calibrated}  # before any data
        job = Job(plan, policy, tables, random_bytes, join_key)
        out = ANALYSES[plan.analysis.kind](job, noisy, Selection(policy.privacy.min_cohort_size, pp.tau))
    finally:
        deadline = release_deadline(pp.cells, max_rows, plan.analysis.kind)
        wait_for_release(started, deadline, clock=clock, sleep=sleep)
    return Release(out.columns, out.rows, _metadata(plan, policy, pp, noise, out))
