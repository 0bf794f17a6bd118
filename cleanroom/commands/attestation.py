"""``cleanroom attestation verify-quote``: check a raw SGX quote from the command line.

Builds a ``VerifierPolicy`` (a policy file overridden by flags), gets the collateral
(``--collateral FILE`` or ``--pccs-url URL``), evaluates the quote, prints the report. Its own
exit codes: 0 accepted, 1 refused (or no collateral from the PCCS), 2 usage error. The wall
clock is read here, at the edge, and only when ``--now`` is not given.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cleanroom.collateral_source import add_collateral_arguments, collateral_from_args
from cleanroom.commands.output import err, print_report
from protocol.errors import AttestationError, PolicyInvalid

__all__ = ["QUOTE_ACCEPTED", "QUOTE_REFUSED", "QUOTE_USAGE", "register"]

QUOTE_ACCEPTED, QUOTE_REFUSED, QUOTE_USAGE = 0, 1, 2


class _UsageError(Exception):
    """A flag or an input file is unusable; reported with exit code 2."""


def register(subparsers: Any) -> None:
    """Add the ``attestation`` command group to a ``parser.add_subparsers()`` object."""
    group = subparsers.add_parser("attestation", help="inspect and verify SGX attestation")
    commands = group.add_subparsers(dest="attestation_command", metavar="COMMAND", required=True)
    vq = commands.add_parser(
        "verify-quote",
        help="verify a raw SGX DCAP quote against collateral and a verifier policy",
        description="Verify a raw SGX quote. Flags override the --verifier-policy file.",
    )
    vq.add_argument("quote", metavar="QUOTE", type=Path, help="raw quote file")
    # A bare quote has no bundle collateral to fall back on: one of the two is required.
    add_collateral_arguments(vq, required=True)
    vq.add_argument("--now", type=int, metavar="UNIX",
                    help="verification time in Unix seconds (default: the wall clock)")
    vq.add_argument("--verifier-policy", type=Path, metavar="FILE", help="verifier policy TOML")
    vq.add_argument("--mrenclave", action="append", metavar="HEX",
                    help="allowed MRENCLAVE (repeatable; replaces the policy's list)")
    vq.add_argument("--mrsigner", metavar="HEX", help="required MRSIGNER")
    vq.add_argument("--isv-prod-id", type=int, metavar="N", help="required ISVPRODID")
    vq.add_argument("--min-isv-svn", type=int, metavar="N", help="minimum ISVSVN")
    vq.add_argument("--allow-status", action="append", metavar="STATUS",
                    help="allowed TCB status (repeatable; replaces the policy's list)")
    vq.add_argument("--report-data", metavar="HEX", help="expected 64-byte REPORTDATA")
    vq.add_argument("--insecure-allow-simulation", action="store_true",
                    help="INSECURE: accept quotes signed by a simulation PKI")
    vq.add_argument("--simulation-root", type=Path, metavar="DERFILE",
                    help="simulation root CA certificate (DER) to verify against")
    vq.add_argument("--json", action="store_true", help="print the report as JSON")
    vq.set_defaults(func=_verify_quote)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise _UsageError(f"cannot read {what} file {path}") from None


def _policy_from_args(args: argparse.Namespace) -> Any:
    from attestation.verifier.verify import VerifierPolicy

    policy = VerifierPolicy()
    if args.verifier_policy is not None:
        policy = VerifierPolicy.from_toml(args.verifier_policy)
    changes: dict[str, Any] = {}
    if args.mrenclave:
        changes["mr_enclaves"] = tuple(args.mrenclave)
    for flag in ("mrsigner", "isv_prod_id", "min_isv_svn"):
        if getattr(args, flag) is not None:
            changes["mr_signer" if flag == "mrsigner" else flag] = getattr(args, flag)
    if args.allow_status:
        changes["allowed_statuses"] = tuple(args.allow_status)
    if args.insecure_allow_simulation:
        changes["allow_simulation"] = True
    return policy.replace(**changes)


def _expected_report_data(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        expected = bytes.fromhex(text)
    except ValueError:
        raise _UsageError("--report-data must be hex") from None
    if len(expected) != 64:
        raise _UsageError("--report-data must be 64 bytes (128 hex digits)")
    return expected


def _verify_quote(args: argparse.Namespace) -> int:
    from attestation.verifier.verify import evaluate_quote  # party side only; pulls in dcap-qvl

    try:
        policy = _policy_from_args(args)
        quote = _read(args.quote, "quote")
        root = None if args.simulation_root is None else _read(args.simulation_root, "root")
        expected = _expected_report_data(args.report_data)
    except _UsageError as exc:
        err(f"error: {exc}")
        return QUOTE_USAGE
    except PolicyInvalid as exc:
        err(f"error [{exc.code}]: {exc.message}")
        return QUOTE_USAGE
    if policy.allow_simulation:
        err("WARNING: --insecure-allow-simulation: simulated quotes prove nothing")
    now = int(time.time()) if args.now is None else args.now
    try:
        collateral = collateral_from_args(args, quote)
    except OSError:
        err(f"error: cannot read collateral file {args.collateral}")
        return QUOTE_USAGE
    except AttestationError as exc:  # the PCCS had none: no verdict on the quote, but no pass
        err(f"error [{exc.code}]: {exc.message}")
        return QUOTE_REFUSED
    assert collateral is not None  # add_collateral_arguments(required=True)
    try:
        report = evaluate_quote(quote, collateral, now=now, policy=policy, root_ca_der=root,
                                expected_report_data=expected)
    except ValueError as exc:  # an argument the verifier cannot take, e.g. --now out of range
        err(f"error: {exc}")
        return QUOTE_USAGE
    print_report(report, args.json)
    return QUOTE_ACCEPTED if report.accepted else QUOTE_REFUSED
