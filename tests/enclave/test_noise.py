"""Exact samplers against their exact pmfs (chi-square at a fixed significance) and moments.

Seed-free: the samplers draw from ``secrets.randbelow``, exactly as in the enclave, and every
statistical check has a fixed significance ``ALPHA`` (a sound sampler fails one with probability
about ``ALPHA``). Each goodness-of-fit test also checks its own power: the same samples must be
rejected against the pmf of a wrong scale (a negative control), with enough samples that the
expected chi-square statistic under the wrong scale is far beyond the critical value
(noncentrality > 150 at the sizes below). The ≥ 200k-sample runs live in
``python -m benchmarks.dp_calibration``, which shares the chi-square code used here.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from fractions import Fraction

import pytest

from benchmarks.dp_calibration import chi2_sf, chi_square_p_value, exact_variance, gaussian_pmf, laplace_pmf
from enclave.engine import noise
from protocol.privacy import accounting

ALPHA = 1e-6


def _seeded(seed: int) -> Callable[[int], int]:
    return random.Random(seed).randrange  # only for the determinism check


def test_chi2_sf_matches_tables() -> None:
    assert chi2_sf(3.841459, 1) == pytest.approx(0.05, rel=1e-5)
    assert chi2_sf(18.307038, 10) == pytest.approx(0.05, rel=1e-5)
    assert chi2_sf(2.558212, 10) == pytest.approx(0.99, rel=1e-5)
    assert chi2_sf(135.807, 100) == pytest.approx(0.01, rel=1e-3)


@pytest.mark.parametrize(("scale", "n"), [(Fraction(3), 50_000), (Fraction(5, 2), 30_000)])
def test_discrete_laplace_pmf(scale: Fraction, n: int) -> None:
    samples = Counter(noise.discrete_laplace(scale) for _ in range(n))
    t = float(scale)
    assert chi_square_p_value(samples, laplace_pmf(t)) > ALPHA
    assert chi_square_p_value(samples, laplace_pmf(t * 1.1)) < ALPHA  # the test can see a wrong scale
    assert chi_square_p_value(samples, laplace_pmf(t / 1.1)) < ALPHA
    q = math.exp(-1 / t)
    mean = sum(x * c for x, c in samples.items()) / n
    var = sum(x * x * c for x, c in samples.items()) / n
    assert abs(mean) < 5.5 * math.sqrt(2 * q / (1 - q) ** 2 / n)
    assert var == pytest.approx(2 * q / (1 - q) ** 2, rel=0.06)


def test_discrete_gaussian_pmf() -> None:
    sigma2 = Fraction(7, 2)
    n = 40_000
    samples = Counter(noise.discrete_gaussian(sigma2) for _ in range(n))
    assert chi_square_p_value(samples, gaussian_pmf(3.5)) > ALPHA
    assert chi_square_p_value(samples, gaussian_pmf(3.5 * 1.2)) < ALPHA  # σ about 10% too large
    assert chi_square_p_value(samples, gaussian_pmf(3.5 / 1.2)) < ALPHA
    var = sum(x * x * c for x, c in samples.items()) / n
    exact_var = exact_variance(gaussian_pmf(3.5), 200)
    assert var == pytest.approx(exact_var, rel=0.05)


@pytest.mark.parametrize("gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(7, 3)])
def test_bernoulli_exp_rate(gamma: Fraction) -> None:
    n = 20_000
    hits = sum(noise.bernoulli_exp(gamma) for _ in range(n))
    p = math.exp(-float(gamma))
    assert abs(hits - n * p) <= 5.5 * math.sqrt(n * p * (1 - p)) + 1e-9


def test_bernoulli_exact() -> None:
    assert noise.bernoulli(Fraction(0)) is False
    assert noise.bernoulli(Fraction(1)) is True
    hits = sum(noise.bernoulli(Fraction(1, 4)) for _ in range(4000))
    assert abs(hits - 1000) < 5.5 * math.sqrt(4000 * 0.25 * 0.75)


def test_scales_are_exact() -> None:
    assert accounting.laplace_scale(12, "0.5") == Fraction(24)
    assert accounting.laplace_scale(3, Fraction(1, 3)) == 9
    assert accounting.gaussian_sigma2(4, "0.02") == Fraction(100)


@pytest.mark.parametrize(
    "call",
    [
        lambda: noise.discrete_laplace(1.5),
        lambda: noise.discrete_gaussian(2.0),
        lambda: accounting.laplace_scale(1, 0.1),
        lambda: noise.bernoulli_exp(0.5),
    ],
)
def test_floats_are_refused(call) -> None:
    with pytest.raises(TypeError):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: noise.discrete_laplace(0),
        lambda: noise.discrete_gaussian(-1),
        lambda: accounting.laplace_scale(1, 0),
        lambda: accounting.gaussian_sigma2(1, "-1"),
        lambda: noise.bernoulli_exp(-1),
    ],
)
def test_bad_parameters(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_noise_vector_uses_the_csprng_by_default() -> None:
    values = noise.noise_vector(50, Fraction(10), noise.discrete_laplace)
    assert len(values) == 50 and all(type(v) is int for v in values)
    assert len(set(values)) > 5
    fixed = noise.noise_vector(5, 10, noise.discrete_gaussian, _seeded(4))
    assert fixed == noise.noise_vector(5, 10, noise.discrete_gaussian, _seeded(4))
