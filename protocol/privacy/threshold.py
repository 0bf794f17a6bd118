"""The release threshold τ for private cohort keys (docs/privacy.md).

A cohort key that exists only because of one unit u must be released with probability at most
δ/L0: u holds at most L0 keys, so the key set leaks with probability at most δ overall. The
thresholded statistic is a count of *distinct* units, to which u adds exactly 1 (in general,
Linf is u's largest contribution to the thresholded count; for a distinct count it is 1). So
u's key, of true count 1, is released when 1 + Z ≥ τ, i.e. Z ≥ k with k = τ - 1, and τ is the
smallest integer with L0 · P[Z ≥ τ - 1] ≤ δ.

* Discrete Laplace, scale t, q = e^(-1/t): P[Z = x] = (1-q)/(1+q)·q^|x|, so
  P[Z ≥ k] = q^k/(1+q) for k ≥ 0, giving τ = 1 + ⌈t·ln(L0 / (δ(1 + e^(-1/t))))⌉ exactly.
* Discrete Gaussian, σ²: for k ≥ 1, Σ_{x≥k} e^(-x²/2σ²) ≤ e^(-k²/2σ²) / (1 - e^(-k/σ²))
  (as x² ≥ k² + 2k(x-k)), and the normaliser Σ_x e^(-x²/2σ²) is ≥ 1 and, by Poisson
  summation, ≥ √(2π)·σ. So P[Z ≥ k] ≤ e^(-k²/2σ²) / ((1 - e^(-k/σ²))·max(1, √(2π)σ)).

No float decides τ: each candidate k is tested with 60-digit decimals (correctly rounded exp,
ln, sqrt) against δ shrunk by a relative margin of 1e-30, far above the accumulated rounding,
so an accepted k truly satisfies the bound; the smallest accepted k is found by bisection (the
bounds decrease in k). τ may therefore exceed the exact minimum only in a 1e-30 sliver.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction

__all__ = ["release_threshold", "tail_bound"]

_PRECISION = 60
_MARGIN = Decimal(10) ** -30


def _dec(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


def tail_bound(mechanism: str, scale: Fraction, k: int) -> Decimal:
    """An upper bound on P[Z ≥ k] (exact for discrete Laplace), in the current decimal context."""
    s = _dec(Fraction(scale))
    if mechanism == "discrete_laplace":
        q = (-1 / s).exp()
        return (-k / s).exp() / (1 + q) if k >= 0 else Decimal(1)
    if mechanism == "discrete_gaussian":
        if k < 1:
            return Decimal(1)
        two_pi = 2 * _pi()
        norm = max(Decimal(1), (two_pi * s).sqrt())  # √(2π)·σ = √(2π·σ²)
        return (Decimal(-k * k) / (2 * s)).exp() / ((1 - (Decimal(-k) / s).exp()) * norm)
    raise ValueError("unknown mechanism")


def _pi() -> Decimal:
    # Machin's formula, to the context precision: π = 16·atan(1/5) - 4·atan(1/239).
    def atan_inv(n: int) -> Decimal:
        x = Decimal(1) / n
        term, total, k, sign = x, x, 1, 1
        eps = Decimal(10) ** -(_PRECISION + 5)
        while abs(term) > eps:
            term = term * x * x
            k += 2
            sign = -sign
            total += sign * term / k
        return total

    return 16 * atan_inv(5) - 4 * atan_inv(239)


def release_threshold(mechanism: str, scale: Fraction, keys_per_unit: int, delta: Fraction) -> int:
    """Smallest τ (conservatively) with keys_per_unit · P[Z ≥ τ - 1] ≤ δ; see the module doc."""
    if keys_per_unit < 1 or not 0 < delta < 1 or scale <= 0:
        raise ValueError("threshold parameters out of range")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        limit = _dec(Fraction(delta)) * (1 - _MARGIN)

        def ok(k: int) -> bool:
            return keys_per_unit * tail_bound(mechanism, scale, k) <= limit

        return 1 + _smallest(ok)


def _smallest(ok: Callable[[int], bool]) -> int:
    hi = 1
    while not ok(hi):
        hi *= 2
    lo = hi // 2  # ok(lo) is False unless lo == 0, which bisection below also handles
    if ok(lo):
        return lo
    while hi - lo > 1:  # invariant: not ok(lo), ok(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi
