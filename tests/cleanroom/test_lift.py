"""``cleanroom.lift``: the delta-method intervals against a seeded brute-force simulation.

Each simulated world draws the converters of both arms (binomial) and adds discrete Laplace
noise of the signed scale to every released count, as the enclave does; the lift report of each
world's result must then cover the true rates and the true lift about 95% of the time, and the
variance of log R^ across worlds must match the formula. Two regimes: sampling-dominated (small
noise) and noise-dominated (large noise). Dropping either term of the variance fails one of them,
which the test also shows, so it can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cleanroom.lift import lift_json, lift_report, log_rate_variance, noise_variance, render_lift
from protocol.errors import InvalidInput

SIMULATIONS = 4000
ARMS = {"test": (20_000, 0.06), "control": (20_000, 0.045)}  # exposed, true conversion probability


def _body(rows: list[list], t_exposed: str, t_converters: str) -> dict:
    return {"kind": "plan", "analysis": "", "columns": ["arm", "exposed", "converters"], "rows": rows,
            "params": {"plan": {"v": 1, "datasets": ["impressions", "conversions"], "where": [],
                                "group_by": ["impressions.arm"],
                                "select": [
                                    {"fn": "count_distinct", "arg": "impressions.person", "as": "exposed"},
                                    {"fn": "count_distinct", "arg": "person", "as": "converters"}]}},
            "privacy": {"mechanism": "discrete_laplace",
                        "noise_scale": {"persons": t_converters, "persons:impressions": t_exposed},
                        "column_statistics": {"exposed": ["persons:impressions"], "converters": ["persons"]}}}


def _laplace(rng: np.random.Generator, t: float, size: int) -> np.ndarray:
    """Discrete Laplace P(x) ∝ exp(-|x|/t): the difference of two geometric draws."""
    q = math.exp(-1 / t)
    return rng.geometric(1 - q, size) - rng.geometric(1 - q, size)


def _simulate(t: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    noisy = {}
    for arm, (n, p) in ARMS.items():
        converters = rng.binomial(n, p, SIMULATIONS)
        noisy[arm] = (n + _laplace(rng, t, SIMULATIONS), converters + _laplace(rng, t, SIMULATIONS))
    true_lift = ARMS["test"][1] / ARMS["control"][1] - 1
    covered = {"lift": 0, "test": 0, "control": 0}
    log_ratios = []
    for i in range(SIMULATIONS):
        rows = [[arm, int(noisy[arm][0][i]), int(noisy[arm][1][i])] for arm in ARMS]
        report = lift_report(_body(rows, str(t), str(t)), "test", "control")
        assert report.lift is not None and report.lift_low is not None and report.lift_high is not None
        covered["lift"] += report.lift_low <= true_lift <= report.lift_high
        for arm in report.arms:
            assert arm.rate_low is not None and arm.rate_high is not None
            covered[arm.arm] += arm.rate_low <= ARMS[arm.arm][1] <= arm.rate_high
        log_ratios.append(math.log1p(report.lift))
    return {"coverage": {k: v / SIMULATIONS for k, v in covered.items()},
            "empirical_var": float(np.var(log_ratios)), "noisy": noisy}


def _formula_var(t: float, *, sampling: bool = True, noise: bool = True) -> float:
    v = noise_variance("discrete_laplace", str(t)) if noise else 0.0
    total = 0.0
    for n, p in ARMS.values():
        c = n * p
        total += log_rate_variance(n, c, v, v) if sampling else v / c**2 + v / n**2
    return total


@pytest.mark.parametrize("t", [2.0, 30.0])  # sampling-dominated, then noise-dominated (2/3 of the variance)
def test_intervals_cover_and_the_variance_matches_a_simulation(t: float) -> None:
    sim = _simulate(t, seed=int(t * 1000) + 7)
    for name, coverage in sim["coverage"].items():
        assert 0.93 <= coverage <= 0.97, (t, name, coverage)
    ratio = sim["empirical_var"] / _formula_var(t)
    assert 0.9 <= ratio <= 1.1, (t, ratio)


def test_each_variance_term_is_needed() -> None:
    """Without the noise term the noise-dominated world is badly under-covered, and without the
    binomial term the sampling-dominated one: the simulation would catch either mistake."""
    noisy = _simulate(30.0, seed=1)
    assert noisy["empirical_var"] / _formula_var(30.0, noise=False) > 2
    quiet = _simulate(2.0, seed=2)
    assert quiet["empirical_var"] / _formula_var(2.0, sampling=False) > 20


def test_discrete_laplace_variance_is_the_sum_of_its_law() -> None:
    t = 3.0
    q = math.exp(-1 / t)
    c = (1 - q) / (1 + q)
    brute = sum(2 * x * x * c * q**x for x in range(1, 2000))
    assert noise_variance("discrete_laplace", "3") == pytest.approx(brute, rel=1e-12)
    assert noise_variance("discrete_gaussian", "49/4") == 12.25


def test_report_text_json_and_refusals() -> None:
    body = _body([["control", 20_000, 900], ["test", 20_000, 1200]], "10", "10")
    report = lift_report(body, "test", "control")
    assert report.lift == pytest.approx(1200 / 900 - 1)
    assert report.lift_low < report.lift < report.lift_high
    text = render_lift(report)
    assert "lift: 33.33%" in text and "control" in text
    assert lift_json(report)["arms"][1]["converters"] == 1200
    with pytest.raises(InvalidInput, match="'other' was not released"):
        lift_report(body, "other", "control")
    zero = lift_report(_body([["control", 20_000, 0], ["test", 20_000, 5]], "10", "10"), "test", "control")
    assert zero.lift is None and zero.arms[0].rate is None
    with pytest.raises(InvalidInput, match="grouped by one arm"):
        lift_report({**body, "kind": "overlap"}, "test", "control")
