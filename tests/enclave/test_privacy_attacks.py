"""Attacks the privacy engine must withstand: a heavy unit, and differencing two queries.

These call ``run_query`` directly on in-memory tables (the session's framing and crypto are
covered elsewhere), with the enclave's real exact noise where noise is the point.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from enclave.engine import analysis_base
from enclave.engine.analyses import run_query
from enclave.engine.columns import ColumnarTable
from enclave.engine.noise_source import ExactNoise
from enclave.requests.authorization import authorize
from protocol.policy import Policy, parse_policy
from tests.conftest import EXAMPLE_POLICY, ZeroNoise
from tests.support.enclave_harness import digests

CLAMP = 50_000
L0, LINF = 4, 8


def _policy(*replacements: tuple[str, str]) -> Policy:
    text = EXAMPLE_POLICY.read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return parse_policy(text.encode())


def _tables(policy: Policy, impressions: dict[str, np.ndarray],
            conversions: dict[str, np.ndarray]) -> dict[str, ColumnarTable]:
    out = {}
    for name, columns in (("impressions", impressions), ("conversions", conversions)):
        dataset = policy.dataset(name)
        table = ColumnarTable(dataset.schema(), max_rows=dataset.max_rows)
        table.append(columns)
        out[name] = table
    return out


class _FakeClock:
    """Release padding without waiting: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _run(policy: Policy, tables, analysis: str, params: dict[str, Any], noise) -> Any:
    plan = authorize(policy, {"collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
                              "party": "advertiser", "analysis": analysis, "params": params})
    clock = _FakeClock()
    return run_query(plan, policy, tables, noise, os.urandom, join_key=bytes(32), clock=clock,
                     sleep=clock.sleep)


def _base(n: int = 300) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """n people on both sides, one impression and one conversion each, spread over cohorts."""
    ids = digests(n + 1, 5)  # the last id is the target / heavy unit, absent from the base
    people = np.arange(n)
    impressions = {"id": ids[people], "campaign": (people % 8).astype(np.uint16),
                   "age_band": (people % 6).astype(np.uint16), "region": (people % 5).astype(np.uint16)}
    conversions = {"id": ids[people], "value": ((people * 997) % 60_000).astype(np.int64)}
    return impressions, conversions, ids[n]


def _with(columns: dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([columns[k], extra[k]]) for k in columns}


def _cells(result, n_labels: int) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in result.rows:
        users, rows, total = row[n_labels], row[n_labels + 1], round(float(row[n_labels + 2]) * 100)
        out[tuple(row[:n_labels])] = [users, rows, total]
    return out


def test_a_unit_with_many_rows_changes_each_statistic_by_at_most_its_sensitivity() -> None:
    policy = _policy(("min_cohort_size = 50", "min_cohort_size = 1"))
    impressions, conversions, heavy = _base()
    rng = np.random.default_rng(3)
    n_imp, n_conv = 5_000, 3_000  # one person everywhere, with huge order values
    heavy_impressions = {"id": np.repeat(heavy[None, :], n_imp, axis=0),
                         "campaign": rng.integers(0, 8, n_imp).astype(np.uint16),
                         "age_band": rng.integers(0, 6, n_imp).astype(np.uint16),
                         "region": rng.integers(0, 5, n_imp).astype(np.uint16)}
    heavy_conversions = {"id": np.repeat(heavy[None, :], n_conv, axis=0),
                         "value": np.full(n_conv, 10**9, dtype=np.int64)}
    params = {"group_by": ["impressions.campaign", "impressions.age_band"], "metric": "conversions.value"}
    without = _run(policy, _tables(policy, impressions, conversions), "conversions_by_segment", params,
                   ZeroNoise())
    with_heavy = _run(policy, _tables(policy, _with(impressions, heavy_impressions),
                                      _with(conversions, heavy_conversions)),
                      "conversions_by_segment", params, ZeroNoise())
    before, after = _cells(without, 2), _cells(with_heavy, 2)
    keys = set(before) | set(after)
    diffs = [[a - b for a, b in zip(after[key], before[key], strict=True)] for key in keys]
    touched = [d for d in diffs if any(d)]
    assert 1 <= len(touched) <= L0  # at most L0 cohorts, though the unit is in all 48
    for users, rows, total in touched:
        assert users == 1 and 1 <= rows <= LINF and 0 <= total <= LINF * CLAMP
    assert sum(d[1] for d in touched) <= L0 * LINF
    assert sum(d[2] for d in touched) <= L0 * LINF * CLAMP
    # The released metadata derives exactly these bounds.
    assert with_heavy.privacy["sensitivity"] == {"users": L0, "rows": L0 * LINF, "sum": L0 * LINF * CLAMP}


