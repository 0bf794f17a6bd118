"""95% intervals of the noise the enclave added, from the noise parameter its signed result carries.

Every released count or sum is the true value plus one independent draw of integer noise Z
(``protocol/privacy/accounting.py``), so ``value ± k`` covers the true value with probability at
least 95% when k is the smallest integer with P(|Z| ≤ k) ≥ 0.95. k depends only on the signed
parameter, never on the data. For sums, k is in the metric's fixed-point units (10^-scale).
Clamping a noisy count at 0 and the release rule are post-processing and are ignored here.

* ``laplace_half_width``: discrete Laplace, P(Z = x) = c·q^|x| with q = e^(-1/t) and
  c = (1-q)/(1+q), for scale t (``noise_scale``). Exactly, with 50-digit decimals.
* ``laplace_difference_half_width``: Z1 - Z2 of two independent draws of the same scale, what an
  attribution's unexposed cells carry (noisy total - noisy exposed). Exactly.
* ``gaussian_half_width``: discrete Gaussian, P(Z = x) ∝ e^(-x²/2σ²) (``noise_sigma2`` = σ²).
  Summed exactly for σ ≤ 1000; above that, the normal approximation with a continuity
  correction, k = ⌈1.959964·σ - 1/2⌉, whose error there is far below one unit.
* ``gaussian_difference_half_width``: Z1 - Z2, exactly by convolution for σ ≤ 100, else the
  normal approximation with variance 2σ².
* ``mean_half_width``: a mean is noisy sum / noisy users; its ± is the first-order (delta-method)
  combination of the two half-widths: √((h_sum/users)² + (mean·h_users/users)²). It is an
  approximation, good when h_users is small against users (the release rule makes it so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

__all__ = [
    "LEVEL",
    "gaussian_difference_half_width",
    "gaussian_half_width",
    "half_width",
    "laplace_difference_half_width",
    "laplace_half_width",
    "mean_half_width",
]

LEVEL = Fraction(95, 100)
_MISS = 1 - LEVEL  # the two tails together: 0.05
_PRECISION = 50
_Z975 = 1.959963984540054  # the standard normal's 97.5% quantile
_GAUSS_EXACT_SIGMA = 1000
_GAUSS_DIFF_EXACT_SIGMA = 100


def _dec(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


def _smallest(miss: Callable[[int], Decimal | float], limit: Decimal | float) -> int:
    """Smallest k ≥ 0 with miss(k) ≤ limit, for miss decreasing in k (doubling, then bisection)."""
    if miss(0) <= limit:
        return 0
    hi = 1
    while miss(hi) > limit:
        hi *= 2
    lo = hi // 2  # invariant: miss(lo) > limit (lo = 0 was checked), miss(hi) ≤ limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if miss(mid) <= limit else (mid, hi)
    return hi


def _positive(scale: Fraction | int | str) -> Fraction:
    value = Fraction(scale)
    if value <= 0:
        raise ValueError("a noise parameter must be positive")
    return value


def laplace_half_width(t: Fraction | int | str) -> int:
    """Smallest k with P(|Z| ≤ k) ≥ 95% for discrete Laplace of scale ``t``.

    P(Z > k) = Σ_{x>k} c·q^x = q^(k+1)/(1+q), so P(|Z| > k) = 2q^(k+1)/(1+q), decreasing in k.
    """
    scale = _positive(t)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        q = (-1 / _dec(scale)).exp()
        limit = _dec(_MISS)
        return _smallest(lambda k: 2 * q ** (k + 1) / (1 + q), limit)


def laplace_difference_half_width(t: Fraction | int | str) -> int:
    """Smallest k with P(|Z1 - Z2| ≤ k) ≥ 95% for two independent discrete Laplace of scale ``t``.

    For d ≥ 0, P(D = d) = c²·Σ_x q^(|x|+|x-d|); the x in [0, d] give (d+1)·q^d and those outside
    give 2q^d·q²/(1-q²), so P(D = d) = c²·q^d·(d + 1 + a) with a = 2q²/(1-q²). With m = k+1,
    Σ_{d≥m} q^d = q^m/(1-q) and Σ_{d≥m} d·q^d = q^m·(m(1-q) + q)/(1-q)², so
    P(D > k) = c²·q^m·[(m(1-q) + q)/(1-q)² + (1 + a)/(1-q)], and P(|D| > k) is twice that.
    """
    scale = _positive(t)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        q = (-1 / _dec(scale)).exp()
        c2 = ((1 - q) / (1 + q)) ** 2
        a = 2 * q * q / (1 - q * q)

        def miss(k: int) -> Decimal:
            m = k + 1
            return 2 * c2 * q**m * ((m * (1 - q) + q) / (1 - q) ** 2 + (1 + a) / (1 - q))

        return _smallest(miss, _dec(_MISS))


def _gaussian_weights(sigma2: float, sigma: float) -> np.ndarray:
    """e^(-x²/2σ²) for x = 0, 1, ..., far enough out that the rest is below 1e-30 of the mass."""
    span = int(12 * sigma) + 12
    x = np.arange(span + 1, dtype=np.float64)
    return np.exp(-(x * x) / (2 * sigma2))


def _symmetric_half_width(weights: np.ndarray) -> int:
    """Smallest k with mass(|x| ≤ k) ≥ 95% of the total, for weights of x = 0, 1, 2, ... (x ≥ 0)."""
    two_sided = np.concatenate(([weights[0]], 2 * weights[1:]))
    covered = np.cumsum(two_sided) / two_sided.sum()
    # The 1e-12 slack keeps float summation from moving k when the mass sits exactly on 95%.
    return int(np.searchsorted(covered, float(LEVEL) - 1e-12))


def gaussian_half_width(sigma2: Fraction | int | str) -> int:
    """Smallest k with P(|Z| ≤ k) ≥ 95% for the discrete Gaussian of variance parameter σ²."""
    s2 = float(_positive(sigma2))
    sigma = math.sqrt(s2)
    if sigma > _GAUSS_EXACT_SIGMA:
        return max(0, math.ceil(_Z975 * sigma - 0.5))
    return _symmetric_half_width(_gaussian_weights(s2, sigma))


def gaussian_difference_half_width(sigma2: Fraction | int | str) -> int:
    """Smallest k with P(|Z1 - Z2| ≤ k) ≥ 95% for two independent discrete Gaussians of σ²."""
    s2 = float(_positive(sigma2))
    sigma = math.sqrt(s2)
    if sigma > _GAUSS_DIFF_EXACT_SIGMA:
        return max(0, math.ceil(_Z975 * math.sqrt(2 * s2) - 0.5))
    half = _gaussian_weights(s2, sigma)
    full = np.concatenate((half[:0:-1], half))  # x = -span .. span
    difference = np.convolve(full, full[::-1])  # the law of Z1 - Z2, centred at its middle
    middle = len(difference) // 2
    return _symmetric_half_width(difference[middle:])


def half_width(mechanism: str, parameter: Fraction | int | str, *, difference: bool = False) -> int:
    """The 95% half-width of one cell's noise (or of a difference of two cells' noise)."""
    if mechanism == "discrete_laplace":
        return laplace_difference_half_width(parameter) if difference else laplace_half_width(parameter)
    if mechanism == "discrete_gaussian":
        return gaussian_difference_half_width(parameter) if difference else gaussian_half_width(parameter)
    raise ValueError(f"unknown noise mechanism {mechanism!r}")


def mean_half_width(mean: Decimal, users: int, sum_half_width: Decimal, users_half_width: int) -> Decimal:
    """First-order 95% half-width of noisy sum / noisy users (see the module docstring)."""
    if users <= 0:
        raise ValueError("a mean needs a positive count")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        n = Decimal(users)
        return ((sum_half_width / n) ** 2 + (mean * users_half_width / n) ** 2).sqrt()
