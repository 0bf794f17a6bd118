"""``cleanroom check``: verify a saved signed result offline."""

from __future__ import annotations

import argparse
import json
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
from cleanroom.commands.output import (
    add_output_flags,
    emit,
    err,
    output_format,
    pinned_lines,
    refuse_existing,
)
from cleanroom.offline_check import check_saved_result
from cleanroom.result_display import render_table
from cleanroom.result_export import result_csv, result_json
from protocol.errors import CollateralExpired

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "check", "Verify a saved signed result offline",
                "Re-verifies the saved attestation (which binds the enclave's signing key and "
                "the policy hash), then the result's signature and its policy. No network.")
    p.add_argument("file", type=Path, metavar="FILE", help="file written by `cleanroom query --save`")
    add_policy(p)
    add_now(p)
    add_output_flags(p)
    add_attestation_flags(p)
    p.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    verifier = verifier_policy(args)
    now = now_from_args(args)
    output_format(args)  # a contradictory --json/--format is a usage error
    refuse_existing(args.output)
    try:
        result, enclave = check_saved_result(args.file, raw, verifier, now, collateral_for(args))
    except CollateralExpired as exc:
        exc.message += (" (collateral is short-lived: pass --now with a time when it was valid, "
                        "e.g. the result's created_at)")
        raise
    fmt = output_format(args, result)
    if fmt == "json":
        emit(json.dumps({"verified": True, "attestation": enclave.report.to_json_dict(),
                         "sig_pub": enclave.sig_pub.hex(), "result": result_json(result)},
                        indent=2) + "\n", args, "the verified result (json)")
    elif fmt == "csv":
        err("result signature: ok (signed by the attested enclave's sig_pub)")
        emit(result_csv(result), args, "the verified result (csv)")
    else:
        emit("\n".join([*enclave.report.summary_lines(), *pinned_lines(enclave, policy.hash),
                        "result signature: ok (signed by the attested enclave's sig_pub)", "",
                        render_table(result)]) + "\n", args, "the verified result (table)")
    return 0
