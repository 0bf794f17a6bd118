"""Results leave at a time that depends only on the public shape of the query."""

from __future__ import annotations

import os

import numpy as np
import pytest

from enclave.engine import release_timing
from enclave.engine.analyses import run_query
from enclave.engine.columns import ColumnarTable
from enclave.requests.authorization import authorize
from protocol.errors import InvalidInput
from protocol.policy import parse_policy
from tests.conftest import EXAMPLE_POLICY, ZeroNoise
from tests.support.enclave_harness import digests


class FakeClock:
    def __init__(self, work: float = 0.0) -> None:
        self.now = 0.0
        self.work = work  # seconds the query itself takes, charged on the first clock read after start
        self.reads = 0
        self.slept: list[float] = []

    def __call__(self) -> float:
        self.reads += 1
        if self.reads == 2:
            self.now += self.work
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_deadline_grows_with_public_shape_only() -> None:
    base = release_timing.release_deadline(0)
    assert base == release_timing.BASE_S
    assert release_timing.release_deadline(48) > base
    assert release_timing.release_deadline(48, 10_000) > release_timing.release_deadline(48)
    with pytest.raises(ValueError):
        release_timing.release_deadline(-1)


@pytest.mark.parametrize(("work", "released_at"), [(0.0, 1.0), (0.3, 1.0), (0.999, 1.0), (1.5, 2.0),
                                                   (3.2, 4.0)])
def test_release_waits_for_the_deadline_or_its_next_doubling(work: float, released_at: float) -> None:
    clock = FakeClock(work)
    started = clock()
    padded = release_timing.wait_for_release(started, 1.0, clock=clock, sleep=clock.sleep)
    assert padded == released_at and clock.now == pytest.approx(released_at)


def _tables_and_plan(policy, params):
    ids = digests(80, 2)
    columns = {
        "impressions": {"id": ids, "campaign": np.zeros(80, np.uint16), "age_band": np.zeros(80, np.uint16),
                        "region": np.zeros(80, np.uint16)},
        "conversions": {"id": ids, "value": np.arange(80, dtype=np.int64)},
    }
    tables = {}
    for name, cols in columns.items():
        dataset = policy.dataset(name)
        tables[name] = ColumnarTable(dataset.schema(), max_rows=dataset.max_rows)
        tables[name].append(cols)
    plan = authorize(policy, {"collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
                              "party": "advertiser", "analysis": "conversions_by_segment", "params": params})
    return tables, plan


def test_run_query_is_padded_to_the_shape_deadline() -> None:
    policy = parse_policy(EXAMPLE_POLICY.read_bytes())
    params = {"group_by": ["impressions.campaign"], "metric": "conversions.value"}
    tables, plan = _tables_and_plan(policy, params)
    clock = FakeClock()
    run_query(plan, policy, tables, ZeroNoise(), os.urandom, clock=clock, sleep=clock.sleep)
    # 8 cohorts x 3 statistics = 24 cells, 160 uploaded rows.
    assert clock.now == pytest.approx(release_timing.release_deadline(24, 160))


def test_an_error_after_the_charge_is_also_padded(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = parse_policy(EXAMPLE_POLICY.read_bytes())
    params = {"group_by": ["impressions.campaign"], "metric": "conversions.value"}
    tables, plan = _tables_and_plan(policy, params)

    def fail(*args, **kwargs):
        raise InvalidInput("boom")

    monkeypatch.setattr("enclave.engine.compute.aggregate", fail)
    clock = FakeClock()
    with pytest.raises(InvalidInput):
        run_query(plan, policy, tables, ZeroNoise(), os.urandom, clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(release_timing.release_deadline(24, 160))
