"""Flags shared by several commands, and the library objects they turn into."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanroom.collateral_source import add_collateral_arguments, collateral_from_args
from cleanroom.commands.output import err
from protocol.policy import Policy, parse_policy

__all__ = [
    "UsageError",
    "add_attestation_flags",
    "add_host",
    "add_key_file",
    "add_now",
    "add_policy",
    "collateral_for",
    "command",
    "now_from_args",
    "read_policy",
    "verifier_policy",
]

SIMULATION_WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! WARNING: --insecure-allow-simulation is set.                               !!
!! A SIMULATED enclave will be accepted: no SGX hardware protects your data,  !!
!! and whoever runs the host can read everything you upload. Testing only.    !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


class UsageError(Exception):
    """A flag combination or input the command cannot work with (exit 2)."""


def command(subparsers: Any, name: str, summary: str, detail: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=summary, description=f"{summary}. {detail}")


def add_host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, metavar="URL",
                        help="the clean-room host, e.g. http://127.0.0.1:8080")


def add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, type=Path, metavar="FILE",
                        help="your copy of the agreed collaboration policy (TOML)")


def add_key_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", required=True, type=Path, metavar="KEYFILE", help="your <party>.key.json")


def add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", type=int, metavar="UNIX",
                        help="judge collateral validity at this Unix time (default: now)")


def add_attestation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verifier-policy", type=Path, metavar="FILE",
                        help="verifier policy TOML: the enclave measurements and TCB levels you "
                             "accept (see policies/verifier-policy.example.toml)")
    parser.add_argument("--insecure-allow-simulation", action="store_true",
                        help="INSECURE: accept a simulated enclave (no SGX hardware); testing only")
    add_collateral_arguments(parser)


def read_policy(path: Path) -> tuple[bytes, Policy]:
    raw = path.read_bytes()
    return raw, parse_policy(raw)


def now_from_args(args: argparse.Namespace) -> int:
    """``--now``, else the clock: the one clock read of the offline commands."""
    return int(time.time()) if args.now is None else args.now


def verifier_policy(args: argparse.Namespace) -> Any:
    """The ``VerifierPolicy`` the attestation flags name; warns on stderr about simulation."""
    from attestation.verifier.verify import VerifierPolicy

    if args.insecure_allow_simulation:
        err(SIMULATION_WARNING)
    if args.verifier_policy is not None:
        policy = VerifierPolicy.from_toml(args.verifier_policy)
        return policy.replace(allow_simulation=True) if args.insecure_allow_simulation else policy
    if args.insecure_allow_simulation:
        return VerifierPolicy(allow_simulation=True)  # measured against the simulation MRENCLAVE
    raise UsageError("--verifier-policy FILE is required: it names the enclave measurement you trust "
                     "(or pass --insecure-allow-simulation for a simulated test enclave)")


def collateral_for(args: argparse.Namespace) -> Callable[[bytes], str | None]:
    """Your own collateral (--collateral / --pccs-url) instead of the one the host attached."""
    return lambda quote: collateral_from_args(args, quote)
