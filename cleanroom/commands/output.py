"""What the commands print, shared: stderr lines, JSON, reports, pinned keys and results."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from cleanroom.result_display import jsonable, render_table
from cleanroom.result_open import Result

__all__ = ["err", "pinned_lines", "print_json", "print_report", "print_result"]


def err(text: str) -> None:
    print(text, file=sys.stderr)


def print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def print_report(report: Any, as_json: bool, file: TextIO | None = None) -> None:
    """Print a ``VerificationReport`` as a human summary or as JSON."""
    out = sys.stdout if file is None else file
    if as_json:
        print(json.dumps(report.to_json_dict(), indent=2), file=out)
    else:
        print("\n".join(report.summary_lines()), file=out)


def pinned_lines(enclave: Any, policy_hash: bytes) -> list[str]:
    return [
        f"policy hash:  {policy_hash.hex()} (equals the hash of your copy of the policy)",
        f"pinned keys:  enc_pub {enclave.enc_pub.hex()}",
        f"              sig_pub {enclave.sig_pub.hex()}",
    ]


def print_result(result: Result, as_json: bool) -> None:
    if as_json:
        print_json(jsonable(result.body))
    else:
        print(render_table(result))
