"""``cleanroom match-back RESULT --input OWN_FILE --dataset D``: your rows whose identifiers an
activation released, as a CSV your ad tools can load. Runs on your machine only."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from cleanroom.commands.arguments import (
    UsageError,
    add_attestation_flags,
    add_now,
    add_policy,
    collateral_for,
    command,
    now_from_args,
    read_policy,
    verifier_policy,
)
from cleanroom.commands.output import err, refuse_existing
from cleanroom.formatting import count_text
from cleanroom.match_back import digests_from_export, match_back

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "match-back", "Map an activation's released identifiers back to your own rows",
                "Reads the released SHA-256 digests from RESULT (a saved result from `cleanroom "
                "query --save`, verified offline first, or the CSV/JSON that `cleanroom query "
                "--output` wrote), hashes the identifier column of your own file exactly as an "
                "upload does, and writes your rows whose identifier was released, with all their "
                "columns. Nothing is sent anywhere.")
    p.add_argument("result", type=Path, metavar="RESULT",
                   help="saved result (--save) or activation export (--output FILE.csv/.json)")
    p.add_argument("--input", required=True, type=Path, metavar="OWN_FILE",
                   help="your own file (CSV or Parquet) with the dataset's identifier column")
    p.add_argument("--dataset", required=True, metavar="DATASET",
                   help="the policy dataset the file holds (its identifier column and normalisation)")
    p.add_argument("--output", "-o", type=Path, metavar="FILE",
                   help="write the matched rows here (CSV; never overwritten; default: stdout)")
    p.add_argument("--default-country-code", metavar="CODE",
                   help="for phone identifiers written without +, as for `cleanroom upload`")
    add_policy(p)
    add_now(p)
    add_attestation_flags(p)
    p.set_defaults(func=_match_back)


def _is_saved_result(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and "signed" in doc and "attestation" in doc


def _released(args: argparse.Namespace, raw_policy: bytes) -> set[bytes]:
    if not _is_saved_result(args.result):
        err(f"reading the digests of {args.result} (your own export: not re-verified)")
        return digests_from_export(args.result)
    from cleanroom.offline_check import check_saved_result

    result, _ = check_saved_result(args.result, raw_policy, verifier_policy(args), now_from_args(args),
                                   collateral_for(args))
    if result.body.get("kind") != "cohort_activation":
        raise UsageError(f"{args.result} holds a {result.body.get('kind')} result, not an activation")
    err(f"verified {args.result}: signed by the attested enclave")
    return {row[0] for row in result.rows}


def _match_back(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    dataset = policy.dataset(args.dataset)
    if dataset is None:
        raise UsageError(f"the policy has no dataset {args.dataset!r}; it has: "
                         + ", ".join(d.name for d in policy.datasets))
    refuse_existing(args.output)
    released = _released(args, raw)
    if args.output is None:
        stats = match_back(args.input, dataset, released, sys.stdout,
                           default_country_code=args.default_country_code)
    else:
        with open(args.output, "x", encoding="utf-8", newline="") as out:
            try:
                stats = match_back(args.input, dataset, released, out,
                                   default_country_code=args.default_country_code)
            except BaseException:
                with contextlib.suppress(OSError):  # no half-written file is left behind
                    args.output.unlink()
                raise
    err(f"{count_text(stats.rows_written)} of {count_text(stats.rows_read)} rows of {args.input} "
        f"have a released identifier ({count_text(stats.released)} released"
        + (f", {count_text(stats.unmatched)} of them match no row of this file" if stats.unmatched
           else "") + ")" + (f"; written to {args.output}" if args.output else ""))
    return 0
