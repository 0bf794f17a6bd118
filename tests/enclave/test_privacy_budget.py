"""Accounting: exact noise scales, the (ε, δ) report of zCDP, the threshold τ, and the ledger.

OpenDP 0.16.0 (requirements/dp-oracle.txt, a dev-only dependency never shipped in the enclave)
is the oracle for the scale -> ε / ρ maps and the zCDP -> (ε, δ) conversion; those tests skip
when it is not installed. τ is checked against the table in docs/privacy.md and an exact summation,
never against OpenDP's threshold maps (they under-report δ, opendp/opendp#2922).
"""

from __future__ import annotations

import math
import os
import warnings
from fractions import Fraction

import pytest

from enclave.state.ledger import BudgetLedger
from protocol.errors import BudgetExhausted, StateError
from protocol.privacy.accounting import Statistic, bun_steinke_epsilon, calibrate, decimal_text
from protocol.privacy.threshold import release_threshold

# ----------------------------------------------------------------------------- noise parameters


def test_calibration_is_exact_and_splits_the_charge() -> None:
    stats = [Statistic("users", 48, 4, 1), Statistic("rows", 48, 4, 8), Statistic("sum", 48, 4, 8 * 50_000)]
    pure = calibrate(stats, "pure", Fraction(3, 5))
    assert [c.share for c in pure] == [Fraction(1, 5)] * 3
    assert [c.scale for c in pure] == [20, 160, 8_000_000]  # t = Δ1/ε_share
    assert {c.mechanism for c in pure} == {"discrete_laplace"}
    zcdp = calibrate(stats, "zcdp", Fraction(3, 100))
    # σ² = Δ2²/(2ρ_share): Δ2² = 4, 4·64, 4·(400000)²; ρ_share = 1/100
    assert [c.scale for c in zcdp] == [200, 12_800, 4 * 400_000**2 * 50]
    assert sum(c.share for c in zcdp) == Fraction(3, 100)
    with pytest.raises(ValueError):
        calibrate([], "pure", Fraction(1))


def test_statistic_sensitivities() -> None:
    s = Statistic("value", 9, 5, 40)
    assert (s.l1, s.l2_sq) == (200, 5 * 1600)


# docs/privacy.md: OpenDP's ε and the Bun–Steinke bound at δ = 1e-8.
@pytest.mark.parametrize(("rho", "opendp_eps", "bound"), [
    ("0.005", 0.52, 0.61), ("0.05", 1.76, 1.97), ("0.5", 6.09, 6.57), ("5", 23.2, 24.2)])
def test_bun_steinke_matches_the_reference_table(rho: str, opendp_eps: float, bound: float) -> None:
    eps = float(bun_steinke_epsilon(Fraction(rho), Fraction(1, 10**8)))
    assert eps == pytest.approx(bound, abs=0.006)
    assert eps >= opendp_eps  # conservative: never below the tighter conversion
    exact = float(rho) + 2 * math.sqrt(float(rho) * math.log(1e8))
    assert 0 <= eps - exact < 1e-4 * exact  # rounded up, never down


def test_decimal_text_rounds_up() -> None:
    assert decimal_text(Fraction(1, 3)) == "0.333334"
    assert decimal_text(Fraction(2)) == "2"


# ------------------------------------------------------------------------------------ threshold

# docs/privacy.md: minimum τ with L0 = Linf = 1, discrete Laplace scale 1/ε.
@pytest.mark.parametrize(("eps", "row"), [
    ("0.1", (133, 179, 225)), ("0.5", (28, 37, 47)), ("1", (15, 20, 24)), ("2", (8, 11, 13))])
def test_laplace_threshold_reproduces_the_reference_table(eps: str, row: tuple[int, int, int]) -> None:
    scale = 1 / Fraction(eps)
    got = tuple(release_threshold("discrete_laplace", scale, 1, Fraction(1, 10**k)) for k in (6, 8, 10))
    assert got == row


def test_laplace_threshold_with_larger_l0() -> None:
    # docs/privacy.md: at ε = 1, δ = 1e-8, L0 = 5 needs scale 5 and τ = 99; L0 = 20: scale 20, τ = 416.
    assert release_threshold("discrete_laplace", Fraction(5), 5, Fraction(1, 10**8)) == 99
    assert release_threshold("discrete_laplace", Fraction(20), 20, Fraction(1, 10**8)) == 416


def _gaussian_tails(sigma2: float) -> list[float]:
    """P[Z ≥ k] for k = 0, 1, ... of the discrete Gaussian, by direct summation (not the bound)."""
    bound = int(60 * math.sqrt(sigma2)) + 60
    weights = [math.exp(-(x * x) / (2 * sigma2)) for x in range(-bound, bound + 1)]
    total = math.fsum(weights)
    tails, acc = [], 0.0
    for w in reversed(weights[bound:]):
        acc += w
        tails.append(acc / total)
    return tails[::-1]


@pytest.mark.parametrize(("sigma2", "l0", "delta"), [(200, 4, 1e-9), (1, 1, 1e-6), (2500, 16, 1e-9),
                                                      (Fraction(7, 2), 2, 1e-8)])
