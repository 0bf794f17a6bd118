"""What the commands print, shared: stderr lines, JSON, reports, pinned keys and results.

Every command that prints a result takes ``--format table|json|csv`` (``--json`` is
``--format json``) and ``--output FILE``. Without ``--format`` the format follows the output
file's suffix (``.csv``, ``.json``), else it is a table; an activation written to a file is CSV,
since its identifiers are what the file is for.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from cleanroom.commands.arguments import UsageError
from cleanroom.result_display import render_table
from cleanroom.result_export import result_csv, result_json
from cleanroom.result_open import Result

__all__ = ["FORMATS", "add_output_flags", "emit", "err", "output_format", "pinned_lines",
           "print_json", "print_report", "print_result", "refuse_existing", "result_text"]

FORMATS = ("table", "json", "csv")


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


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, metavar="{table,json,csv}",
                        help="table for people (default), json or csv for tools; each noised cell "
                             "gets its 95%% interval (± column, or <column>_ci95). A LEFT JOIN's last "
                             "row (persons with no row in the other dataset) has nil group keys: "
                             "(none) in a table, null in JSON, an empty CSV field")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the output to FILE (never overwritten) instead of the terminal; "
                             "its suffix .csv or .json picks the format")
    parser.add_argument("--json", action="store_true", help="same as --format json")


def output_format(args: argparse.Namespace, result: Result | None = None) -> str:
    """The format the flags ask for (see the module docstring)."""
    if getattr(args, "format", None):
        if args.json and args.format != "json":
            raise UsageError("--json is --format json; give one of them")
        return str(args.format)
    if getattr(args, "json", False):
        return "json"
    output = getattr(args, "output", None)
    if output is not None:
        suffix = Path(output).suffix.lower()
        if suffix in (".csv", ".json"):
            return suffix[1:]
        if result is not None and result.body.get("kind") == "cohort_activation":
            return "csv"
    return "table"


def refuse_existing(*paths: Path | None) -> None:
    """Fail before any network call if an output file exists: a spent query must not be lost
    to a name clash after the fact."""
    for path in paths:
        if path is not None and os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists (choose another name)", str(path))


def result_text(result: Result, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result_json(result), indent=2) + "\n"
    if fmt == "csv":
        return result_csv(result)
    return render_table(result) + "\n"


def emit(text: str, args: argparse.Namespace, what: str = "the output") -> None:
    """``text`` to ``--output`` (created, never overwritten) or to stdout."""
    output = getattr(args, "output", None)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(output, "x", encoding="utf-8", newline="") as f:
        f.write(text)
    err(f"wrote {what} to {output}")


def print_result(result: Result, args: argparse.Namespace) -> None:
    """The result in the format the flags ask for, to ``--output`` or stdout."""
    fmt = output_format(args, result)
    rows = len(result.body.get("rows", []))
    emit(result_text(result, fmt), args, f"{rows:,} rows ({fmt})")
