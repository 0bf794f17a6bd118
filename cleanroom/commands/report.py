"""``cleanroom report``: verify a saved result offline, then write it as one HTML page."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
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

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "report", "Write a verified saved result as a self-contained HTML report",
                "Verifies FILE exactly as `cleanroom check` does (attestation, the enclave key "
                "this client remembers, the result's signature and policy) and only then writes "
                "one HTML file: the verification and privacy summaries, charts with 95% "
                "intervals, and every released cell. No network is needed to view it.")
    p.add_argument("file", type=Path, metavar="FILE", help="file written by `cleanroom query --save`")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="HTML file to write (refuses to overwrite without --force)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    add_policy(p)
    add_now(p)
    add_attestation_flags(p)
    p.set_defaults(func=_report)


def _write(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    # Atomic: a viewer never opens half a report, and a failed run leaves no file behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".report-",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _report(args: argparse.Namespace) -> int:
    from cleanroom.audit import default_head_store
    from cleanroom.offline_check import check_saved_result
    from cleanroom.report_html import render_report
    from protocol.errors import CollateralExpired

    if args.output.exists() and not args.force:  # before the work, not after it
        raise UsageError(f"{args.output} exists; pass --force to overwrite it")
    raw, policy = read_policy(args.policy)
    verifier = verifier_policy(args)
    store = default_head_store()
    try:
        result, enclave = check_saved_result(args.file, raw, verifier, now_from_args(args),
                                             collateral_for(args), head_store=store)
    except CollateralExpired as exc:
        exc.message += (" (collateral is short-lived: pass --now with a time when it was valid, "
                        "e.g. the result's created_at)")
        raise
    remembered = store.load(policy.collaboration_id)
    page = render_report(result, enclave, seen=None if remembered is None else remembered[1],
                         generated_at=int(time.time()))
    _write(args.output, page, args.force)
    mode = "SIMULATED enclave" if enclave.simulated else f"SGX enclave {enclave.report.mr_enclave}"
    print(f"verified ({mode}, result signature ok); wrote {args.output}")
    return 0
