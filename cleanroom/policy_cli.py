"""``cleanroom policy lint POLICY [--json]``: validate a policy and preview its privacy cost.

Exit codes: 0 valid, 1 invalid (the errors name the field), 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cleanroom.policy_lint import lint_policy, render_text

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_UNREADABLE", "main", "register"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def _cmd_lint(args: argparse.Namespace) -> int:
    try:
        raw = Path(args.policy).read_bytes()
    except OSError as exc:
        print(f"error [io_error]: {exc.strerror or exc}: {args.policy}", file=sys.stderr)
        return EXIT_UNREADABLE
    report = lint_policy(raw)
    if args.json:
        print(json.dumps({"policy": str(args.policy), **report.to_json()}, indent=2))
    else:
        print(render_text(report), file=sys.stdout if report.valid else sys.stderr)
    return EXIT_OK if report.valid else EXIT_INVALID


def register(subparsers: Any) -> None:
    """Add ``lint`` to the sub-commands of ``cleanroom policy`` (an ``add_subparsers()`` object)."""
    p = subparsers.add_parser(
        "lint", help="Validate a policy and preview each analysis's privacy cost",
        description="Validate a policy and print, without any data, each analysis's "
                    "sensitivities, noise scales, threshold tau, budget use per query and how "
                    "many queries the budget allows. Errors name the offending field.")
    p.add_argument("policy", type=Path, metavar="POLICY", help="policy TOML file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_lint)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``python -m cleanroom.policy_cli lint POLICY``."""
    parser = argparse.ArgumentParser(prog="cleanroom policy")
    register(parser.add_subparsers(dest="policy_command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
