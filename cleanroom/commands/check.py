"""``cleanroom check``: verify a saved signed result offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cleanroom.commands.arguments import (
    add_attestation_flags,
    add_now,
    add_policy,
    collateral_for,
    command,
    now_from_args,
    read_policy,
    verifier_policy,
)
from cleanroom.commands.output import pinned_lines, print_json
from cleanroom.offline_check import check_saved_result
from cleanroom.result_display import jsonable, render_table
from protocol.errors import CollateralExpired

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "check", "Verify a saved signed result offline",
                "Re-verifies the saved attestation (which binds the enclave's signing key and "
                "the policy hash), then the result's signature and its policy. No network.")
    p.add_argument("file", type=Path, metavar="FILE", help="file written by `cleanroom query --save`")
    add_policy(p)
    add_now(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    add_attestation_flags(p)
    p.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    verifier = verifier_policy(args)
    now = now_from_args(args)
    try:
        result, enclave = check_saved_result(args.file, raw, verifier, now, collateral_for(args))
    except CollateralExpired as exc:
        exc.message += (" (collateral is short-lived: pass --now with a time when it was valid, "
                        "e.g. the result's created_at)")
        raise
    if args.json:
        print_json({"verified": True, "attestation": enclave.report.to_json_dict(),
                    "sig_pub": enclave.sig_pub.hex(), "result": jsonable(result.body)})
        return 0
    print("\n".join(enclave.report.summary_lines()))
    print("\n".join(pinned_lines(enclave, policy.hash)))
    print("result signature: ok (signed by the attested enclave's sig_pub)")
    print()
    print(render_table(result))
    return 0
