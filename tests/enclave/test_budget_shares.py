"""The ledger's per-requester shares and its signed, free budget statement (issue 11, point 12)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from enclave.state.ledger import BudgetLedger
from protocol.errors import BudgetExhausted

SHARES = {"a": {"advertiser": Fraction(2, 5), "publisher": Fraction(3, 5)}}


def test_a_requester_stops_at_its_share_and_the_other_keeps_its_own() -> None:
    ledger = BudgetLedger({"a": Fraction(1)}, shares=SHARES)
    ledger.charge(["a"], Fraction(1, 5), requester="advertiser")
    ledger.charge(["a"], Fraction(1, 5), requester="advertiser")
    with pytest.raises(BudgetExhausted) as refused:
        ledger.charge(["a"], Fraction(1, 5), requester="advertiser")
    assert "'advertiser''s share" in refused.value.message
    assert "needs 0.2" in refused.value.message and "0 is left" in refused.value.message
    ledger.charge(["a"], Fraction(3, 5), requester="publisher")  # all of its own share
    assert ledger.remaining("a") == 0 and ledger.share_remaining("a", "publisher") == 0


def test_a_requester_without_a_share_gets_nothing() -> None:
    ledger = BudgetLedger({"a": Fraction(1)}, shares={"a": {"publisher": Fraction(1)}})
    with pytest.raises(BudgetExhausted):
        ledger.charge(["a"], Fraction(1, 10), requester="advertiser")
    assert ledger.spent("a") == 0


def test_without_shares_the_message_says_what_is_needed_and_left() -> None:
    ledger = BudgetLedger({"a": Fraction(1, 2)})
    ledger.charge(["a"], Fraction(2, 5), requester="advertiser")
    with pytest.raises(BudgetExhausted) as refused:
        ledger.charge(["a"], Fraction(1, 2), requester="advertiser")
    assert "needs 0.5" in refused.value.message and "0.1 is left" in refused.value.message
    assert ledger.share_remaining("a", "advertiser") is None


def test_shares_survive_sealing_and_the_status_shows_them() -> None:
    ledger = BudgetLedger({"a": Fraction(1)}, shares=SHARES)
    ledger.charge(["a"], Fraction(1, 10), requester="publisher")
    restored = BudgetLedger({"a": Fraction(1)}, BudgetLedger.spent_from_sealed(ledger.to_sealable()),
                            shares=SHARES)
    assert restored.share_remaining("a", "publisher") == Fraction(1, 2)
    status = restored.status()["a"]
    assert status["remaining"] == "9/10"
    assert status["shares"]["publisher"] == {"total": "3/5", "spent": "1/10", "remaining": "1/2"}
    assert status["shares"]["advertiser"]["spent"] == "0"


def test_check_debits_nothing() -> None:
    ledger = BudgetLedger({"a": Fraction(1)}, shares=SHARES)
    ledger.check(["a"], Fraction(2, 5), requester="advertiser")
    assert ledger.spent("a") == 0
