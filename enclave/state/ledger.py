"""The privacy budget: one ledger entry per protected dataset of the collaboration.

The ledger lives in the sealed state, which is bound to the policy hash, so an entry is per
(collaboration, protected dataset). Its unit is the policy's: ε in pure mode, ρ in zCDP mode
(ρ adds up across queries and is converted to (ε, δ) only for reports). Next to it the ledger
records the δ spent by private-cohort selection, which adds up too.

A query is charged to every dataset it reads, all or nothing, before any data is read: a denied
query costs nothing and a started one always pays. Amounts are exact fractions, so repeated
charges never drift. Nothing here refreshes a budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from protocol.errors import BudgetExhausted, StateError
from protocol.policy import Policy

__all__ = ["BudgetLedger", "delta_cap"]

Spent = tuple[Fraction, Fraction]  # (budget unit spent, δ spent)


def delta_cap(policy: Policy) -> Fraction | None:
    """Selection δ a dataset may spend: the policy's total-δ cap less the conversion δ."""
    cap = policy.privacy.delta_total_max
    return None if cap is None else cap - policy.privacy.conversion_delta


class BudgetLedger:
    """``delta_cap``: the most selection δ a dataset may accumulate (the policy's
    ``delta_total_max`` less the conversion δ), or None for no cap beyond the budget."""

    def __init__(self, totals: Mapping[str, Fraction],
                 spent: Mapping[str, Fraction | Spent] | None = None,
                 *, delta_cap: Fraction | None = None) -> None:
        self._delta_cap = delta_cap
        self._totals = {name: Fraction(total) for name, total in totals.items()}
        self._spent = {name: Fraction(0) for name in totals}
        self._delta = {name: Fraction(0) for name in totals}
        for name, value in (spent or {}).items():
            amount, delta = value if isinstance(value, tuple) else (value, Fraction(0))
            if name not in self._totals or amount < 0 or delta < 0:
                raise StateError("sealed ledger does not match the policy")
            self._spent[name], self._delta[name] = Fraction(amount), Fraction(delta)

    def remaining(self, dataset: str) -> Fraction:
        return self._totals[dataset] - self._spent[dataset]

    def spent(self, dataset: str) -> Fraction:
        return self._spent[dataset]

    def delta_spent(self, dataset: str) -> Fraction:
        return self._delta[dataset]

    def charge(self, datasets: Iterable[str], amount: Fraction, delta: Fraction = Fraction(0)) -> None:
        """Debit ``amount`` (and ``delta``) from each dataset, or from none if any would overspend."""
        names = sorted(set(datasets))
        if amount <= 0 or delta < 0 or not set(names) <= set(self._totals):
            raise StateError("invalid budget charge")
        for name in names:  # check every dataset first: a refusal must leave no partial debit
            if self.remaining(name) < amount:
                raise BudgetExhausted(f"the privacy budget of dataset {name!r} is exhausted")
            if self._delta_cap is not None and self._delta[name] + delta > self._delta_cap:
                raise BudgetExhausted(f"the delta budget of dataset {name!r} is exhausted")
        for name in names:
            self._spent[name] += amount
            self._delta[name] += delta

    def to_sealable(self) -> dict[str, list[str]]:
        return {name: [str(self._spent[name]), str(self._delta[name])] for name in sorted(self._spent)}

    @staticmethod
    def spent_from_sealed(data: Mapping[str, Any]) -> dict[str, Spent]:
        """Parse ``to_sealable`` output (or the earlier ε-only ``{name: "amount"}`` form)."""
        out = {}
        for name, value in data.items():
            try:
                if isinstance(value, str):
                    out[name] = (Fraction(value), Fraction(0))
                else:
                    amount, delta = value
                    out[name] = (Fraction(amount), Fraction(delta))
            except (TypeError, ValueError, ZeroDivisionError):
                raise StateError("sealed ledger is malformed") from None
        return out
