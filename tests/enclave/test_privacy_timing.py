"""Results leave at a time that depends only on the public shape of the query."""

from __future__ import annotations

import os

import numpy as np
import pytest

from enclave.engine import release_timing
from enclave.engine.analyses import run_query
from enclave.engine.columns import ColumnarTable
from enclave.requests.authorization import authorize
from enclave.requests.session import Session
from protocol.errors import InvalidInput
from protocol.policy import parse_policy
from tests.conftest import EXAMPLE_POLICY, ZeroNoise
from tests.support.enclave_harness import EnclaveHarness, digests


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


def test_beyond_the_reference_rows_the_deadline_grows_faster_than_the_rows() -> None:
    """Per declared row the work grows with the rows (n log n sorts, caches), so the model does:
    linear up to REFERENCE_ROWS, then GROWTH_PER_DOUBLING more per row for each doubling."""
    deadline, ref = release_timing.release_deadline, release_timing.REFERENCE_ROWS
    per_row = release_timing.PER_ROW_S_BY_KIND["aggregate"]
    assert deadline(0, ref, "aggregate") == pytest.approx(release_timing.BASE_S + per_row * ref)
    assert deadline(0, ref // 2, "aggregate") == pytest.approx(release_timing.BASE_S + per_row * ref / 2)
    doubled = release_timing.BASE_S + per_row * 2 * ref * (1 + release_timing.GROWTH_PER_DOUBLING)
    assert deadline(0, 2 * ref, "aggregate") == pytest.approx(doubled)
    # 100M rows per dataset (declared 200M): at least the 1.46x per row measured from 10M to 100M
    assert deadline(0, 10 * ref, "aggregate") > 1.46 * 10 * deadline(0, ref, "aggregate")


@pytest.mark.parametrize(("work", "released_at"), [(0.0, 1.0), (0.3, 1.0), (0.999, 1.0), (1.5, 2.0),
                                                   (3.2, 4.0)])
def test_release_waits_for_the_deadline_or_its_next_doubling(work: float, released_at: float) -> None:
    clock = FakeClock(work)
    started = clock()
    padded = release_timing.wait_for_release(started, 1.0, clock=clock, sleep=clock.sleep)
    assert padded == released_at and clock.now == pytest.approx(released_at)


# The example policy declares max_rows = 3,000,000 for each joined dataset.
DECLARED_ROWS = 6_000_000


def _run(plan, policy, tables, clock) -> None:
    run_query(plan, policy, tables, ZeroNoise(), os.urandom, join_key=bytes(32), clock=clock,
              sleep=clock.sleep)


def _tables_and_plan(policy, params, n: int = 80):
    ids = digests(n, 2)
    columns = {
        "impressions": {"id": ids, "campaign": np.zeros(n, np.uint16), "age_band": np.zeros(n, np.uint16),
                        "region": np.zeros(n, np.uint16)},
        "conversions": {"id": ids, "value": np.arange(n, dtype=np.int64)},
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
    _run(plan, policy, tables, clock)
    # 8 cohorts x 3 statistics = 24 cells; the policy's row limits, not the 160 uploaded rows.
    assert clock.now == pytest.approx(release_timing.release_deadline(24, DECLARED_ROWS, "aggregate"))


@pytest.mark.parametrize("n", [1, 80, 5_000])
def test_the_deadline_is_the_same_for_any_row_count_below_max_rows(n: int) -> None:
    # The deadline is a worst-case model of the policy's shape: a party cannot move it (nor
    # read anything into it) by uploading more, fewer or crafted rows.
    policy = parse_policy(EXAMPLE_POLICY.read_bytes())
    tables, plan = _tables_and_plan(policy, {"group_by": ["impressions.campaign"],
                                             "metric": "conversions.value"}, n)
    clock = FakeClock()
    _run(plan, policy, tables, clock)
    assert clock.now == pytest.approx(release_timing.release_deadline(24, DECLARED_ROWS, "aggregate"))


def test_the_deadline_follows_the_declared_max_rows() -> None:
    text = EXAMPLE_POLICY.read_bytes()
    small = parse_policy(text.replace(b"max_rows = 3_000_000", b"max_rows = 1_000"))
    tables, plan = _tables_and_plan(small, {"group_by": ["impressions.campaign"],
                                            "metric": "conversions.value"})
    clock = FakeClock()
    _run(plan, small, tables, clock)
    assert clock.now == pytest.approx(release_timing.release_deadline(24, 2_000, "aggregate"))
    deadline = release_timing.release_deadline
    assert deadline(24, 2_000, "aggregate") < deadline(24, DECLARED_ROWS, "aggregate")


def test_an_error_after_the_charge_is_also_padded(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = parse_policy(EXAMPLE_POLICY.read_bytes())
    params = {"group_by": ["impressions.campaign"], "metric": "conversions.value"}
    tables, plan = _tables_and_plan(policy, params)

    def fail(*args, **kwargs):
        raise InvalidInput("boom")

    monkeypatch.setattr("enclave.engine.analysis_counts.aggregate", fail)
    clock = FakeClock()
    with pytest.raises(InvalidInput):
        _run(plan, policy, tables, clock)
    assert clock.now == pytest.approx(release_timing.release_deadline(24, DECLARED_ROWS, "aggregate"))


class _SlowNoise:
    """No noise; drawing it takes ``work`` seconds of the fake clock (the query's own work)."""

    mechanism = "none (test)"

    def __init__(self, clock: FakeClock, work: float) -> None:
        self.clock, self.work = clock, work

    def laplace(self, scale, count: int) -> list[int]:
        self.clock.now += self.work
        return [0] * count


def test_the_release_deadline_is_measured_on_the_sessions_clock(policy_bytes: bytes, parties) -> None:
    clock = FakeClock()
    clock.now = 1_800_000_000.0  # wall-clock seconds: the session's clock also stamps receipts
    deadline = release_timing.release_deadline(1, DECLARED_ROWS, "overlap")  # no group_by: 1 cell
    noise = _SlowNoise(clock, work=deadline / 4)
    enclave = EnclaveHarness(policy_bytes, noise, clock=clock)
    # The harness never sleeps; this session sleeps on the fake clock, and nothing else does.
    enclave.session = Session(mode="simulation", quote=lambda report_data: None, sealing_key=b"k" * 32,
                              load_sealed=lambda policy_hash: None, persist=lambda policy_hash, blob: None,
                              noise=noise, clock=clock, sleep=clock.sleep,
                              random_bytes=os.urandom)
    enclave.ready = enclave.call("init", {"policy": policy_bytes})
    ids = digests(80, 5)
    now = int(clock.now)  # upload headers are stamped on the party's clock, checked on the session's
    enclave.upload(parties["publisher"], "impressions", {
        "id": ids, **{name: np.zeros(80, np.uint16) for name in ("campaign", "age_band", "region")}},
        now=now)
    enclave.upload(parties["advertiser"], "conversions", {"id": ids, "value": np.arange(80, dtype=np.int64)},
                   now=now)
    clock.slept.clear()
    enclave.call("query", enclave.signed_query(parties["advertiser"], "overlap", {"group_by": []},
                                               issued_at=int(clock.now)))
    # The work took a quarter of the deadline on the session's clock; sleep was asked for the rest.
    assert clock.slept == [pytest.approx(deadline - deadline / 4, abs=1e-6)]  # float seconds near 1.8e9