def test_gaussian_threshold_is_sound_and_nearly_tight(sigma2, l0: int, delta: float) -> None:
    tau = release_threshold("discrete_gaussian", Fraction(sigma2), l0, Fraction(delta))
    tails = _gaussian_tails(float(sigma2))
    assert l0 * tails[tau - 1] <= delta  # a one-unit cohort clears τ w.p. ≤ δ/L0
    exact_min = next(k for k in range(1, len(tails)) if l0 * tails[k] <= delta) + 1
    s2 = float(sigma2)
    assert exact_min <= tau <= exact_min + max(2, math.isqrt(int(s2)) // 4)  # the bound costs little


def test_threshold_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        release_threshold("discrete_laplace", Fraction(1), 0, Fraction(1, 10**9))
    with pytest.raises(ValueError):
        release_threshold("discrete_laplace", Fraction(1), 1, Fraction(1))
    with pytest.raises(ValueError):
        release_threshold("uniform", Fraction(1), 1, Fraction(1, 10))


# --------------------------------------------------------------------------------------- ledger


def test_ledger_refuses_the_query_that_would_overspend() -> None:
    ledger = BudgetLedger({"a": Fraction(1), "b": Fraction(1)})
    for _ in range(3):
        ledger.charge(["a", "b"], Fraction(3, 10))
    with pytest.raises(BudgetExhausted):
        ledger.charge(["a", "b"], Fraction(3, 10))  # 0.9 + 0.3 > 1
    assert ledger.remaining("a") == Fraction(1, 10)
    ledger.charge(["a", "b"], Fraction(1, 10))  # exactly the rest is allowed
    assert ledger.remaining("a") == 0


def test_ledger_charge_is_all_or_nothing() -> None:
    ledger = BudgetLedger({"a": Fraction(1), "b": Fraction(1, 2)})
    ledger.charge(["a"], Fraction(1, 2))
    ledger.charge(["b"], Fraction(2, 5))
    with pytest.raises(BudgetExhausted):
        ledger.charge(["a", "b"], Fraction(1, 5))  # b would overspend: a must not be debited
    assert (ledger.spent("a"), ledger.spent("b")) == (Fraction(1, 2), Fraction(2, 5))


def test_ledger_tracks_delta_and_round_trips_through_sealing() -> None:
    ledger = BudgetLedger({"a": Fraction(1, 2), "b": Fraction(1, 2)})
    ledger.charge(["a", "b"], Fraction(1, 100), Fraction(1, 10**9))
    ledger.charge(["a"], Fraction(1, 100), Fraction(1, 10**9))
    sealed = ledger.to_sealable()
    totals = {"a": Fraction(1, 2), "b": Fraction(1, 2)}
    restored = BudgetLedger(totals, BudgetLedger.spent_from_sealed(sealed))
    assert restored.remaining("a") == Fraction(12, 25) and restored.delta_spent("a") == Fraction(2, 10**9)
    assert restored.delta_spent("b") == Fraction(1, 10**9)
    # State sealed by the ε-only ledger of the first release still restores.
    old = BudgetLedger({"a": Fraction(6)}, BudgetLedger.spent_from_sealed({"a": "3/5"}))
    assert old.remaining("a") == Fraction(27, 5) and old.delta_spent("a") == 0


@pytest.mark.parametrize("sealed", [{"c": ["0", "0"]}, {"a": ["-1", "0"]}, {"a": ["1", "-1"]}])
def test_ledger_refuses_sealed_state_that_does_not_fit(sealed) -> None:
    with pytest.raises(StateError):
        BudgetLedger({"a": Fraction(1)}, BudgetLedger.spent_from_sealed(sealed))


def test_ledger_refuses_malformed_state_and_charges() -> None:
    with pytest.raises(StateError):
        BudgetLedger.spent_from_sealed({"a": ["x"]})
    ledger = BudgetLedger({"a": Fraction(1)})
    for amount, datasets in ((Fraction(0), ["a"]), (Fraction(1, 2), ["zz"])):
        with pytest.raises(StateError):
            ledger.charge(datasets, amount)


# ------------------------------------------------------------------------------- OpenDP oracle


@pytest.fixture(scope="module")
def dp():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # OpenDP's own import-time deprecations are not ours
        if os.environ.get("CI") == "true":  # CI installs the oracle: its absence is a failure
            import opendp.prelude as prelude
        else:
            prelude = pytest.importorskip(
                "opendp.prelude",
                reason="OpenDP is a dev-only oracle: pip install -r requirements/dp-oracle.txt")
    prelude.enable_features("contrib")
    return prelude


@pytest.mark.parametrize(("l1", "epsilon"), [(4, "0.2"), (32, "0.2"), (1, "0.1"), (5, "0.6")])
def test_laplace_scale_matches_opendp(dp, l1: int, epsilon: str) -> None:
    (c,) = calibrate([Statistic("s", 1, l1, 1)], "pure", Fraction(epsilon))
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    measurement = space >> dp.m.then_laplace(scale=float(c.scale))
    assert measurement.map(l1) == pytest.approx(float(epsilon), rel=1e-9)


@pytest.mark.parametrize(("l0", "per_cell", "rho"), [(4, 1, "0.01"), (4, 8, "0.03"), (16, 3, "0.5")])
def test_gaussian_sigma_matches_opendp(dp, l0: int, per_cell: int, rho: str) -> None:
    (c,) = calibrate([Statistic("s", 1, l0, per_cell)], "zcdp", Fraction(rho))
    l2 = math.isqrt(l0) * per_cell  # the L0 here are squares, so Δ2 = √L0·c is an integer
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64")
    measurement = space >> dp.m.then_gaussian(scale=math.sqrt(float(c.scale)))
    assert measurement.map(l2) == pytest.approx(float(rho), rel=1e-9)
    # Our (ε, δ) report must never be below OpenDP's (tighter) conversion.
    profile = dp.c.make_zCDP_to_approxDP(measurement).map(l2)
    assert float(bun_steinke_epsilon(Fraction(rho), Fraction(1, 10**9))) >= profile.epsilon(1e-9)
