"""Issue 11.3 and 11.2: a query's whole δ is reported and capped; a non-DP release is on record.

A private-cohort query under zCDP is (ε_BS(ρ, δ), δ + δ_selection); under pure ε it is
(ε, δ_selection). The signed result states that sum per query and per dataset so far, and the
policy's ``delta_total_max`` caps a dataset's sum.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from cleanroom.audit import verify_audit_log
from protocol.crypto import BUDGET_LABEL
from protocol.errors import BudgetExhausted, PolicyInvalid
from protocol.policy import parse_policy
from protocol.wire import unpack_document
from tests.enclave.test_analyses import ZeroGaussianNoise, _loaded, _policy

ZCDP = [('mode = "pure" ', 'mode = "zcdp" '), ('epsilon_per_query_max = "1.0"', 'rho_per_query_max = "0.05"'),
        ('epsilon = "0.2"', 'rho = "0.01"'), ('epsilon = "0.6"', 'rho = "0.03"'),
        ('epsilon = "0.4"', 'rho = "0.02"'), ('epsilon = "0.1"', 'rho = "0.005"'),
        ('impressions = "6.0"', 'impressions = "0.5"'), ('conversions = "6.0"', 'conversions = "0.5"')]
CAP = ('delta = "1e-9"', 'delta = "1e-9"\ndelta_total_max = "2.5e-9"')


def test_signed_result_states_the_total_delta_of_a_private_cohort_query(parties) -> None:
    enclave = _loaded(parties, _policy(parties, *ZCDP), ZeroGaussianNoise())
    result = enclave.query(parties["advertiser"], "reach", {"group_by": ["impressions.campaign"]})
    # conversion δ (1e-9, for ρ -> ε) plus the selection δ (1e-9) of the private cohort keys
    assert Fraction(result.privacy["delta_total"]) == Fraction(2, 10**9)
    assert {Fraction(v) for v in result.privacy["delta_total_spent"].values()} == {Fraction(2, 10**9)}
    again = enclave.query(parties["advertiser"], "reach", {"group_by": ["impressions.campaign"]})
    assert {Fraction(v) for v in again.privacy["delta_total_spent"].values()} == {Fraction(3, 10**9)}


def test_public_cohort_query_in_pure_mode_has_no_delta(parties) -> None:
    enclave = _loaded(parties, _policy(parties))
    result = enclave.query(parties["advertiser"], "overlap", {"group_by": ["impressions.campaign"]})
    assert result.privacy["delta_total"] == "0"


def test_the_policy_caps_a_datasets_total_delta(parties) -> None:
    enclave = _loaded(parties, _policy(parties, CAP))  # pure ε: no conversion δ
    for _ in range(2):  # 2 x 1e-9 of selection δ fits under 2.5e-9
        enclave.query(parties["advertiser"], "reach", {"group_by": ["impressions.campaign"]})
    with pytest.raises(BudgetExhausted, match="delta budget"):
        enclave.query(parties["advertiser"], "reach", {"group_by": ["impressions.campaign"]})
    # a public-cohort query spends no δ and still runs
    enclave.query(parties["advertiser"], "overlap", {"group_by": ["impressions.campaign"]})


def test_delta_total_max_must_leave_room_above_the_conversion_delta(parties) -> None:
    zcdp_tight = _policy(parties, *ZCDP, ('delta = "1e-9"', 'delta = "1e-9"\ndelta_total_max = "1e-9"'))
    with pytest.raises(PolicyInvalid, match="delta_total_max"):
        parse_policy(zcdp_tight)
    assert parse_policy(_policy(parties, CAP)).privacy.delta_total_max == Fraction(25, 10**10)


def test_activation_is_recorded_as_a_non_dp_release_from_the_other_partys_data(parties) -> None:
    enclave = _loaded(parties, _policy(parties))
    enclave.query(parties["advertiser"], "activate_converters",
                  {"cohort": {"impressions.campaign": "summer_run"}})
    _, entries = verify_audit_log(enclave.published, enclave.ready["sig_pub"],
                                  enclave.policy.collaboration_id)
    released = [e for e in entries if e["kind"] == "result_released"][-1]["details"]
    assert released["differentially_private"] is False and released["cohort_from"] == ["impressions"]
    # The ledger counts it too, in the enclave-signed budget statement.
    reply = enclave.call("budget", {})
    enclave.verify_enclave_signature(BUDGET_LABEL, reply["status"], reply["signature"])
    datasets = unpack_document("budget_status", reply["status"])["datasets"]
    assert (datasets["impressions"]["non_dp_releases"], datasets["conversions"]["non_dp_releases"]) == (1, 0)
    overlap = _loaded(parties, _policy(parties))
    overlap.query(parties["advertiser"], "overlap", {"group_by": []})
    _, entries = verify_audit_log(overlap.published, overlap.ready["sig_pub"],
                                  overlap.policy.collaboration_id)
    released = [e for e in entries if e["kind"] == "result_released"][-1]["details"]
    assert "differentially_private" not in released
