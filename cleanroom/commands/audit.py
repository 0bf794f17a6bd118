"""``cleanroom audit download | verify``: save the enclave's audit log, verify it offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cleanroom.audit_files import save_audit_download
from cleanroom.client import Client
from cleanroom.commands.arguments import (
    add_attestation_flags,
    add_host,
    add_now,
    add_policy,
    collateral_for,
    command,
    now_from_args,
    read_policy,
    verifier_policy,
)
from cleanroom.formatting import iso_utc
from cleanroom.offline_check import check_audit_download

__all__ = ["register"]


def register(subparsers: Any) -> None:
    group = command(subparsers, "audit", "Download and verify the enclave's audit log",
                    "The log is a hash chain of enclave-signed entries: uploads accepted, "
                    "queries run, budget charged, results released, datasets deleted.")
    commands = group.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    p = command(commands, "download", "Save the audit log and the attestation bundle",
                "Writes a JSON file for `cleanroom audit verify` (refuses to overwrite).")
    add_host(p)
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="file to write")
    p.set_defaults(func=_download)
    p = command(commands, "verify", "Verify a downloaded audit log end to end, offline",
                "Verifies the saved attestation (which binds the enclave's signing key and the "
                "policy), then every entry's signature and its link to the previous one; prints "
                "the entries.")
    p.add_argument("file", type=Path, metavar="FILE", help="file written by `cleanroom audit download`")
    add_policy(p)
    add_now(p)
    add_attestation_flags(p)
    p.set_defaults(func=_verify)


def _download(args: argparse.Namespace) -> int:
    client = Client(args.host)
    entries = client.audit_entries(0)
    save_audit_download(args.output, entries, client.attestation())
    print(f"saved {len(entries)} audit entries and the attestation bundle to {args.output}")
    return 0


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()[:16]
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def _verify(args: argparse.Namespace) -> int:
    raw, _policy = read_policy(args.policy)
    verifier = verifier_policy(args)
    log = check_audit_download(args.file, raw, verifier, now_from_args(args), collateral_for(args))
    for body in log.bodies:
        details = ", ".join(f"{k}={_short(v)}" for k, v in body["details"].items())
        print(f"{body['seq']:>6}  {iso_utc(body['at'])}  {body['kind']:16}  {details}")
    print(f"audit log verified: {log.head.seq} entries, every one signed by the attested enclave and "
          f"linked to the previous; head {log.head.hash.hex()}")
    if log.seen is None:
        print("note: this party has no remembered audit head for the collaboration, so a log cut "
              "short at its end could not be detected")
    else:
        print(f"it contains the head this party last saw (entry {log.seen.seq})")
    return 0
