"""Attributed plans (a time window), time buckets and time filters against a plaintext reference.

Timestamps are added to the example policy for this module. The data never binds the bounds
(each person converts at most 3 times, in at most 3 weeks), so with no noise every cell must
equal the reference, which is written with plain Python loops, independently of the engine.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from cleanroom.result_open import open_result
from protocol.crypto import QUERY_LABEL
from protocol.errors import PolicyViolation
from protocol.wire import pack_document
from tests.conftest import EXAMPLE_POLICY, ZeroNoise, bind_policy
from tests.support.enclave_harness import EnclaveHarness, digests

START = int(dt.datetime(2026, 9, 1, tzinfo=dt.UTC).timestamp())
END = int(dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp())
DAY = 86_400
TIMESTAMP = ('\n[[datasets.timestamps]]\nname = "ts"\nmin = "2026-09-01"\n'
             'max = "2026-12-31T23:59:59Z"\nresolution = "minute"\n')


def _policy(parties: Any) -> bytes:
    text = EXAMPLE_POLICY.read_text()
    text = text.replace('values = ["north", "south", "east", "west", "central"]\n',
                        'values = ["north", "south", "east", "west", "central"]\n' + TIMESTAMP)
    text = text.replace('max = "500"                    # each row is clamped to [0, 500] before summing\n',
                        'max = "500"\n' + TIMESTAMP)
    text = text.replace('group_by = ["campaign", "age_band", "region"]',
                        'group_by = ["campaign", "age_band", "ts"]')
    text = text.replace('metrics = { value = ["sum", "avg"] }', 'metrics = { value = ["sum", "avg"] }\n'
                        'group_by = ["ts"]\nfilter_by = ["ts"]\nmax_window_days = 14')
    text = text.replace('filter_by = ["campaign", "age_band", "region"]',
                        'filter_by = ["campaign", "region", "ts"]')
    # Lower release gates so that most cells of 400 people are released and compared.
    text = text.replace("min_cohort_size = 50 ", "min_cohort_size = 5 ")
    text = text.replace("min_persons = 50", "min_persons = 5")
    return bind_policy(parties, text)


def _data() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """400 people: 2-4 impressions each over October, 0-3 conversions a few days later."""
    rng = np.random.default_rng(3)
    ids = digests(400, 5)
    imp_person, imp_campaign, imp_ts = [], [], []
    conv_person, conv_ts, conv_value = [], [], []
    for p in range(400):
        for _ in range(2 + p % 3):
            imp_person.append(p)
            imp_campaign.append(int(rng.integers(0, 3)))
            imp_ts.append(START + 30 * DAY + int(rng.integers(0, 30 * DAY)))
        for _ in range(p % 4):
            conv_person.append(p)
            conv_ts.append(START + 33 * DAY + int(rng.integers(0, 30 * DAY)))
            conv_value.append(int(rng.integers(100, 90_000)))
    n = len(imp_person)
    impressions = {"id": ids[imp_person], "campaign": np.array(imp_campaign, dtype=np.uint16),
                   "age_band": np.zeros(n, dtype=np.uint16), "region": np.zeros(n, dtype=np.uint16),
                   "ts": np.array(imp_ts, dtype=np.int64)}
    conversions = {"id": ids[conv_person], "value": np.array(conv_value, dtype=np.int64),
                   "ts": np.array(conv_ts, dtype=np.int64)}
    return impressions, conversions


@pytest.fixture(scope="module")
def enclave(parties: Any) -> EnclaveHarness:
    harness = EnclaveHarness(_policy(parties), ZeroNoise())
    impressions, conversions = _data()
    harness.upload(parties["publisher"], "impressions", impressions)
    harness.upload(parties["advertiser"], "conversions", conversions)
    return harness


def _run(enclave: EnclaveHarness, keys: Any, plan: dict[str, Any]) -> Any:
    request = pack_document("query_request", {
        "collaboration_id": enclave.policy.collaboration_id, "policy_hash": enclave.policy.hash,
        "party": keys.party_id, "analysis": "", "params": {}, "nonce": os.urandom(16),
        "issued_at": int(time.time()), "plan": plan})
    reply = enclave.call("query", {"request": request, "signature": keys.sign(QUERY_LABEL, request)})
    return open_result(reply["results"][keys.party_id], keys=keys, policy=enclave.policy,
                       sig_pub=enclave.ready["sig_pub"], query_id=reply["query_id"])


def _week_start(seconds: int) -> str:
    day = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).date()
    return (day - dt.timedelta(days=day.weekday())).isoformat()


def _reference(model: str, days: int) -> dict[tuple[str, str], list[int]]:
    campaigns = ["spring_sale", "summer_run", "trail_launch"]
    impressions, conversions = _data()
    by_person: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    rows = zip(map(bytes, impressions["id"]), impressions["campaign"], impressions["ts"], strict=True)
    for pid, c, t in rows:
        by_person[pid].append((int(t), int(c)))
    cells: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [set(), 0, 0])
    for pid, t, v in zip(map(bytes, conversions["id"]), conversions["ts"], conversions["value"], strict=True):
        candidates = [(ts, c) for ts, c in by_person[pid] if 0 <= int(t) - ts <= days * DAY]
        if not candidates:
            continue
        _, campaign = max(candidates) if model == "last_touch" else min(candidates)
        cell = cells[(campaigns[campaign], _week_start(int(t)))]
        cell[0].add(pid)
        cell[1] += 1
        cell[2] += min(int(v), 50_000)  # the metric's clamp, 500.00
    return {k: [len(v[0]), v[1], v[2]] for k, v in cells.items()}


@pytest.mark.parametrize("model", ["last_touch", "first_touch"])
def test_attribution_by_campaign_and_week_matches_the_reference(enclave: EnclaveHarness, parties: Any,
                                                                model: str) -> None:
    plan = {"v": 1, "datasets": ["impressions", "conversions"], "where": [],
            "group_by": ["impressions.campaign", {"column": "conversions.ts", "trunc": "week", "as": "week"}],
            "window": {"from": "impressions.ts", "to": "conversions.ts", "max_days": 7, "model": model},
            "select": [{"fn": "count_distinct", "arg": "person", "as": "converters"},
                       {"fn": "count", "arg": "conversions", "as": "conversions"},
                       {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
    policy = enclave.policy
    result = _run(enclave, parties["advertiser"], plan)
    released = {(r[0], r[1]): [r[2], r[3], int(r[4].replace(".", ""))] for r in result.body["rows"]}
    reference = {k: v for k, v in _reference(model, 7).items() if v[0] >= 5}
    assert released == reference and len(reference) >= 10
    assert result.body["columns"] == ["campaign", "week", "converters", "conversions", "revenue"]
    weeks = {r[1] for r in result.body["rows"]}
    assert all(dt.date.fromisoformat(w).weekday() == 0 for w in weeks)  # Mondays
    assert policy.dataset("conversions").timestamp("ts").resolution == 60


def test_time_filter_and_day_buckets(enclave: EnclaveHarness, parties: Any) -> None:
    cutoff = START + 45 * DAY
    plan = {"v": 1, "datasets": ["impressions", "conversions"],
            "where": [{"column": "conversions.ts", "op": "ge", "values": [cutoff]}],
            "group_by": [{"column": "conversions.ts", "trunc": "month", "as": "month"}],
            "select": [{"fn": "count", "arg": "conversions", "as": "conversions"}]}
    result = _run(enclave, parties["publisher"], plan)
    _, conversions = _data()
    months: dict[str, list[Any]] = defaultdict(lambda: [0, set()])
    for pid, t in zip(map(bytes, conversions["id"]), conversions["ts"], strict=True):
        if int(t) >= cutoff:  # every person here has impressions, so every conversion is matched
            month = months[dt.datetime.fromtimestamp(int(t), tz=dt.UTC).strftime("%Y-%m-01")]
            month[0] += 1
            month[1].add(pid)
    expected = {m: [c, len(people)] for m, (c, people) in months.items() if len(people) >= 5}
    assert {r[0]: r[1:] for r in result.body["rows"]} == expected and expected
    assert result.body["columns"] == ["month", "conversions", "persons"]
    assert len(result.body["rows"]) + result.body["privacy"]["suppressed_cohorts"] == 4  # Sep..Dec


@pytest.mark.parametrize(("change", "message"), [
    ({"window": {"from": "impressions.ts", "to": "conversions.ts", "max_days": 30, "model": "last_touch"}},
     "at most 14 days"),
    ({"window": {"from": "conversions.ts", "to": "impressions.ts", "max_days": 7, "model": "last_touch"},
      "select": [{"fn": "sum", "arg": "conversions.value", "as": "x"}]},
     "counts and sums the rows of impressions"),
    ({"group_by": [{"column": "impressions.ts", "trunc": "day", "as": "d"}, "impressions.region"]},
     "GROUP BY impressions.region"),
])
def test_out_of_rule_time_queries_are_refused(enclave: EnclaveHarness, parties: Any,
                                              change: dict[str, Any], message: str) -> None:
    plan = {"v": 1, "datasets": ["impressions", "conversions"], "where": [], "group_by": [],
            "select": [{"fn": "count_distinct", "arg": "person", "as": "n"}], **change}
    with pytest.raises(PolicyViolation, match=message):
        _run(enclave, parties["advertiser"], plan)


def test_a_window_whose_keys_could_overflow_is_refused_before_any_charge(parties: Any) -> None:
    """The key layout comes from the declared ranges and max_rows, never from the data."""
    from protocol.policy import parse_policy
    from protocol.query_plan import check_plan, parse_plan

    text = _policy(parties).decode().replace('min = "2026-09-01"', 'min = "1900-01-01"')
    text = text.replace('max = "2026-12-31T23:59:59Z"', 'max = "2400-01-01"')
    text = text.replace("max_rows = 3_000_000", "max_rows = 2_000_000_000")
    plan = parse_plan({"v": 1, "datasets": ["impressions", "conversions"], "where": [],
                       "group_by": ["impressions.campaign"],
                       "window": {"from": "impressions.ts", "to": "conversions.ts", "max_days": 7,
                                  "model": "last_touch"},
                       "select": [{"fn": "count", "arg": "conversions", "as": "n"}]})
    with pytest.raises(PolicyViolation, match="too wide for one attribution query"):
        check_plan(parse_policy(text.encode()), plan, "advertiser")
    check_plan(parse_policy(_policy(parties)), plan, "advertiser")  # the declared ranges fit


def test_conversion_lag_in_whole_days_after_the_credited_exposure(enclave: EnclaveHarness,
                                                                  parties: Any) -> None:
    plan = {"v": 1, "datasets": ["impressions", "conversions"], "where": [],
            "group_by": [{"column": "conversions.ts", "trunc": "lag_days", "as": "lag"}],
            "window": {"from": "impressions.ts", "to": "conversions.ts", "max_days": 7,
                       "model": "last_touch"},
            "select": [{"fn": "count", "arg": "conversions", "as": "conversions"}]}
    result = _run(enclave, parties["advertiser"], plan)
    impressions, conversions = _data()
    by_person: dict[bytes, list[int]] = defaultdict(list)
    for pid, t in zip(map(bytes, impressions["id"]), impressions["ts"], strict=True):
        by_person[pid].append(int(t))
    lags: dict[str, list[Any]] = defaultdict(lambda: [0, set()])
    for pid, t in zip(map(bytes, conversions["id"]), conversions["ts"], strict=True):
        candidates = [s for s in by_person[pid] if 0 <= int(t) - s <= 7 * DAY]
        if candidates:
            lag = lags[str((int(t) - max(candidates)) // DAY)]
            lag[0] += 1
            lag[1].add(pid)
    expected = {k: [n, len(people)] for k, (n, people) in lags.items() if len(people) >= 5}
    assert {r[0]: r[1:] for r in result.body["rows"]} == expected and len(expected) >= 5
    assert len(result.body["rows"]) + result.body["privacy"]["suppressed_cohorts"] == 8  # 0..7 days
