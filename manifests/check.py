"""Render and check the enclave's Gramine manifest without Gramine.

    python -m manifests.check [--profile sgx|direct] [--template PATH] [--define k=v]... [--json]
    python -m manifests.check --tcb-size
    python -m manifests.check --bom OUT.json [--manifest build/.../x.manifest[.sgx]] [--sigstruct J]
    python -m manifests.check --bom-diff A.json B.json

Renders the template with a stand-in of gramine-manifest's Jinja environment, parses it with
tomllib and checks it against the Gramine 1.9 key schema (docs/gramine.md), the production
profile, the mounts and the trusted-file set: exactly enclave/ and protocol/ of this repository.
Every finding is one line with a short stable id; the exit status is non-zero on any finding.
--tcb-size prints the line count of enclave/ and protocol/ instead. --bom writes the bill of
materials (every trusted file, its SHA-256 and origin) of a rendered manifest, or of the stand-in
render of --template; --bom-diff prints what differs between two of them (exit 1 if anything).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from manifests.gramine_check import bom
from manifests.gramine_check.checker import check
from manifests.gramine_check.findings import Report, as_json, as_text
from manifests.gramine_check.layout import DEFAULT_TEMPLATE, PROFILES
from manifests.gramine_check.render import default_variables, load
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
    parser.add_argument("--bom", type=Path, metavar="OUT", help="write the bill of materials")
    parser.add_argument("--manifest", type=Path, help="with --bom: a manifest rendered by Gramine")
    parser.add_argument("--sigstruct", type=Path, help="with --bom: sigstruct JSON (adds mr_enclave)")
    parser.add_argument("--bom-diff", nargs=2, type=Path, metavar=("A", "B"),
                        help="compare two bills of materials")
    args = parser.parse_args(argv)
    # A bare -Dflag is true, as in gramine-manifest.
    defines = {k: v if sep else "true" for k, sep, v in (d.partition("=") for d in args.define)}

    if args.bom_diff:
        a, b = (json.loads(p.read_text()) for p in args.bom_diff)
        lines = bom.diff(a, b)
        print("\n".join(lines) if lines else "bill of materials: identical")
        return 1 if lines else 0
    if args.bom:
        return _write_bom(args, defines)
    if args.tcb_size:
        lines, status = tcb_size(args.template, defines)
        print("\n".join(lines))
        return status
    report = check(args.profile, args.template, defines)
    print(as_json(report) if args.json else as_text(report))
    return 0 if report.ok else 1


def _write_bom(args: argparse.Namespace, defines: dict[str, str]) -> int:
    if args.manifest:
        manifest = tomllib.loads(args.manifest.read_text())
    else:
        report = Report(args.profile, str(args.template), default_variables(args.profile) | defines)
        loaded = load(args.template, report.variables, report)
        if loaded is None:
            print(as_text(report))
            return 1
        manifest = loaded
    result = bom.bill_of_materials(manifest, manifest_file=args.manifest)
    if args.sigstruct:
        sig = json.loads(args.sigstruct.read_text())
        result |= {k: sig[k] for k in ("mr_enclave", "mr_signer", "isv_prod_id", "isv_svn") if k in sig}
    args.bom.write_text(bom.dumps(result))
    missing = sum(1 for row in result["files"] if row.get("missing"))
    print(f"{args.bom}: {len(result['files'])} trusted files ({missing} not present here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
