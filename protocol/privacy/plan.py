"""A query shape's whole privacy plan (statistics, exact noise parameters, τ), without data.

The enclave fixes this before it reads a row; ``cleanroom policy lint`` prints the same plan, so
what a party reviews is what the enclave will charge and add.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from protocol.policy import Analysis, Metric, Privacy
from protocol.privacy.accounting import MECHANISMS, Calibrated, calibrate
from protocol.privacy.statistics import keys_per_unit, statistics
from protocol.privacy.threshold import release_threshold

__all__ = ["PrivacyPlan", "privacy_plan"]


@dataclass(frozen=True)
class PrivacyPlan:
    """Everything about a query's privacy, derived from the policy without data."""

    mode: str
    mechanism: str
    charge: Fraction  # ε (pure) or ρ (zcdp), debited from every protected dataset
    calibrated: list[Calibrated]
    keys_per_unit: int
    tau: int | None  # private cohort keys only
    delta: Fraction  # δ of the selection (0 for public keys)

    @property
    def cells(self) -> int:
        return sum(c.statistic.length for c in self.calibrated)


def privacy_plan(analysis: Analysis, privacy: Privacy, metric: Metric | None, n_cohorts: int,
                 *, private: bool) -> PrivacyPlan:
    """Statistics, exact noise parameters and τ of one query shape.

    With private cohort keys, τ is computed from the first statistic (the distinct-unit count
    every analysis releases first), the one the release rule thresholds.
    """
    calibrated = calibrate(statistics(analysis, privacy, metric, n_cohorts), privacy.mode, analysis.cost)
    keys = keys_per_unit(analysis.kind, privacy, n_cohorts)
    tau = None
    if private:
        selected = calibrated[0]
        tau = release_threshold(selected.mechanism, selected.scale, keys, privacy.delta)
    return PrivacyPlan(privacy.mode, MECHANISMS[privacy.mode], analysis.cost, calibrated, keys, tau,
                       privacy.delta if private else Fraction(0))
