"""``cleanroom query``: run an analysis the policy allows and print (or save) its result."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cleanroom.client import Client
from cleanroom.commands.arguments import (
    UsageError,
    add_attestation_flags,
    add_host,
    add_key_file,
    add_policy,
    command,
    read_policy,
)
from cleanroom.commands.output import err, print_result
from cleanroom.commands.verify_first import verify_before_sending
from cleanroom.keys import PartyKeys
from cleanroom.result_files import save_result

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "query", "Run an analysis the policy allows and print its result",
                "Verifies the attestation first, signs the request with your key, opens the "
                "result encrypted to you and checks the enclave's signature on it. Results carry "
                "differential-privacy noise; the footer says how much budget was spent.")
    add_host(p)
    add_policy(p)
    add_key_file(p)
    p.add_argument("analysis", metavar="ANALYSIS", help="analysis id from the policy, e.g. overlap")
    p.add_argument("--group-by", action="append", default=[], metavar="DATASET.COLUMN",
                   help="dimension to group by (repeatable)")
    p.add_argument("--metric", metavar="DATASET.COLUMN", help="metric to sum (aggregate analyses)")
    p.add_argument("--cohort", action="append", default=[], metavar="DATASET.COLUMN=VALUE",
                   help="cohort to activate (cohort_activation analyses; repeatable)")
    p.add_argument("--save", type=Path, metavar="FILE",
                   help="also save the signed result with its attestation, for `cleanroom check`")
    p.add_argument("--json", action="store_true", help="print the result document as JSON")
    add_attestation_flags(p)
    p.set_defaults(func=_query)


def _cohort_pair(text: str) -> tuple[str, str]:
    column, sep, value = text.partition("=")
    if not sep or column.count(".") != 1:
        raise UsageError(f"--cohort wants DATASET.COLUMN=VALUE, not {text!r}")
    return column, value


def _params(args: argparse.Namespace) -> dict[str, Any]:
    if args.cohort:
        if args.group_by or args.metric is not None:
            raise UsageError("--cohort (cohort_activation) cannot be combined with --group-by or --metric")
        return {"cohort": dict(_cohort_pair(text) for text in args.cohort)}
    params: dict[str, Any] = {"group_by": list(args.group_by)}
    if args.metric is not None:
        params["metric"] = args.metric
    return params


def _query(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    params = _params(args)
    client = Client(args.host)
    enclave = verify_before_sending(args, client, raw)
    result = client.query(enclave, keys, policy, args.analysis, params)
    print_result(result, args.json)
    if args.save is not None:
        assert client.last_bundle is not None  # set by the verify above
        save_result(args.save, result, client.last_bundle)
        err(f"saved the signed result and its attestation to {args.save} "
            f"(check it offline with `cleanroom check {args.save} --policy {args.policy}`)")
    return 0
