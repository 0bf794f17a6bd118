"""The soak's policy: the example policy with fresh party keys and a budget that lasts.

``policies/advertiser-publisher.toml`` with the parties' keys bound in, every dataset budget
raised to the policy parser's cap and each analysis made cheaper, so a long soak exercises
queries rather than only ``budget_exhausted`` (still an expected answer).
"""

from __future__ import annotations

import re
from pathlib import Path

from cleanroom.keys import PartyKeys, bind_keys_into_policy
from protocol.errors import PolicyInvalid
from protocol.policy import parse_policy

__all__ = ["EXAMPLE_POLICY", "soak_policy"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "policies" / "advertiser-publisher.toml"
SOAK_BUDGET = {"pure": "20", "zcdp": "2"}  # the policy parser's caps (protocol/policy.py)
SOAK_COST = {"epsilon": "0.002", "rho": "0.0002"}


def _raise_budgets(text: str, mode: str) -> str:
    """Set every value of the ``[privacy.budget]`` table to the cap for ``mode``."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.split("#")[0].strip() == "[privacy.budget]"
        elif inside:
            line = re.sub(r'^(\s*[A-Za-z0-9_]+\s*=\s*)"[^"]*"', rf'\g<1>"{SOAK_BUDGET[mode]}"', line)
        out.append(line)
    return "".join(out)


def _cheapen_analyses(text: str) -> str:
    """Lower each analysis' per-query cost (lines ``epsilon = "..."`` / ``rho = "..."``)."""
    for unit, cost in SOAK_COST.items():
        text = re.sub(rf'(?m)^({unit}\s*=\s*)"[^"]*"', rf'\g<1>"{cost}"', text)
    return text


def soak_policy(keys: dict[str, PartyKeys], source: Path = EXAMPLE_POLICY) -> bytes:
    """The example policy with ``keys`` bound in and a budget that lasts; never edits ``source``.

    Each edit is kept only if the result still parses, so a reshaped example policy degrades to
    a smaller budget (more expected ``budget_exhausted`` answers) rather than a broken soak.
    """
    bound, _ = bind_keys_into_policy(source.read_bytes(), {k: v.public() for k, v in keys.items()})
    best = bound
    mode = parse_policy(bound).privacy.mode
    for edit in (lambda t: _cheapen_analyses(_raise_budgets(t, mode)), lambda t: _raise_budgets(t, mode)):
        candidate = edit(bound.decode()).encode()
        try:
            parse_policy(candidate)
        except PolicyInvalid:
            continue
        best = candidate
        break
    return best
