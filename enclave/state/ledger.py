"""The privacy budget: one ledger entry per protected dataset of the collaboration.

The ledger lives in the sealed state, which is bound to the policy hash, so an entry is per
(collaboration, protected dataset). Its unit is the policy's: ε in pure mode, ρ in zCDP mode
(ρ adds up across queries and is converted to (ε, δ) only for reports). Next to it the ledger
records the δ spent by private-cohort selection, which adds up too.

A query is charged to every dataset it reads, all or nothing, before any data is read: a denied
query costs nothing and a started one always pays. Amounts are exact fractions, so repeated
charges never drift. Nothing here refreshes a budget.

Where the policy splits a dataset's budget between requesters (``privacy.budget_shares``), a
charge must also fit in the requester's own share, so one party's queries cannot use up what
another needed. The shares add up to at most the total (the policy parser checks), so the total
still bounds every release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from protocol.errors import BudgetExhausted, StateError
from protocol.policy import Policy
from protocol.privacy.accounting import decimal_text

__all__ = ["BudgetLedger", "delta_cap", "ledger_for"]

# (spent, δ spent, spent per requester, releases that were not differentially private)
Spent = tuple[Fraction, Fraction, dict[str, Fraction], int]


def delta_cap(policy: Policy) -> Fraction | None:
    """Selection δ a dataset may spend: the policy's total-δ cap less the conversion δ."""
    cap = policy.privacy.delta_total_max
    return None if cap is None else cap - policy.privacy.conversion_delta


def ledger_for(policy: Policy, sealed: Mapping[str, Any] | None = None) -> BudgetLedger:
    """The policy's ledger, fresh or restored from its sealed form."""
    spent = BudgetLedger.spent_from_sealed(sealed) if sealed is not None else None
    return BudgetLedger(policy.privacy.budget, spent, delta_cap=delta_cap(policy),
                        shares=policy.privacy.budget_shares)


