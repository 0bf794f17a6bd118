"""Calibration check of the enclave's exact samplers and of the private-cohort threshold.

    python -m benchmarks.dp_calibration [--json] [--samples 200000] [--jobs N]

For each sampler (``enclave.engine.noise.discrete_laplace``, ``discrete_gaussian``) at a few scales it
draws ``--samples`` values from the enclave's own randomness (``secrets.randbelow``, no seed)
and reports the chi-square ``p_value`` against the exact pmf (tails pooled so every expected
count is at least 5) and ``variance_ratio``, measured over exact variance. Then, for a few
(mechanism, scale, L0, δ) settings with δ large enough to be measurable, it measures how often
a cohort held by one unit (true count 1) clears the threshold τ that ``protocol.privacy.threshold``
computes; that rate must not exceed δ/L0 beyond sampling error. For the example policy's δ =
1e-9 a rate cannot be measured, so the exact tail probability is reported instead.

Floats appear here, in the *checker* only: the pmfs and the chi-square distribution.
Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from enclave.engine import noise
from protocol.privacy.threshold import release_threshold, tail_bound

__all__ = ["chi2_sf", "chi_square_p_value", "exact_variance", "gaussian_pmf", "laplace_pmf", "main", "run",
           "variance_tolerance"]

ALPHA = 1e-4  # per check; a sound sampler fails one of the ~9 checks with probability < 1e-3
# |variance_ratio - 1| allowed: 6 standard errors of a sample variance at kurtosis ≤ 6 (Laplace),
# i.e. 0.03 at 200k samples.
def variance_tolerance(n: int) -> float:
    return 6 * math.sqrt(5 / n)


SAMPLER_RUNS = [
    ("discrete_laplace", Fraction(1)), ("discrete_laplace", Fraction(5, 2)),
    ("discrete_laplace", Fraction(10)),
    ("discrete_gaussian", Fraction(1)), ("discrete_gaussian", Fraction(10)),
    ("discrete_gaussian", Fraction(100)),
]
# (mechanism, scale, L0, δ): measurable δ; τ is computed exactly as the enclave does.
RELEASE_RUNS = [
    ("discrete_laplace", Fraction(2), 4, Fraction(1, 1000)),
    ("discrete_laplace", Fraction(1), 1, Fraction(1, 100)),
    ("discrete_gaussian", Fraction(4), 1, Fraction(1, 1000)),
]
# The example policy's private cohorts: reach, ε 0.2 on a count with L0 = 4 -> t = 20.
POLICY_RUN = ("discrete_laplace", Fraction(20), 4, Fraction(1, 10**9))
_SAMPLERS: dict[str, Callable[[Fraction], int]] = {
    "discrete_laplace": noise.discrete_laplace, "discrete_gaussian": noise.discrete_gaussian,
}


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
    """P[χ²_df ≥ stat]."""
    return _gamma_q(df / 2, stat / 2)


def laplace_pmf(t: float) -> Callable[[int], float]:
    q = math.exp(-1 / t)
    return lambda x: (1 - q) / (1 + q) * q ** abs(x)


def gaussian_pmf(sigma2: float) -> Callable[[int], float]:
    bound = int(40 * math.sqrt(sigma2)) + 40
    z = math.fsum(math.exp(-(x * x) / (2 * sigma2)) for x in range(-bound, bound + 1))
    return lambda x: math.exp(-(x * x) / (2 * sigma2)) / z


def exact_variance(pmf: Callable[[int], float], bound: int) -> float:
    return math.fsum(x * x * pmf(x) for x in range(-bound, bound + 1))


def chi_square_p_value(samples: Counter[int], pmf: Callable[[int], float]) -> float:
    """Chi-square goodness-of-fit p-value, pooling tails so every expected count is ≥ 5."""
    n = sum(samples.values())
    lo = hi = 0
    while n * pmf(lo - 1) >= 5:
        lo -= 1
    while n * pmf(hi + 1) >= 5:
        hi += 1
    inner = math.fsum(pmf(x) for x in range(lo, hi + 1))
    left_tail = math.fsum(pmf(x) for x in range(lo - 20_000, lo))
    cells = [(n * pmf(x), samples[x]) for x in range(lo, hi + 1)]
    cells.append((n * left_tail, sum(c for x, c in samples.items() if x < lo)))
    cells.append((n * (1 - inner - left_tail), sum(c for x, c in samples.items() if x > hi)))
    stat = math.fsum((obs - exp) ** 2 / exp for exp, obs in cells)
    return chi2_sf(stat, len(cells) - 1)


def _pmf(sampler: str, scale: Fraction) -> Callable[[int], float]:
    return laplace_pmf(float(scale)) if sampler == "discrete_laplace" else gaussian_pmf(float(scale))


def _sampler_run(sampler: str, scale: Fraction, n: int) -> dict[str, Any]:
    draw = _SAMPLERS[sampler]
    samples = Counter(draw(scale) for _ in range(n))  # secrets.randbelow: the enclave's source
    pmf = _pmf(sampler, scale)
    mean = math.fsum(x * c for x, c in samples.items()) / n
    var = math.fsum(x * x * c for x, c in samples.items()) / n - mean * mean
    exact = exact_variance(pmf, int(60 * math.sqrt(float(scale)) + 60) if sampler != "discrete_laplace"
                           else int(60 * float(scale) + 60))
    p_value = chi_square_p_value(samples, pmf)
    ratio = var / exact
    return {"sampler": sampler, "scale": str(scale), "samples": n, "p_value": p_value,
            "variance_ratio": ratio, "mean": mean,
            "ok": p_value > ALPHA and abs(ratio - 1) <= variance_tolerance(n)}


def _exact_release(mechanism: str, scale: Fraction, tau: int) -> float:
    with localcontext() as ctx:
        ctx.prec = 60
        return float(tail_bound(mechanism, scale, tau - 1))


def _release_run(mechanism: str, scale: Fraction, l0: int, delta: Fraction, n: int) -> dict[str, Any]:
    tau = release_threshold(mechanism, scale, l0, delta)
    draw = _SAMPLERS[mechanism]
    released = sum(1 + draw(scale) >= tau for _ in range(n))  # a cohort of one unit
    limit = float(delta) / l0
    rate = released / n
    slack = 4 * math.sqrt(limit * (1 - limit) / n)  # 4 standard errors at the limit
    return {"mechanism": mechanism, "scale": str(scale), "max_cohorts_per_user": l0,
            "delta": str(delta), "threshold": tau, "trials": n, "released": released,
            "release_rate": rate, "delta_per_cohort": limit,
            "exact_release_probability": _exact_release(mechanism, scale, tau),
            "ok": rate <= limit + slack}


def _policy_run() -> dict[str, Any]:
    mechanism, scale, l0, delta = POLICY_RUN
    tau = release_threshold(mechanism, scale, l0, delta)
    exact = _exact_release(mechanism, scale, tau)
    with localcontext() as ctx:
        ctx.prec = 60
        one_lower = l0 * tail_bound(mechanism, scale, tau - 2)  # τ - 1 would not do: minimality
    limit = Decimal(delta.numerator) / delta.denominator
    return {"mechanism": mechanism, "scale": str(scale), "max_cohorts_per_user": l0,
            "delta": str(delta), "threshold": tau, "exact_release_probability": exact,
            "delta_per_cohort": float(delta) / l0, "ok": exact * l0 <= float(delta) and one_lower > limit}


def run(samples: int, jobs: int | None = None) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        sampler_futures = [pool.submit(_sampler_run, s, scale, samples) for s, scale in SAMPLER_RUNS]
        release_futures = [pool.submit(_release_run, *args, samples) for args in RELEASE_RUNS]
        samplers = [f.result() for f in sampler_futures]
        releases = [f.result() for f in release_futures]
    policy = _policy_run()
    ok = all(r["ok"] for r in samplers + releases) and policy["ok"]
    return {"samples_per_run": samples, "alpha": ALPHA, "variance_tolerance": variance_tolerance(samples),
            "samplers": samplers, "private_cohort_release": releases,
            "policy_threshold": policy, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dp_calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--samples", type=int, default=200_000, help="draws per run (default 200000)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    args = parser.parse_args(argv)
    report = run(args.samples, args.jobs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in report["samplers"]:
            print(f"{r['sampler']:<18} scale {r['scale']:>5}: p_value {r['p_value']:.4f}, "
                  f"variance_ratio {r['variance_ratio']:.4f}  {'ok' if r['ok'] else 'FAIL'}")
        for r in report["private_cohort_release"]:
            print(f"one-unit cohort, {r['mechanism']} scale {r['scale']} L0 {r['max_cohorts_per_user']} "
                  f"delta {r['delta']}: tau {r['threshold']}, release rate {r['release_rate']:.2e} "
                  f"<= delta/L0 {r['delta_per_cohort']:.2e}  {'ok' if r['ok'] else 'FAIL'}")
        p = report["policy_threshold"]
        print(f"example policy (t {p['scale']}, L0 {p['max_cohorts_per_user']}, delta {p['delta']}): "
              f"tau {p['threshold']}, exact release probability {p['exact_release_probability']:.3e}  "
              f"{'ok' if p['ok'] else 'FAIL'}")
        print("calibration: " + ("ok" if report["ok"] else "FAILED"))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
