"""The 95% half-widths of ``cleanroom.noise_intervals`` against the laws summed by brute force.

For each parameter the half-width k must be the smallest integer with P(|Z| ≤ k) ≥ 0.95: the
brute-force mass at k must reach 0.95 and the mass at k - 1 must not.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from cleanroom.noise_intervals import (
    gaussian_difference_half_width,
    gaussian_half_width,
    half_width,
    laplace_difference_half_width,
    laplace_half_width,
    mean_half_width,
)


def _laplace_law(t: float) -> np.ndarray:
    span = int(60 * t) + 60
    x = np.arange(-span, span + 1)
    p = np.exp(-np.abs(x) / t)
    return p / p.sum()


def _gaussian_law(sigma2: float) -> np.ndarray:
    span = int(14 * math.sqrt(sigma2)) + 14
    x = np.arange(-span, span + 1, dtype=np.float64)
    p = np.exp(-(x * x) / (2 * sigma2))
    return p / p.sum()


def _covered(law: np.ndarray, k: int) -> float:
    middle = len(law) // 2
    return float(law[middle - k:middle + k + 1].sum()) if k >= 0 else 0.0


def _assert_smallest(law: np.ndarray, k: int) -> None:
    assert _covered(law, k) >= 0.95 - 1e-12
    assert _covered(law, k - 1) < 0.95


@pytest.mark.parametrize("t", ["1/3", "1", "5", "20", "47/3", "160"])
def test_laplace_half_width_is_the_smallest_95_percent_bound(t):
    _assert_smallest(_laplace_law(float(Fraction(t))), laplace_half_width(t))


@pytest.mark.parametrize("t", ["1/2", "1", "5", "20", "160"])
def test_laplace_difference_half_width_matches_the_convolved_law(t):
    law = _laplace_law(float(Fraction(t)))
    _assert_smallest(np.convolve(law, law), laplace_difference_half_width(t))


@pytest.mark.parametrize("sigma2", ["1/4", "1", "200", "12345", "998001"])
def test_gaussian_half_width_is_the_smallest_95_percent_bound(sigma2):
    _assert_smallest(_gaussian_law(float(Fraction(sigma2))), gaussian_half_width(sigma2))


@pytest.mark.parametrize("sigma2", ["1", "200", "9801"])
def test_gaussian_difference_half_width_matches_the_convolved_law(sigma2):
    law = _gaussian_law(float(Fraction(sigma2)))
    _assert_smallest(np.convolve(law, law), gaussian_difference_half_width(sigma2))


def test_normal_approximation_agrees_with_the_exact_sum_where_they_meet():
    # Just below and just above the switch from summing to the approximation (σ = 1000, 100).
    exact, approx = gaussian_half_width(999**2), gaussian_half_width(1001**2)
    assert exact == math.ceil(1.959963984540054 * 999 - 0.5)
    assert approx == math.ceil(1.959963984540054 * 1001 - 0.5)
    law = _gaussian_law(101.0**2)
    _assert_smallest(np.convolve(law, law), gaussian_difference_half_width(101**2))


def test_huge_scales_stay_exact_and_fast():
    t = Fraction(8_000_000)  # a sum's scale in fixed-point units
    k = laplace_half_width(t)
    q = math.exp(-1 / float(t))
    assert 2 * q ** (k + 1) / (1 + q) <= 0.05 < 2 * q**k / (1 + q)
    assert gaussian_half_width(Fraction(10**14)) == math.ceil(1.959963984540054 * 10**7 - 0.5)


def test_dispatch_and_bad_parameters():
    assert half_width("discrete_laplace", "20") == laplace_half_width("20")
    assert half_width("discrete_gaussian", "200", difference=True) == gaussian_difference_half_width("200")
    with pytest.raises(ValueError):
        half_width("coin_flip", "1")
    with pytest.raises(ValueError):
        laplace_half_width("0")


def test_mean_half_width_is_the_first_order_combination():
    h = mean_half_width(Decimal("20"), 100, Decimal("300"), 10)
    assert abs(h - Decimal(13).sqrt()) < Decimal("1e-25")  # √((300/100)² + (20·10/100)²)
    with pytest.raises(ValueError):
        mean_half_width(Decimal(1), 0, Decimal(1), 1)