class BudgetLedger:
    """``delta_cap``: the most selection δ a dataset may accumulate (the policy's
    ``delta_total_max`` less the conversion δ), or None for no cap beyond the budget.
    ``shares``: dataset -> requester -> that requester's part of the dataset's budget."""

    def __init__(self, totals: Mapping[str, Fraction],
                 spent: Mapping[str, Fraction | Spent] | None = None,
                 *, delta_cap: Fraction | None = None,
                 shares: Mapping[str, Mapping[str, Fraction]] | None = None) -> None:
        self._delta_cap = delta_cap
        self._totals = {name: Fraction(total) for name, total in totals.items()}
        self._shares = {name: dict(by_party) for name, by_party in (shares or {}).items()}
        self._spent = {name: Fraction(0) for name in totals}
        self._delta = {name: Fraction(0) for name in totals}
        self._by_requester: dict[str, dict[str, Fraction]] = {name: {} for name in totals}
        self._non_dp = {name: 0 for name in totals}
        for name, value in (spent or {}).items():
            amount, delta, by_requester, non_dp = (value if isinstance(value, tuple)
                                                   else (value, Fraction(0), {}, 0))
            negative = amount < 0 or delta < 0 or non_dp < 0 or any(v < 0 for v in by_requester.values())
            if name not in self._totals or negative:
                raise StateError("sealed ledger does not match the policy")
            self._spent[name], self._delta[name] = Fraction(amount), Fraction(delta)
            self._by_requester[name] = dict(by_requester)
            self._non_dp[name] = non_dp

    def remaining(self, dataset: str) -> Fraction:
        return self._totals[dataset] - self._spent[dataset]

    def spent(self, dataset: str) -> Fraction:
        return self._spent[dataset]

    def delta_spent(self, dataset: str) -> Fraction:
        return self._delta[dataset]

    def share_remaining(self, dataset: str, requester: str) -> Fraction | None:
        """What ``requester`` may still spend of ``dataset``, or None where the budget is not split."""
        share = self._shares.get(dataset)
        if share is None:
            return None
        return share.get(requester, Fraction(0)) - self._by_requester[dataset].get(requester, Fraction(0))

    def charge(self, datasets: Iterable[str], amount: Fraction, delta: Fraction = Fraction(0),
               requester: str | None = None) -> None:
        """Debit ``amount`` (and ``delta``) from each dataset, or from none if any would overspend."""
        names = self.check(datasets, amount, delta, requester)
        for name in names:
            self._spent[name] += amount
            self._delta[name] += delta
            if requester is not None:
                by_requester = self._by_requester[name]
                by_requester[requester] = by_requester.get(requester, Fraction(0)) + amount

    def check(self, datasets: Iterable[str], amount: Fraction, delta: Fraction = Fraction(0),
              requester: str | None = None) -> list[str]:
        """Raise ``BudgetExhausted`` if the charge would not fit; debit nothing."""
        names = sorted(set(datasets))
        if amount <= 0 or delta < 0 or not set(names) <= set(self._totals):
            raise StateError("invalid budget charge")
        for name in names:  # check every dataset first: a refusal must leave no partial debit
            if self.remaining(name) < amount:
                raise BudgetExhausted(f"the privacy budget of dataset {name!r} is exhausted: the "
                                      f"query needs {decimal_text(amount)}, "
                                      f"{decimal_text(self.remaining(name))} is left")
            share = self.share_remaining(name, requester) if requester is not None else None
            if share is not None and share < amount:
                raise BudgetExhausted(f"party {requester!r}'s share of the budget of dataset {name!r} "
                                      f"is exhausted: the query needs {decimal_text(amount)}, "
                                      f"{decimal_text(share)} is left")
            if self._delta_cap is not None and self._delta[name] + delta > self._delta_cap:
                raise BudgetExhausted(f"the delta budget of dataset {name!r} is exhausted")
        return names

    def record_non_dp_release(self, datasets: Iterable[str]) -> None:
        """Count a release no DP mechanism protects (an activation) against the datasets that
        defined it: the budget cannot express its cost, so the ledger at least says it happened."""
        for name in set(datasets):
            self._non_dp[name] += 1

    def non_dp_releases(self, dataset: str) -> int:
        return self._non_dp[dataset]

    def status(self) -> dict[str, dict[str, Any]]:
        """Every dataset's total, spent and remaining amount (and each requester's share), exact."""
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(self._totals):
            entry: dict[str, Any] = {"total": str(self._totals[name]), "spent": str(self._spent[name]),
                                     "remaining": str(self.remaining(name)),
                                     "delta_spent": str(self._delta[name]),
                                     "non_dp_releases": self._non_dp[name]}
            if name in self._shares:
                entry["shares"] = {
                    party: {"total": str(total),
                            "spent": str(self._by_requester[name].get(party, Fraction(0))),
                            "remaining": str(self.share_remaining(name, party))}
                    for party, total in sorted(self._shares[name].items())}
            out[name] = entry
        return out

    def to_sealable(self) -> dict[str, list[Any]]:
        return {name: [str(self._spent[name]), str(self._delta[name]),
                       {party: str(v) for party, v in sorted(self._by_requester[name].items())},
                       self._non_dp[name]]
                for name in sorted(self._spent)}

    @staticmethod
    def spent_from_sealed(data: Mapping[str, Any]) -> dict[str, Spent]:
        """Parse ``to_sealable`` output (or the earlier ``[amount, delta]`` and ε-only forms)."""
        out: dict[str, Spent] = {}
        for name, value in data.items():
            try:
                if isinstance(value, str):
                    out[name] = (Fraction(value), Fraction(0), {}, 0)
                else:
                    amount, delta, *rest = value
                    by_requester = {str(p): Fraction(v) for p, v in (rest[0] if rest else {}).items()}
                    non_dp = rest[1] if len(rest) > 1 else 0
                    if not isinstance(non_dp, int) or isinstance(non_dp, bool):
                        raise TypeError("non-DP release count")
                    out[name] = (Fraction(amount), Fraction(delta), by_requester, non_dp)
            except (TypeError, ValueError, ZeroDivisionError, AttributeError):
                raise StateError("sealed ledger is malformed") from None
        return out
