"""From the policy's bounds and a query's charge to exact noise parameters, and (ε, δ) reports.

Every released vector is a ``Statistic``: the analysis says how many of its cells one privacy
unit can touch (``cells_per_unit``) and by how much at most (``per_cell``), both derived from
the policy's contribution bounds and clamps (docs/privacy.md). Then

* L1 sensitivity   Δ1  = cells_per_unit · per_cell
* L2 sensitivity²  Δ2² = cells_per_unit · per_cell²   (kept squared: an exact integer)

A query's charge (ε in pure mode, ρ in zCDP mode) is split evenly over its statistics; both
compose by addition (sequential composition; zCDP: Bun–Steinke 2016 Lemma 2.3), so the query
costs exactly its charge. Each statistic then gets (proofs at ``laplace_scale``, ``gaussian_sigma2``):

* pure:  discrete Laplace, t  = Δ1 / ε_share        -> ε_share-DP
* zcdp:  discrete Gaussian, σ² = Δ2² / (2·ρ_share)  -> ρ_share-zCDP

All of it is ``Fraction`` arithmetic: no float decides a scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from fractions import Fraction

__all__ = [
    "MECHANISMS", "Calibrated", "Rational", "Statistic", "bun_steinke_epsilon", "calibrate", "decimal_text",
    "gaussian_sigma2", "laplace_scale", "rational",
]

Rational = Fraction | int | str
MECHANISMS = {"pure": "discrete_laplace", "zcdp": "discrete_gaussian"}
_PRECISION = 60


def rational(value: Rational) -> Fraction:
    if isinstance(value, float) or not isinstance(value, Fraction | int | str):
        raise TypeError("noise parameters must be int, Fraction or decimal string, never float")
    return Fraction(value)


def laplace_scale(l1_sensitivity: Rational, epsilon: Rational) -> Fraction:
    """t = Δ1/ε for pure ε-DP.

    Discrete Laplace P(x) ∝ exp(-|x|/t): for neighbours whose true answers differ by at most Δ1
    in L1 norm, the density ratio is exp((|x-a| - |x-b|)/t) ≤ exp(Δ1/t), so t = Δ1/ε is ε-DP.
    """
    eps = rational(epsilon)
    if eps <= 0:
        raise ValueError("epsilon must be positive")
    return rational(l1_sensitivity) / eps


def gaussian_sigma2(l2_sensitivity_sq: Rational, rho: Rational) -> Fraction:
    """σ² = Δ2²/(2ρ) for ρ-zCDP.

    Discrete Gaussian P(x) ∝ exp(-x²/(2σ²)); CKS20 Thm. 4: adding it to an answer with L2
    sensitivity Δ2 is ρ-zCDP with ρ = Δ2²/(2σ²). Δ2² is passed squared so it stays an exact
    integer (Δ2 = √L0·Linf·C is not rational in general).
    """
    r = rational(rho)
    if r <= 0:
        raise ValueError("rho must be positive")
    return rational(l2_sensitivity_sq) / (2 * r)


@dataclass(frozen=True)
class Statistic:
    """One released vector of ``length`` cells and what one unit can change in it."""

    name: str
    length: int
    cells_per_unit: int  # a unit touches at most this many cells of the vector ...
    per_cell: int  # ... and changes each of them by at most this much

    @property
    def l1(self) -> int:
        return self.cells_per_unit * self.per_cell

    @property
    def l2_sq(self) -> int:
        return self.cells_per_unit * self.per_cell**2


@dataclass(frozen=True)
class Calibrated:
    statistic: Statistic
    mechanism: str  # "discrete_laplace" or "discrete_gaussian"
    share: Fraction  # the ε (pure) or ρ (zcdp) this statistic spends
    scale: Fraction  # t for discrete Laplace, σ² for discrete Gaussian


def calibrate(statistics: list[Statistic], mode: str, charge: Fraction) -> list[Calibrated]:
    """Split ``charge`` evenly over ``statistics`` and derive each one's exact noise parameter."""
    if not statistics:
        raise ValueError("a query releases at least one statistic")
    share = Fraction(charge) / len(statistics)
    out = []
    for stat in statistics:
        if mode == "pure":
            scale = laplace_scale(stat.l1, share)  # t = Δ1/ε_share
        elif mode == "zcdp":
            scale = gaussian_sigma2(stat.l2_sq, share)  # σ² = Δ2²/(2ρ_share)
        else:
            raise ValueError("unknown accounting mode")
        out.append(Calibrated(stat, MECHANISMS[mode], share, scale))
    return out


def bun_steinke_epsilon(rho: Fraction, delta: Fraction) -> Decimal:
    """An upper bound on ε such that ρ-zCDP implies (ε, δ)-DP: ρ + 2·√(ρ·ln(1/δ)).

    Bun–Steinke 2016 Prop. 1.3. For reporting only (no noise depends on it): evaluated with
    60-digit decimals, whose ln and sqrt are correctly rounded, then rounded *up* to 6
    significant digits, so the printed figure never understates the loss.
    """
    if rho < 0 or not 0 < delta < 1:
        raise ValueError("rho must be >= 0 and delta in (0, 1)")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        r = Decimal(rho.numerator) / Decimal(rho.denominator)
        d = Decimal(delta.numerator) / Decimal(delta.denominator)
        eps = r + 2 * (r * (1 / d).ln()).sqrt()
        eps *= 1 + Decimal(10) ** -40  # covers the rounding of the few operations above
        return _round_up(eps, 6)


def _round_up(value: Decimal, digits: int) -> Decimal:
    if value == 0:
        return Decimal(0)
    exponent = value.adjusted() - digits + 1
    return value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_CEILING)


def decimal_text(value: Fraction | Decimal, digits: int = 6) -> str:
    """A short decimal for people, rounded up (for costs and bounds that must not understate)."""
    if isinstance(value, Fraction):
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            value = Decimal(value.numerator) / Decimal(value.denominator)
    return format(_round_up(value, digits).normalize(), "f")
