"""Render and check the enclave's Gramine manifest without Gramine.

    python -m manifests.check [--profile sgx|direct] [--template PATH] [--define k=v]... [--json]
    python -m manifests.check --tcb-size

Renders the template with a stand-in of gramine-manifest's Jinja environment, parses it with
tomllib and checks it against the Gramine 1.9 key schema (docs/gramine.md), the production
profile, the mounts and the trusted-file set: exactly enclave/ and protocol/ of this repository.
Every finding is one line with a short stable id; the exit status is non-zero on any finding.
--tcb-size prints the line count of enclave/ and protocol/ instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from manifests.gramine_check.checker import check
from manifests.gramine_check.findings import as_json, as_text
from manifests.gramine_check.layout import DEFAULT_TEMPLATE, PROFILES
from manifests.gramine_check.tcb_size import tcb_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manifests.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", choices=PROFILES, default="sgx")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--define", "-D", action="append", default=[], metavar="K=V",
                        help="template variable, as gramine-manifest -D (repeatable)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--tcb-size", action="store_true",
                        help="print the line count of the trusted code (enclave/ and protocol/)")
    args = parser.parse_args(argv)
    # A bare -Dflag is true, as in gramine-manifest.
    defines = {k: v if sep else "true" for k, sep, v in (d.partition("=") for d in args.define)}

    if args.tcb_size:
        lines, status = tcb_size(args.template, defines)
        print("\n".join(lines))
        return status
    report = check(args.profile, args.template, defines)
    print(as_json(report) if args.json else as_text(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
