"""``cleanroom keygen``: a party's signing and result key pair files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cleanroom.commands.arguments import command
from cleanroom.keys import PartyKeys

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "keygen", "Generate a party's signing and result key pair",
                "Writes DIR/<party>.key.json (private, mode 0600) and DIR/<party>.pub.json "
                "(public, goes into the policy). Never overwrites existing files.")
    p.add_argument("--party", required=True, help="party id as the policy names it")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the key files")
    p.set_defaults(func=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    keys = PartyKeys.generate(args.party)
    private_path, public_path = keys.save(args.out)
    print(f"private keys: {private_path} (mode 0600; keep it secret, never share it)")
    print(f"public keys:  {public_path} (share it; `cleanroom policy bind-keys` puts it in a policy)")
    for name, value in keys.public_hex().items():
        print(f"  {name} = \"{value}\"")
    return 0
