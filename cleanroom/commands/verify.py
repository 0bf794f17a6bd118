"""``cleanroom verify``: verify the host's enclave and print everything that was checked."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from cleanroom.client import ATTESTATION_NONCE_BYTES, Client
from cleanroom.commands.arguments import (
    add_attestation_flags,
    add_host,
    add_policy,
    collateral_for,
    command,
    read_policy,
    verifier_policy,
)
from cleanroom.commands.output import pinned_lines, print_json, print_report

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "verify", "Verify the enclave's attestation and print what was checked",
                "Requests a quote over a fresh random nonce, then checks the quote's signature "
                "chain and TCB status, the debug bit, the measurement, the key binding in "
                "REPORTDATA and that the enclave runs your copy of the policy. Exit 1 when the "
                "enclave is refused.")
    add_host(p)
    add_policy(p)
    add_attestation_flags(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    verifier = verifier_policy(args)
    client = Client(args.host)
    nonce = secrets.token_bytes(ATTESTATION_NONCE_BYTES)  # printed below, so drawn here
    # The same checks as before an upload (the enclave key this party remembers included).
    report = client.attestation_report(raw, verifier, nonce=nonce, collateral_for=collateral_for(args))
    if not report.accepted:
        print_report(report, args.json)
        report.require()  # raises the first refusal's typed error: exit 1
    enclave = report.enclave()
    if args.json:
        print_json({**report.to_json_dict(), "policy_hash": policy.hash.hex(),
                    "enc_pub": enclave.enc_pub.hex(), "sig_pub": enclave.sig_pub.hex(),
                    "nonce": nonce.hex()})
    else:
        print_report(report, as_json=False)
        print("\n".join(pinned_lines(enclave, policy.hash)))
        print(f"fresh nonce:  {nonce.hex()} (bound into this quote)")
    return 0
