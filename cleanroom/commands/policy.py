"""``cleanroom policy hash | bind-keys | lint``: work with collaboration policy files.

``lint`` has its own exit codes: 0 valid, 1 invalid (the errors name the field), 2 the file
cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cleanroom.commands.arguments import command, read_policy
from cleanroom.policy_binding import bind_key_files, write_policy
from cleanroom.policy_lint import lint_policy, render_text

__all__ = ["LINT_INVALID", "LINT_OK", "LINT_UNREADABLE", "register"]

LINT_OK, LINT_INVALID, LINT_UNREADABLE = 0, 1, 2


def register(subparsers: Any) -> None:
    group = command(subparsers, "policy", "Work with collaboration policy files",
                    "Subcommands: hash, bind-keys, lint.")
    commands = group.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    p = command(commands, "hash", "Print the SHA-256 of a policy file",
                "This is the hash every enclave quote must bind; compare it with the other "
                "parties out of band. The policy is validated first.")
    p.add_argument("policy", type=Path, metavar="POLICY", help="policy TOML file")
    p.set_defaults(func=_hash)
    p = command(commands, "bind-keys", "Write parties' public keys into a policy",
                "For every DIR/<party>.pub.json whose party is in the policy, rewrites that "
                "party's signing_key and result_key values; every other byte is kept. Prints "
                "the new policy hash.")
    p.add_argument("policy", type=Path, metavar="POLICY", help="policy TOML file to start from")
    p.add_argument("--keys", required=True, type=Path, metavar="DIR", help="directory of *.pub.json")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="policy file to write")
    p.set_defaults(func=_bind_keys)
    p = commands.add_parser(
        "lint", help="Validate a policy and preview each analysis's privacy cost",
        description="Validate a policy and print, without any data, each analysis's "
                    "sensitivities, noise scales, threshold tau, budget use per query and how "
                    "many queries the budget allows. Errors name the offending field.")
    p.add_argument("policy", type=Path, metavar="POLICY", help="policy TOML file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_lint)


def _hash(args: argparse.Namespace) -> int:
    _raw, policy = read_policy(args.policy)
    print(f"{policy.hash.hex()}  {args.policy} (collaboration {policy.collaboration_id})")
    return 0


def _bind_keys(args: argparse.Namespace) -> int:
    result = bind_key_files(args.policy.read_bytes(), args.keys)
    write_policy(args.output, result.data)
    print(f"bound keys of: {', '.join(result.bound)}")
    if result.ignored:
        print(f"not in the policy (ignored): {', '.join(result.ignored)}")
    print(f"wrote {args.output}")
    print(f"policy hash: {result.policy.hash.hex()}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    try:
        raw = Path(args.policy).read_bytes()
    except OSError as exc:
        print(f"error [io_error]: {exc.strerror or exc}: {args.policy}", file=sys.stderr)
        return LINT_UNREADABLE
    report = lint_policy(raw)
    if args.json:
        print(json.dumps({"policy": str(args.policy), **report.to_json()}, indent=2))
    else:
        print(render_text(report), file=sys.stdout if report.valid else sys.stderr)
    return LINT_OK if report.valid else LINT_INVALID
