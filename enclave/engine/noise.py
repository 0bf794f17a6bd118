"""Exact discrete noise (Canonne, Kamath, Steinke 2020, arXiv:2004.00010).

Everything here is integer or ``Fraction`` arithmetic driven by a uniform-integer source
``randbelow(n) -> int in [0, n)`` (default ``secrets.randbelow``; tests pass a fixed one). No
float is ever formed, so the output set is exactly the integers (no Mironov porosity).

The scales these samplers take (t for discrete Laplace, σ² for discrete Gaussian) and why they
give the promised ε or ρ are derived in ``protocol/privacy/accounting.py``, which both the
enclave and the party's ``policy lint`` run.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from fractions import Fraction

from protocol.privacy.accounting import Rational, rational

__all__ = ["bernoulli", "bernoulli_exp", "discrete_gaussian", "discrete_laplace", "noise_vector"]

RandBelow = Callable[[int], int]


def bernoulli(p: Fraction, randbelow: RandBelow = secrets.randbelow) -> bool:
    """True with probability exactly p, for 0 <= p <= 1."""
    return randbelow(p.denominator) < p.numerator


def _bernoulli_exp_unit(gamma: Fraction, randbelow: RandBelow) -> bool:
    """CKS20 Alg. 1 for 0 <= γ <= 1: K = first k with Bernoulli(γ/k) = 0; P(K odd) = e^-γ."""
    k = 1
    while bernoulli(gamma / k, randbelow):
        k += 1
    return k % 2 == 1


def bernoulli_exp(gamma: Rational, randbelow: RandBelow = secrets.randbelow) -> bool:
    """True with probability exactly exp(-γ), for rational γ >= 0 (e^-γ = (e^-1)^⌊γ⌋·e^-frac)."""
    g = rational(gamma)
    if g < 0:
        raise ValueError("gamma must be non-negative")
    for _ in range(g.numerator // g.denominator):
        if not _bernoulli_exp_unit(Fraction(1), randbelow):
            return False
    return _bernoulli_exp_unit(g - g.numerator // g.denominator, randbelow)


def _geometric_exp(t: int, randbelow: RandBelow) -> int:
    """X >= 0 with P(X = x) ∝ exp(-x/t), for integer t >= 1 (CKS20 Alg. 2, inner loop).

    U uniform on [0, t) kept with probability e^(-U/t), plus t·V with V ~ Geometric(1 - e^-1):
    together P(U + tV = x) ∝ e^(-x/t).
    """
    while True:
        u = randbelow(t)
        if bernoulli_exp(Fraction(u, t), randbelow):
            break
    v = 0
    while bernoulli_exp(1, randbelow):
        v += 1
    return u + t * v


def discrete_laplace(scale: Rational, randbelow: RandBelow = secrets.randbelow) -> int:
    """Integer x with P(x) ∝ exp(-|x|/scale), for rational scale = t/s > 0 (CKS20 Alg. 2).

    Y = ⌊X/s⌋ of X ~ Geometric(exp(-1/t)) is Geometric(exp(-s/t)); a random sign, rejecting
    "-0" so that 0 is not counted twice, makes it two-sided.
    """
    sc = rational(scale)
    if sc <= 0:
        raise ValueError("scale must be positive")
    t, s = sc.numerator, sc.denominator
    while True:
        y = _geometric_exp(t, randbelow) // s
        negative = randbelow(2) == 1
        if not (negative and y == 0):
            return -y if negative else y


def discrete_gaussian(sigma2: Rational, randbelow: RandBelow = secrets.randbelow) -> int:
    """Integer x with P(x) ∝ exp(-x²/(2σ²)), for rational σ² > 0 (CKS20 Alg. 3).

    Rejection from discrete Laplace of integer scale t = ⌊σ⌋ + 1: accept Y with probability
    exp(-(|Y| - σ²/t)² / (2σ²)), which turns e^(-|y|/t) into e^(-y²/(2σ²)) up to a constant.
    """
    s2 = rational(sigma2)
    if s2 <= 0:
        raise ValueError("sigma2 must be positive")
    t = math.isqrt(s2.numerator // s2.denominator) + 1  # ⌊σ⌋ + 1, as ⌊√⌊x⌋⌋ = ⌊√x⌋
    while True:
        y = discrete_laplace(t, randbelow)
        if bernoulli_exp((abs(y) - s2 / t) ** 2 / (2 * s2), randbelow):
            return y


def noise_vector(
    n: int,
    scale: Rational,
    sampler: Callable[[Rational, RandBelow], int],
    randbelow: RandBelow = secrets.randbelow,
) -> list[int]:
    """``n`` independent draws of ``sampler(scale)`` (e.g. ``discrete_laplace``) as Python ints."""
    return [sampler(scale, randbelow) for _ in range(n)]
