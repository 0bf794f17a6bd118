"""``cleanroom budget``: every dataset's privacy budget left (and each requester's share), from
the enclave's signed statement. Free: asking charges nothing."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

from cleanroom.client import Client
from cleanroom.commands.arguments import add_attestation_flags, add_host, add_policy, command, read_policy
from cleanroom.commands.output import add_output_flags, emit, output_format, refuse_existing
from cleanroom.commands.verify_first import verify_before_sending
from cleanroom.formatting import fraction_decimal, iso_utc
from cleanroom.result_display import jsonable
from protocol.policy import Policy

__all__ = ["budget_text", "register"]

_AMOUNTS = ("total", "spent", "remaining")


def register(subparsers: Any) -> None:
    p = command(subparsers, "budget", "Show each dataset's remaining privacy budget (free, signed)",
                "Verifies the attestation, then asks the enclave for its signed statement of every "
                "dataset's budget: total, spent and remaining (and each requester's share where "
                "the policy splits it). Asking charges nothing. Amounts are exact in the statement "
                "and shown as decimals: what is left rounded down, what was spent rounded up.")
    add_host(p)
    add_policy(p)
    add_output_flags(p)
    add_attestation_flags(p)
    p.set_defaults(func=_budget)


def _decimal(amount: Any, key: str) -> str:
    return fraction_decimal(amount, up=key != "remaining")


def _rows(status: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(dataset, party or "", amounts) for every dataset, then its shares."""
    out = []
    for name, entry in sorted(status["datasets"].items()):
        out.append((name, "", entry))
        out += [(name, party, share) for party, share in sorted((entry.get("shares") or {}).items())]
    return out


def _costs(policy: Policy) -> str:
    costs = [f"{a.id} {fraction_decimal(a.epsilon if a.epsilon is not None else a.rho, up=True)}"
             for a in policy.analyses]
    return "cost per query: " + ", ".join(costs)


def budget_text(status: dict[str, Any], policy: Policy, fmt: str) -> str:
    """The verified ``budget_status`` body as a table, JSON or CSV."""
    rows = _rows(status)
    if fmt == "json":
        doc = jsonable(status)
        doc["created_at_utc"] = iso_utc(status.get("created_at"))
        for entry in [doc["datasets"][n] for n in doc["datasets"]]:
            for target in [entry, *(entry.get("shares") or {}).values()]:
                target.update({f"{k}_decimal": _decimal(target[k], k) for k in _AMOUNTS if k in target})
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["dataset", "requester", *_AMOUNTS, "delta_spent"])
        for name, party, entry in rows:
            writer.writerow([name, party, *(_decimal(entry.get(k, ""), k) for k in _AMOUNTS),
                             _decimal(entry["delta_spent"], "spent") if "delta_spent" in entry else ""])
        return out.getvalue()
    unit = status.get("unit", "epsilon")
    table = [["dataset", "requester", "total", "spent", "remaining", "delta spent"]]
    for name, party, entry in rows:
        table.append([name if not party else "", f"share of {party}" if party else "",
                      *(_decimal(entry.get(k, "?"), k) for k in _AMOUNTS),
                      _decimal(entry["delta_spent"], "spent") if "delta_spent" in entry else ""])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [f"privacy budget ({unit}), as the enclave signed it at {iso_utc(status.get('created_at'))}"
             + (" - SIMULATED enclave" if status.get("simulated") else "")]
    for i, row in enumerate(table):
        lines.append("  ".join(v.ljust(w) if c < 2 else v.rjust(w)
                               for c, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(_costs(policy))
    return "\n".join(lines) + "\n"


def _budget(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    fmt = output_format(args)
    refuse_existing(args.output)
    client = Client(args.host)
    enclave = verify_before_sending(args, client, raw)
    status = client.budget_status(enclave, policy)
    emit(budget_text(status, policy, fmt), args, f"the budget ({fmt})")
    return 0
