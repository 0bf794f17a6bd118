"""``cleanroom``: the party's command line. It assembles the command groups of ``cleanroom.commands``.

Exit codes: 0 success, 1 a refused or failed operation (``error [code]: message`` on stderr,
never a traceback), 2 a usage error. ``policy lint`` and ``attestation verify-quote`` return
their own codes (see their modules). The clock and fresh randomness are read in the commands,
at the edge; every check lives in the library.

Start-up is kept light: ``COMMANDS`` names each command's module and one-line summary, and only
the module of the command being run is imported (with it, NumPy, HTTP and crypto as needed).
``cleanroom --help`` imports none of them. ``tests/cleanroom/test_cli_start.py`` checks that the
table matches what the modules register.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cleanroom.commands.arguments import UsageError, apply_profile
from protocol.errors import CleanroomError

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# command -> (module in cleanroom.commands that registers it, summary), in `--help` order.
COMMANDS: dict[str, tuple[str, str]] = {
    "keygen": ("keys", "Generate a party's signing and result key pair"),
    "policy": ("policy", "Work with collaboration policy files"),
    "profile": ("profile", "Show or set the defaults for --host, --policy, --keys and the verifier"),
    "verify": ("verify", "Verify the enclave's attestation and print what was checked"),
    "upload": ("upload", "Encrypt and upload one of your datasets to the enclave"),
    "uploads": ("upload", "List the uploads the enclave has accepted"),
    "validate": ("upload", "Check a dataset file against the policy, send nothing"),
    "query": ("query", "Run an analysis the policy allows and print its result"),
    "results": ("results", "List the results sent to you, and fetch one"),
    "check": ("check", "Verify a saved signed result offline"),
    "match-back": ("match_back", "Map an activation's released identifiers back to your own rows"),
    "budget": ("budget", "Show each dataset's remaining privacy budget (free, signed)"),
    "report": ("report", "Write a verified saved result as a self-contained HTML report"),
    "witness": ("witness", "Co-sign the charges to your datasets (policy witness mode)"),
    "delete": ("delete", "Delete one of your datasets from the clean room"),
    "audit": ("audit", "Download and verify the enclave's audit log"),
    "trust": ("trust", "Show or forget the enclave key and audit head this client remembers"),
    "attestation": ("attestation", "inspect and verify SGX attestation"),
}


def _command_word(argv: Sequence[str]) -> str | None:
    # The top-level parser has no options that take a value, so the command is the first word.
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the named command in full, the others as one-line stubs.

    With ``argv`` None every command is registered in full (for tools that walk the parser).
    """
    parser = argparse.ArgumentParser(
        prog="cleanroom",
        description="Party-side client of the SGX data clean room: verify the enclave, upload "
                    "your data encrypted to it, run the analyses the policy allows, and check "
                    "signed results. Defaults for the common flags: `cleanroom profile --help`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    word = None if argv is None else _command_word(argv)
    wanted = ({module for module, _ in COMMANDS.values()} if argv is None
              else {COMMANDS[word][0]} if word in COMMANDS else set())
    registered: set[str] = set()
    for name, (module, summary) in COMMANDS.items():
        if module in wanted:
            if module not in registered:
                importlib.import_module(f"cleanroom.commands.{module}").register(commands)
                registered.add(module)
        else:
            commands.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        apply_profile(args)
        return int(args.func(args))
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"cleanroom: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CleanroomError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        if exc.code == "rollback_detected":
            from cleanroom.trust import rollback_hint

            print(rollback_hint(getattr(args, "policy", None)), file=sys.stderr)
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