def test_heavy_unit_in_reach_frequency_stays_in_one_bucket_per_cohort() -> None:
    policy = _policy(("min_cohort_size = 50", "min_cohort_size = 1"),
                     ('cohort_keys = "private"', 'cohort_keys = "public"'))
    impressions, conversions, heavy = _base()
    heavy_impressions = {"id": np.repeat(heavy[None, :], 4_000, axis=0),
                         "campaign": (np.arange(4_000) % 8).astype(np.uint16),
                         "age_band": np.zeros(4_000, np.uint16), "region": np.zeros(4_000, np.uint16)}
    heavy_conversions = {"id": heavy[None, :], "value": np.array([1], dtype=np.int64)}
    params = {"group_by": ["impressions.campaign"]}
    before = _run(policy, _tables(policy, impressions, conversions), "reach", params, ZeroNoise())
    after = _run(policy, _tables(policy, _with(impressions, heavy_impressions),
                                 _with(conversions, heavy_conversions)), "reach", params, ZeroNoise())
    rows_before = {row[0]: row[1:] for row in before.rows}
    changed = [(key, [a - b for a, b in zip(row, rows_before[key], strict=True)])
               for key, row in ((r[0], r[1:]) for r in after.rows) if row != rows_before[key]]
    assert len(changed) == L0  # in 8 campaigns, counted in exactly L0 of them
    for _, diff in changed:  # reach +1 and exactly one bucket +1: the capped "5 or more"
        assert diff == [1, 0, 0, 0, 0, 1]


def test_differencing_attack_is_drowned_in_noise() -> None:
    """Query a sum with and without the target: without noise the difference is the target's
    value (what thresholds alone allow); with noise the estimate is useless."""
    policy = _policy()
    impressions, conversions, target = _base()
    everyone = np.zeros(len(impressions["id"]), dtype=np.uint16)
    impressions["campaign"] = everyone  # one cohort of 300: spring_sale
    target_value = 42_000  # 420.00
    with_target = _tables(policy, _with(impressions, {"id": target[None, :], "campaign": everyone[:1],
                                                     "age_band": everyone[:1], "region": everyone[:1]}),
                          _with(conversions, {"id": target[None, :],
                                              "value": np.array([target_value], np.int64)}))
    without_target = _tables(policy, impressions, conversions)
    params = {"group_by": ["impressions.campaign"], "metric": "conversions.value"}

    def total(tables, noise) -> int:
        row = next(r for r in _run(policy, tables, "conversions_by_segment", params, noise).rows
                   if r[0] == "spring_sale")
        return round(float(row[3]) * 100)

    # Thresholds alone: both cohorts pass min_cohort_size, and the difference is exact.
    assert total(with_target, ZeroNoise()) - total(without_target, ZeroNoise()) == target_value
    errors = [abs(total(with_target, ExactNoise()) - total(without_target, ExactNoise()) - target_value)
              for _ in range(40)]
    # The sum's noise scale is L0·Linf·C/(ε/3) = 8,000,000 cents: the target's 42,000 is lost.
    assert statistics.median(errors) > 50 * target_value


def test_membership_guess_is_no_better_than_epsilon_allows() -> None:
    """One overlap count with or without the target; the best test (answer ≥ n) may win with
    probability at most e^ε/(1+e^ε) under ε-DP (here ε = 0.2: 0.5498)."""
    policy = _policy()
    impressions, conversions, target = _base(100)
    zero = np.zeros(1, np.uint16)
    worlds = {
        True: _tables(policy, _with(impressions, {"id": target[None, :], "campaign": zero, "age_band": zero,
                                                  "region": zero}),
                      _with(conversions, {"id": target[None, :], "value": np.array([1], np.int64)})),
        False: _tables(policy, impressions, conversions),
    }
    trials, correct = 300, 0
    noise = ExactNoise()
    for present, tables in worlds.items():
        for _ in range(trials):
            answer = _run(policy, tables, "overlap", {"group_by": []}, noise).rows[0][0]
            correct += (answer >= 101) == present
    accuracy = correct / (2 * trials)
    bound = np.exp(0.2) / (1 + np.exp(0.2))
    assert accuracy <= bound + 5 * np.sqrt(bound * (1 - bound) / (2 * trials))
    assert _run(policy, worlds[True], "overlap", {"group_by": []}, ZeroNoise()).rows == [[101]]


@pytest.mark.parametrize("mode", ["pure", "zcdp"])
def test_noise_is_drawn_before_the_data_is_read(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The draws are made for every declared cohort, before the join runs."""
    replacements = [] if mode == "pure" else [
        ('mode = "pure" ', 'mode = "zcdp" '), ('epsilon_per_query_max = "1.0"', 'rho_per_query_max = "0.05"'),
        ('epsilon = "0.2"', 'rho = "0.01"'), ('epsilon = "0.6"', 'rho = "0.03"'),
        ('epsilon = "0.4"', 'rho = "0.02"'), ('epsilon = "0.1"', 'rho = "0.005"'),
        ('impressions = "6.0"', 'impressions = "0.5"'), ('conversions = "6.0"', 'conversions = "0.5"')]
    policy = _policy(*replacements)
    impressions, conversions, _ = _base(60)
    tables = _tables(policy, impressions, conversions)
    events: list[str] = []

    class Recording(ZeroNoise):
        def laplace(self, scale, count):
            events.append(f"noise {count}")
            return super().laplace(scale, count)

        def gaussian(self, sigma2, count):
            events.append(f"noise {count}")
            return [0] * count

    original = analysis_base.match_users
    monkeypatch.setattr(analysis_base, "match_users", lambda *a: (events.append("join"), original(*a))[1])
    _run(policy, tables, "conversions_by_segment",
         {"group_by": ["impressions.campaign", "impressions.region"], "metric": "conversions.value"},
         Recording())
    assert events == ["noise 40", "noise 40", "noise 40", "join"]
