"""Each analysis end to end through the enclave's frames, against an independent plaintext reference.

Noise is disabled (``ZeroNoise``) so released numbers must equal the reference exactly. The data
stays inside the policy's contribution bounds (≤ 3 cohorts and ≤ 8 rows per person and cohort),
so bounding drops nothing and the reference needs no sampling. The reference is written with
plain Python sets and dicts over the raw rows, sharing no code with ``enclave/``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from protocol.errors import PolicyViolation
from protocol.privacy.statistics import statistics
from tests.conftest import EXAMPLE_POLICY, ZeroNoise, bind_policy
from tests.support.enclave_harness import EnclaveHarness, digests

N_PEOPLE = 1500
CAMPAIGNS = ["spring_sale", "summer_run", "trail_launch", "back_to_school", "winter_boots",
             "holiday_gift", "clearance", "loyalty"]
CLAMP = 50_000  # 500.00 in cents


class ZeroGaussianNoise(ZeroNoise):
    """ZeroNoise that also answers the zCDP mode's Gaussian draws (and records σ²)."""

    def __init__(self) -> None:
        super().__init__()
        self.sigma2: list[Fraction] = []

    def gaussian(self, sigma2: Fraction, count: int) -> list[int]:
        self.sigma2.append(sigma2)
        return [0] * count


