"""Exact samplers against their exact pmfs (chi-square at a fixed significance) and moments.

The randomness source is a seeded ``random.Random`` so that the suite is deterministic; the
samplers only ever call ``randbelow``, which is what the enclave feeds from ``secrets``. Each
goodness-of-fit test also checks its own power: the same samples must be rejected against the
pmf of a 10% wrong scale.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from fractions import Fraction

import pytest

from enclave import noise

ALPHA = 1e-4


def _source(seed: int) -> Callable[[int], int]:
    return random.Random(seed).randrange


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) (series below a+1, Lentz continued fraction)."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= x / n
            total += term
        return 1.0 - total * math.exp(log_prefix)
    b, c, d = x + 1 - a, 1e300, 1.0 / (x + 1 - a)
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(log_prefix) * h


def chi2_sf(stat: float, df: int) -> float:
    return _gamma_q(df / 2, stat / 2)


def test_chi2_sf_matches_tables() -> None:
    assert chi2_sf(3.841459, 1) == pytest.approx(0.05, rel=1e-5)
    assert chi2_sf(18.307038, 10) == pytest.approx(0.05, rel=1e-5)
    assert chi2_sf(2.558212, 10) == pytest.approx(0.99, rel=1e-5)
    assert chi2_sf(135.807, 100) == pytest.approx(0.01, rel=1e-3)


def _p_value(samples: Counter[int], pmf: Callable[[int], float]) -> float:
    """Chi-square p-value, pooling tails so every expected count is at least 5."""
    n = sum(samples.values())
    lo = hi = 0
    while n * pmf(lo - 1) >= 5:
        lo -= 1
    while n * pmf(hi + 1) >= 5:
        hi += 1
    inner = sum(pmf(x) for x in range(lo, hi + 1))
    left_tail = sum(pmf(x) for x in range(lo - 2000, lo))
    cells = [(n * pmf(x), samples[x]) for x in range(lo, hi + 1)]
    cells.append((n * left_tail, sum(c for x, c in samples.items() if x < lo)))
    cells.append((n * (1 - inner - left_tail), sum(c for x, c in samples.items() if x > hi)))
    stat = sum((obs - exp) ** 2 / exp for exp, obs in cells)
    return chi2_sf(stat, len(cells) - 1)


def _laplace_pmf(t: float) -> Callable[[int], float]:
    q = math.exp(-1 / t)
    return lambda x: (1 - q) / (1 + q) * q ** abs(x)


def _gaussian_pmf(sigma2: float) -> Callable[[int], float]:
    bound = int(40 * math.sqrt(sigma2)) + 40
    z = sum(math.exp(-(x * x) / (2 * sigma2)) for x in range(-bound, bound + 1))
    return lambda x: math.exp(-(x * x) / (2 * sigma2)) / z


@pytest.mark.parametrize(("scale", "n"), [(Fraction(3), 50_000), (Fraction(5, 2), 30_000)])
def test_discrete_laplace_pmf(scale: Fraction, n: int) -> None:
    draw = _source(int(scale * 100))
    samples = Counter(noise.discrete_laplace(scale, draw) for _ in range(n))
    t = float(scale)
    assert _p_value(samples, _laplace_pmf(t)) > ALPHA
    assert _p_value(samples, _laplace_pmf(t * 1.1)) < ALPHA  # the test can see a wrong scale
    assert _p_value(samples, _laplace_pmf(t / 1.1)) < ALPHA
    q = math.exp(-1 / t)
    mean = sum(x * c for x, c in samples.items()) / n
    var = sum(x * x * c for x, c in samples.items()) / n
    assert abs(mean) < 5 * math.sqrt(2 * q / (1 - q) ** 2 / n)
    assert var == pytest.approx(2 * q / (1 - q) ** 2, rel=0.05)


def test_discrete_gaussian_pmf() -> None:
    sigma2 = Fraction(7, 2)
    n = 40_000
    draw = _source(99)
    samples = Counter(noise.discrete_gaussian(sigma2, draw) for _ in range(n))
    assert _p_value(samples, _gaussian_pmf(3.5)) > ALPHA
    assert _p_value(samples, _gaussian_pmf(3.5 * 1.1)) < ALPHA
    assert _p_value(samples, _gaussian_pmf(3.5 / 1.1)) < ALPHA
    var = sum(x * x * c for x, c in samples.items()) / n
    pmf = _gaussian_pmf(3.5)
    exact_var = sum(x * x * pmf(x) for x in range(-200, 201))
    assert var == pytest.approx(exact_var, rel=0.05)


@pytest.mark.parametrize("gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(7, 3)])
def test_bernoulli_exp_rate(gamma: Fraction) -> None:
    n = 20_000
    draw = _source(gamma.numerator * 31 + gamma.denominator)
    hits = sum(noise.bernoulli_exp(gamma, draw) for _ in range(n))
    p = math.exp(-float(gamma))
    assert abs(hits - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1e-9


def test_bernoulli_exact() -> None:
    assert noise.bernoulli(Fraction(0), _source(1)) is False
    assert noise.bernoulli(Fraction(1), _source(1)) is True
    hits = sum(noise.bernoulli(Fraction(1, 4), _source(i)) for i in range(4000))
    assert abs(hits - 1000) < 5 * math.sqrt(4000 * 0.25 * 0.75)


def test_scales_are_exact() -> None:
    assert noise.laplace_scale(12, "0.5") == Fraction(24)
    assert noise.laplace_scale(3, Fraction(1, 3)) == 9
    assert noise.gaussian_sigma2(4, "0.02") == Fraction(100)


@pytest.mark.parametrize(
    "call",
    [
        lambda: noise.discrete_laplace(1.5),
        lambda: noise.discrete_gaussian(2.0),
        lambda: noise.laplace_scale(1, 0.1),
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
        lambda: noise.laplace_scale(1, 0),
        lambda: noise.gaussian_sigma2(1, "-1"),
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
    fixed = noise.noise_vector(5, 10, noise.discrete_gaussian, _source(4))
    assert fixed == noise.noise_vector(5, 10, noise.discrete_gaussian, _source(4))
