"""The privacy budget: one epsilon ledger per protected dataset of the collaboration.

A query is charged to every dataset it reads, all or nothing, before any data is read: a denied
query costs nothing and a started one always pays. Amounts are exact fractions, so repeated
charges never drift. Nothing here refreshes a budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction

from protocol.errors import BudgetExhausted, StateError

__all__ = ["BudgetLedger"]


class BudgetLedger:
    def __init__(self, totals: Mapping[str, Fraction], spent: Mapping[str, Fraction] | None = None):
        self._totals = dict(totals)
        self._spent = {name: Fraction(0) for name in totals}
        for name, amount in (spent or {}).items():
            if name not in self._totals or amount < 0:
                raise StateError("sealed ledger does not match the policy")
            self._spent[name] = Fraction(amount)

    def remaining(self, dataset: str) -> Fraction:
        return self._totals[dataset] - self._spent[dataset]

    def charge(self, datasets: Iterable[str], epsilon: Fraction) -> None:
        """Debit ``epsilon`` from each dataset, or from none if any would overspend."""
        names = sorted(set(datasets))
        for name in names:
            if self.remaining(name) < epsilon:
                raise BudgetExhausted(f"the privacy budget of dataset {name!r} is exhausted")
        for name in names:
            self._spent[name] += epsilon

    def to_sealable(self) -> dict[str, str]:
        return {name: str(amount) for name, amount in self._spent.items()}

    @staticmethod
    def spent_from_sealed(data: Mapping[str, str]) -> dict[str, Fraction]:
        return {name: Fraction(text) for name, text in data.items()}