def people_data() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Publisher saw people 0..999, advertiser converted 500..1499: 500 matched.

    Everyone seen is in spring_sale; every 4th person also in summer_run, every 20th also in
    trail_launch; the other campaigns are declared but never observed. A person has 1 to 8
    impressions per campaign and 1 to 3 conversions, some above the 500.00 clamp.
    """
    rng = np.random.default_rng(7)
    ids = digests(N_PEOPLE, 11)
    person, campaign = [], []
    for p in range(1000):
        for c, present in ((0, True), (1, p % 4 == 0), (2, p % 20 == 0)):
            if present:
                reps = 1 + (p * 7 + c) % 8
                person += [p] * reps
                campaign += [c] * reps
    person_a = np.array(person)
    age = (person_a % 6).astype(np.uint16)
    region = ((person_a // 6) % 5).astype(np.uint16)
    impressions = {"id": ids[person_a], "campaign": np.array(campaign, dtype=np.uint16),
                   "age_band": age, "region": region}
    conv_person = np.repeat(np.arange(500, N_PEOPLE), 1 + np.arange(500, N_PEOPLE) % 3)
    value = rng.integers(0, 80_000, len(conv_person)).astype(np.int64)
    conversions = {"id": ids[conv_person], "value": value}
    return impressions, conversions


def _rows_by_person(table: dict[str, np.ndarray]) -> dict[bytes, list[int]]:
    out: dict[bytes, list[int]] = defaultdict(list)
    for i, pid in enumerate(map(bytes, table["id"])):
        out[pid].append(i)
    return out


def _policy(parties, *replacements: tuple[str, str]) -> bytes:
    text = EXAMPLE_POLICY.read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return bind_policy(parties, text)


def _loaded(parties, policy_bytes: bytes, noise=None) -> EnclaveHarness:
    enclave = EnclaveHarness(policy_bytes, noise or ZeroNoise())
    impressions, conversions = people_data()
    enclave.upload(parties["publisher"], "impressions", impressions)
    enclave.upload(parties["advertiser"], "conversions", conversions)
    return enclave


@pytest.fixture(scope="module")
def example(parties) -> EnclaveHarness:
    return _loaded(parties, bind_policy(parties))


@pytest.fixture(scope="module")
def public_reach(parties) -> EnclaveHarness:
    return _loaded(parties, _policy(parties, ('cohort_keys = "private"', 'cohort_keys = "public"')))


# ------------------------------------------------------------------------------ reach_frequency


def _reach_reference(max_frequency: int) -> dict[int, list[int]]:
    impressions, conversions = people_data()
    converters = set(map(bytes, conversions["id"]))
    freq: dict[tuple[bytes, int], int] = defaultdict(int)
    for pid, c in zip(map(bytes, impressions["id"]), impressions["campaign"], strict=True):
        if pid in converters:
            freq[(pid, int(c))] += 1
    out: dict[int, list[int]] = defaultdict(lambda: [0] * max_frequency)
    for (_, c), f in freq.items():
        out[c][min(f, max_frequency) - 1] += 1
    return out


def test_reach_frequency_matches_reference(public_reach: EnclaveHarness, parties) -> None:
    result = public_reach.query(parties["advertiser"], "reach", {"group_by": ["impressions.campaign"]})
    ref = _reach_reference(5)
    expected = [[CAMPAIGNS[c], sum(h), *h] for c, h in sorted(ref.items()) if sum(h) >= 50]
    assert [row[0] for row in expected] == ["spring_sale", "summer_run"]  # trail_launch: 25 < 50
    assert result.rows == expected
    assert result.columns == ["campaign", "reach", "frequency_1", "frequency_2", "frequency_3",
                              "frequency_4", "frequency_5_plus"]
    assert result.privacy["sensitivity"] == {"reach": 4, "frequency": 4}
    assert result.privacy["suppressed_cohorts"] == 6 and result.privacy["threshold"] is None


def test_reach_without_group_by_is_the_overlap(public_reach: EnclaveHarness, parties) -> None:
    result = public_reach.query(parties["publisher"], "reach", {"group_by": []})
    assert result.rows[0][0] == 500
    assert result.privacy["sensitivity"] == {"reach": 1, "frequency": 1}


def test_private_cohorts_need_the_noisy_threshold(example: EnclaveHarness, parties) -> None:
    result = example.query(parties["advertiser"], "reach", {"group_by": ["impressions.campaign"]})
    privacy = result.privacy
    # t = L0 / (ε/2) = 4 / 0.2 = 20: τ = 1 + ⌈20·ln(4 / (1e-9·(1 + e^-0.05)))⌉ = 430.
    assert privacy["threshold"] == 430 and privacy["cohort_keys"] == "private"
    assert privacy["delta_charged"] == "1/1000000000"
    # Only spring_sale (500 units) passes τ; summer_run (125) passes the minimum size but not τ,
    # and the declared but unobserved campaigns (0 units) are never released.
    assert [row[0] for row in result.rows] == ["spring_sale"]
    assert privacy["suppressed_cohorts"] == 7


# ---------------------------------------------------------------------------------- attribution


def _attribution_reference() -> dict[int, tuple[int, int, int, int, int, int]]:
    impressions, conversions = people_data()
    conv_rows = _rows_by_person(conversions)
    conversions_of = {p: len(rows) for p, rows in conv_rows.items()}
    value_of = {p: sum(min(max(int(conversions["value"][i]), 0), CLAMP) for i in rows)
                for p, rows in conv_rows.items()}
    exposed: dict[int, set[bytes]] = defaultdict(set)
    for pid, c in zip(map(bytes, impressions["id"]), impressions["campaign"], strict=True):
        if pid in conv_rows:
            exposed[int(c)].add(pid)
    total = (len(conv_rows), sum(conversions_of.values()), sum(value_of.values()))
    out = {}
    for c in range(len(CAMPAIGNS)):
        e = (len(exposed[c]), sum(conversions_of[p] for p in exposed[c]),
             sum(value_of[p] for p in exposed[c]))
        out[c] = (*e, total[0] - e[0], total[1] - e[1], total[2] - e[2])
    return out


def _cents(value: int) -> str:
    return str(Decimal(value).scaleb(-2))


def test_attribution_matches_reference(example: EnclaveHarness, parties) -> None:
    params = {"group_by": ["impressions.campaign"], "metric": "conversions.value"}
    result = example.query(parties["advertiser"], "campaign_attribution", params)
    expected = []
    for c, (ec, econv, evalue, uc, uconv, uvalue) in sorted(_attribution_reference().items()):
        if ec >= 50 and uc >= 50:
            expected.append([CAMPAIGNS[c], ec, econv, _cents(evalue), uc, uconv, _cents(uvalue)])
    assert [row[0] for row in expected] == ["spring_sale", "summer_run"]
    assert result.rows == expected
    assert result.columns == ["campaign", "exposed_converters", "exposed_conversions",
                              "exposed_value_sum", "unexposed_converters", "unexposed_conversions",
                              "unexposed_value_sum"]
    # A converter touches ≤ L0 exposed cells plus the total: (4 + 1) cells.
    assert result.privacy["sensitivity"] == {"converters": 5, "conversions": 40, "value": 5 * 8 * CLAMP}
    assert result.privacy["clamps"] == {"conversions.value": ["0", "500"]}


def test_attribution_needs_an_exposure_and_a_metric(example: EnclaveHarness, parties) -> None:
    with pytest.raises(PolicyViolation):
        example.call("query", example.signed_query(parties["advertiser"], "campaign_attribution",
                                                   {"group_by": [], "metric": "conversions.value"}))
    with pytest.raises(PolicyViolation):  # the policy lets only the advertiser run it
        example.call("query", example.signed_query(parties["publisher"], "campaign_attribution", {
            "group_by": ["impressions.campaign"], "metric": "conversions.value"}))


# ---------------------------------------------------------------------------- cohort_activation


def _activation_reference(campaign: int, region: int | None = None) -> list[bytes]:
    impressions, conversions = people_data()
    advertiser_ids = set(map(bytes, conversions["id"]))
    members = {pid for pid, c, r in zip(map(bytes, impressions["id"]), impressions["campaign"],
                                        impressions["region"], strict=True)
               if c == campaign and (region is None or r == region)}
    return sorted(members & advertiser_ids)


def test_activation_releases_the_recipients_own_ids_of_the_cohort(example: EnclaveHarness,
                                                                   parties) -> None:
    result = example.query(parties["advertiser"], "activate_converters",
                           {"cohort": {"impressions.campaign": "summer_run"}})
    expected = _activation_reference(1)
    assert len(expected) == 125
    assert result.columns == ["id_sha256"] and result.rows == [[pid] for pid in expected]
    _, conversions = people_data()
    assert {row[0] for row in result.rows} <= set(map(bytes, conversions["id"]))  # own ids only
    assert result.privacy["noisy_cohort_size"] == 125 and result.privacy["identifiers_sampled"] is False
    assert result.privacy["sensitivity"] == {"cohort_size": 1}
    assert result.body["params"] == {"group_by": [], "cohort": {"impressions.campaign": "summer_run"}}


def test_activation_with_two_columns(example: EnclaveHarness, parties) -> None:
    result = example.query(parties["advertiser"], "activate_converters",
                           {"cohort": {"impressions.campaign": "spring_sale", "impressions.region": "north"}})
    expected = _activation_reference(0, 0)
    assert len(expected) >= 50 and result.rows == [[pid] for pid in expected]


def test_activation_below_minimum_releases_nothing_and_keeps_its_size(example: EnclaveHarness,
                                                                     parties) -> None:
    def encrypted(cohort: str) -> bytes:  # the result as the host relays it
        reply = example.call("query", example.signed_query(
            parties["advertiser"], "activate_converters", {"cohort": {"impressions.campaign": cohort}}))
        return reply["results"]["advertiser"]

    small = example.query(parties["advertiser"], "activate_converters",
                          {"cohort": {"impressions.campaign": "trail_launch"}})  # 25 people < 50
    assert small.rows == [] and small.privacy["suppressed_cohorts"] == 1
    # The host sees only ciphertext sizes: they must not reveal how many ids matched (only the
    # noisy size's own msgpack width, a few bytes, may differ).
    assert abs(len(encrypted("spring_sale")) - len(encrypted("trail_launch"))) <= 8


@pytest.mark.parametrize(("party", "params"), [
    ("publisher", {"cohort": {"impressions.campaign": "spring_sale"}}),  # not a requester
    ("advertiser", {"cohort": {"impressions.campaign": "no_such_campaign"}}),
    ("advertiser", {"cohort": {"impressions.age_band": "18-24"}}),  # column not allowed
    ("advertiser", {"group_by": ["impressions.campaign"]}),
])
def test_activation_refusals(example: EnclaveHarness, parties, party: str, params: dict) -> None:
    with pytest.raises(PolicyViolation):
        example.call("query", example.signed_query(parties[party], "activate_converters", params))


def test_cohort_param_is_only_for_activation(example: EnclaveHarness, parties) -> None:
    with pytest.raises(PolicyViolation):
        example.call("query", example.signed_query(parties["advertiser"], "overlap", {
            "group_by": [], "cohort": {"impressions.campaign": "spring_sale"}}))


# ---------------------------------------------------------------------------------- zCDP mode

ZCDP = (('mode = "pure" ', 'mode = "zcdp" '),
        ('epsilon_per_query_max = "1.0"', 'rho_per_query_max = "0.05"'),
        ('epsilon = "0.2"', 'rho = "0.01"'), ('epsilon = "0.6"', 'rho = "0.03"'),
        ('epsilon = "0.4"', 'rho = "0.02"'), ('epsilon = "0.1"', 'rho = "0.005"'),
        ('impressions = "6.0"', 'impressions = "0.5"'), ('conversions = "6.0"', 'conversions = "0.5"'))


def test_zcdp_aggregate_uses_the_discrete_gaussian(parties) -> None:
    noise = ZeroGaussianNoise()
    enclave = _loaded(parties, _policy(parties, *ZCDP), noise)
    params = {"group_by": ["impressions.campaign"], "metric": "conversions.value"}
    result = enclave.query(parties["advertiser"], "conversions_by_segment", params)
    privacy = result.privacy
    assert privacy["mechanism"] == "discrete_gaussian" and privacy["accounting"] == "zcdp"
    assert privacy["rho_charged"] == "3/100"
    # Bun–Steinke: 0.03 + 2·√(0.03·ln 1e9) = 1.606956...; reported rounded up to 6 digits.
    exact = 0.03 + 2 * math.sqrt(0.03 * math.log(1e9))
    assert privacy["epsilon_charged"] == "1.60696" and 0 <= 1.60696 - exact < 1e-5
    assert privacy["budget_remaining"] == {"impressions": "47/100", "conversions": "47/100"}
    # σ² = Δ2² / (2·ρ_share), ρ_share = 0.01, Δ2² = L0·c², c = 1, Linf, Linf·C.
    assert noise.sigma2 == [Fraction(4, 2) / Fraction(1, 100), Fraction(4 * 64, 2) / Fraction(1, 100),
                            Fraction(4 * (8 * CLAMP) ** 2, 2) / Fraction(1, 100)]
    assert privacy["noise_sigma2"]["users"] == "200"
    assert noise.scales == []  # no Laplace draw in zCDP mode
    assert [row[:2] for row in result.rows] == [["spring_sale", 500], ["summer_run", 125]]


def test_zcdp_private_threshold_uses_the_gaussian_tail(parties) -> None:
    enclave = _loaded(parties, _policy(parties, *ZCDP), ZeroGaussianNoise())
    result = enclave.query(parties["advertiser"], "reach", {"group_by": ["impressions.campaign"]})
    assert result.privacy["mechanism"] == "discrete_gaussian"
    # σ² = L0/(2·ρ_share) = 4/(2·0.01) = 200, L0 = 4, δ = 1e-9: 4·P[Z ≥ 89] ≤ 1e-9 < 4·P[Z ≥ 88]
    assert result.privacy["threshold"] == 90
    # summer_run's 125 units pass τ = 90 here; trail_launch's 25 do not.
    assert [row[0] for row in result.rows] == ["spring_sale", "summer_run"]


# --------------------------------------------------------------------------------- sensitivities


def test_count_statistics_follow_from_the_policy_bounds(example: EnclaveHarness) -> None:
    policy = example.policy
    analysis = policy.analysis("conversions_by_segment")
    metric = policy.dataset("conversions").metric("value")
    stats = {s.name: s for s in statistics(analysis, policy.privacy, metric, 48)}
    c = max(abs(metric.min), abs(metric.max))  # L0 = 4 cohorts per unit, Linf = 8 rows
    assert (stats["users"].l1, stats["users"].l2_sq) == (4, 4)
    assert (stats["rows"].l1, stats["rows"].l2_sq) == (4 * 8, 4 * 8**2)
    assert (stats["sum"].l1, stats["sum"].l2_sq) == (4 * 8 * c, 4 * (8 * c) ** 2)
