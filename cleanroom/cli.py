"""``cleanroom``: the party's command line. It assembles the command groups of ``cleanroom.commands``.

Exit codes: 0 success, 1 a refused or failed operation (``error [code]: message`` on stderr,
never a traceback), 2 a usage error. ``policy lint`` and ``attestation verify-quote`` return
their own codes (see their modules). The clock and fresh randomness are read in the commands,
at the edge; every check lives in the library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cleanroom.commands import attestation, audit, check, delete, keys, policy, query, upload, verify
from cleanroom.commands.arguments import UsageError
from protocol.errors import CleanroomError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# In the order ``cleanroom --help`` lists them.
_GROUPS = (keys, policy, verify, upload, query, check, delete, audit, attestation)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleanroom",
        description="Party-side client of the SGX data clean room: verify the enclave, upload "
                    "your data encrypted to it, run the analyses the policy allows, and check "
                    "signed results.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"cleanroom: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CleanroomError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error [io_error]: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
