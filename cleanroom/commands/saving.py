"""``--save FILE`` for the commands that fetch a result (``query``, ``results get``), and the
``cleanroom check`` command line that re-verifies the saved file, printed so that it works as is.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from cleanroom.commands.output import err
from cleanroom.result_files import save_result
from cleanroom.result_open import Result

__all__ = ["add_save_flag", "check_command", "save_with_hint"]


def add_save_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save", type=Path, metavar="FILE",
                        help="also save the signed result with its attestation (never overwritten), "
                             "for `cleanroom check`, `report` and `match-back`")


def check_command(args: argparse.Namespace, saved: Path) -> str:
    """``cleanroom check`` for ``saved`` with the flags this command verified the enclave with.

    ``check`` re-verifies the saved attestation, so it needs the same verifier policy (or the
    same simulation opt-in) and the same source of collateral as the command that fetched it.
    """
    words = ["cleanroom", "check", str(saved), "--policy", str(args.policy)]
    if getattr(args, "verifier_policy", None) is not None:
        words += ["--verifier-policy", str(args.verifier_policy)]
    if getattr(args, "insecure_allow_simulation", False):
        words.append("--insecure-allow-simulation")
    if getattr(args, "collateral", None) is not None:
        words += ["--collateral", str(args.collateral)]
    if getattr(args, "pccs_url", None) is not None:
        words += ["--pccs-url", str(args.pccs_url)]
    return shlex.join(words)


def save_with_hint(args: argparse.Namespace, result: Result, bundle: dict[str, Any] | None) -> None:
    """Write ``--save`` (if given) and say on stderr how to check it offline."""
    if args.save is None:
        return
    assert bundle is not None  # set by the verification that came before the fetch
    save_result(args.save, result, bundle)
    err(f"saved the signed result and its attestation to {args.save} "
        f"(check it offline with `{check_command(args, args.save)}`)")
