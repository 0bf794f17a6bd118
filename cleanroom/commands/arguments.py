"""Flags shared by several commands, and the library objects they turn into.

``--host``, ``--policy``, ``--keys``, ``--verifier-policy`` and ``--insecure-allow-simulation``
may also come from the environment or the client profile (``cleanroom.client_profile``):
``apply_profile`` fills in what the flags left out, after parsing and before the command runs.
This module stays light (no crypto, HTTP or NumPy), because ``cleanroom --help`` imports it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocol.policy import Policy

__all__ = [
    "UsageError",
    "add_attestation_flags",
    "add_host",
    "add_key_file",
    "add_now",
    "add_policy",
    "apply_profile",
    "collateral_for",
    "command",
    "now_from_args",
    "read_policy",
    "require",
    "verifier_policy",
]

SIMULATION_WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! WARNING: --insecure-allow-simulation is set.                               !!
!! A SIMULATED enclave will be accepted: no SGX hardware protects your data,  !!
!! and whoever runs the host can read everything you upload. Testing only.    !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""

# A parser default marking which profile settings a command takes (and whether it needs them).
_TAKES = "_profile_takes_"
_SOURCES = "_profile_sources"
_PLACEHOLDER = {"host": "URL", "policy": "FILE", "keys": "KEYFILE"}


class UsageError(Exception):
    """A flag combination or input the command cannot work with (exit 2)."""


def command(subparsers: Any, name: str, summary: str, detail: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=summary, description=f"{summary}. {detail}")


def _takes(parser: argparse.ArgumentParser, name: str, required: bool) -> None:
    parser.set_defaults(**{_TAKES + name: "required" if required else "optional"})


def add_host(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--host``; ``required=False`` for a command that needs it only sometimes (then it calls
    ``require(args, "host")`` where it does)."""
    parser.add_argument("--host", metavar="URL",
                        help="the clean-room host, e.g. http://127.0.0.1:8700 "
                             "(default: $CLEANROOM_HOST, then the profile)")
    _takes(parser, "host", required=required)


def add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, metavar="FILE",
                        help="your copy of the agreed collaboration policy (TOML; default: "
                             "$CLEANROOM_POLICY, then the profile)")
    _takes(parser, "policy", required=True)


def add_key_file(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--keys", type=Path, metavar="KEYFILE",
                        help="your <party>.key.json (default: $CLEANROOM_KEYS, then the profile)")
    _takes(parser, "keys", required=required)


def add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", type=int, metavar="UNIX",
                        help="judge collateral validity at this Unix time (default: now)")


def add_attestation_flags(parser: argparse.ArgumentParser) -> None:
    from cleanroom.collateral_source import add_collateral_arguments

    parser.add_argument("--verifier-policy", type=Path, metavar="FILE",
                        help="verifier policy TOML: the enclave measurements and TCB levels you "
                             "accept (see policies/verifier-policy.example.toml; default: "
                             "$CLEANROOM_VERIFIER_POLICY, then the profile)")
    parser.add_argument("--insecure-allow-simulation", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="INSECURE: accept a simulated enclave (no SGX hardware); testing only "
                             "(default: $CLEANROOM_INSECURE_ALLOW_SIMULATION, then the profile, "
                             "else no)")
    _takes(parser, "verifier_policy", required=False)
    _takes(parser, "insecure_allow_simulation", required=False)
    add_collateral_arguments(parser)


def apply_profile(args: argparse.Namespace, env: Any = None) -> None:
    """Fill the profile settings this command takes from the environment or the profile file.

    A flag given on the command line always wins. Records where each value came from.

    :raise UsageError: a setting the command needs is set nowhere.
    :raise InvalidInput: a malformed environment value or profile file.
    """
    from cleanroom.client_profile import load_profile, profile_path, resolve

    taken = {key[len(_TAKES):]: need for key, need in vars(args).items() if key.startswith(_TAKES)}
    if not taken:
        return
    where = profile_path(env)
    profile = load_profile(where)
    sources = {}
    for name, need in taken.items():
        found = resolve(name, getattr(args, name, None), env=env, profile=profile, profile_file=where)
        setattr(args, name, found.value)
        sources[name] = found.source
        if need == "required" and found.value is None:
            raise _missing(name)
    setattr(args, _SOURCES, sources)


def _missing(name: str) -> UsageError:
    from cleanroom.client_profile import setting

    s = setting(name)
    return UsageError(f"{s.flag} {_PLACEHOLDER.get(name, 'VALUE')} is required: pass it, set "
                      f"{s.env}, or run `cleanroom profile set {name.replace('_', '-')} "
                      f"{_PLACEHOLDER.get(name, 'VALUE')}`")


def require(args: argparse.Namespace, name: str) -> Any:
    """The value of an optional profile setting that this use of the command needs.

    :raise UsageError: it is set nowhere (the same message as for an always-required one).
    """
    value = getattr(args, name, None)
    if value is None:
        raise _missing(name)
    return value


def source_of(args: argparse.Namespace, name: str) -> str:
    """Where ``apply_profile`` found ``name`` ("flag --host", "environment ...", ...)."""
    return getattr(args, _SOURCES, {}).get(name, "flag")


def read_policy(path: Path) -> tuple[bytes, Policy]:
    from protocol.policy import parse_policy

    raw = path.read_bytes()
    return raw, parse_policy(raw)


def now_from_args(args: argparse.Namespace) -> int:
    """``--now``, else the clock: the one clock read of the offline commands."""
    return int(time.time()) if args.now is None else args.now


def verifier_policy(args: argparse.Namespace) -> Any:
    """The ``VerifierPolicy`` the attestation flags name; warns on stderr about simulation."""
    from attestation.verifier.verify import VerifierPolicy

    if args.insecure_allow_simulation:
        print(SIMULATION_WARNING, file=sys.stderr)
        source = source_of(args, "insecure_allow_simulation")
        if not source.startswith("flag"):
            print(f"   (the opt-in comes from the {source}; --no-insecure-allow-simulation "
                  "overrides it)", file=sys.stderr)
    if args.verifier_policy is not None:
        policy = VerifierPolicy.from_toml(args.verifier_policy)
        return policy.replace(allow_simulation=True) if args.insecure_allow_simulation else policy
    if args.insecure_allow_simulation:
        return VerifierPolicy(allow_simulation=True)  # measured against the simulation MRENCLAVE
    raise UsageError("--verifier-policy FILE is required: it names the enclave measurement you trust "
                     "(or set CLEANROOM_VERIFIER_POLICY or `cleanroom profile set verifier-policy "
                     "FILE`; for a simulated test enclave, --insecure-allow-simulation)")


def collateral_for(args: argparse.Namespace) -> Callable[[bytes], str | None]:
    """Your own collateral (--collateral / --pccs-url) instead of the one the host attached."""
    from cleanroom.collateral_source import collateral_from_args

    return lambda quote: collateral_from_args(args, quote)
