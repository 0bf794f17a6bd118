"""``cleanroom upload`` (encrypt and stream a dataset), ``cleanroom validate``, ``cleanroom uploads``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cleanroom.client import Client, require_party
from cleanroom.commands.arguments import (
    add_attestation_flags,
    add_host,
    add_key_file,
    add_policy,
    command,
    read_policy,
)
from cleanroom.commands.output import err, print_json
from cleanroom.commands.verify_first import verify_before_sending
from cleanroom.formatting import iso_utc
from cleanroom.keys import PartyKeys
from cleanroom.preflight import check_input_file, check_own_dataset
from cleanroom.upload_progress import ProgressPrinter, TableProgress
from protocol.errors import InvalidInput
from protocol.policy import Dataset, Policy

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "upload", "Encrypt and upload one of your datasets to the enclave",
                "Verifies the attestation first, reads FILE (CSV or Parquet), normalises and "
                "SHA-256-hashes the identifier column the policy names, encodes dimensions and "
                "metrics as the policy declares, encrypts everything to the attested enclave, "
                "streams it with progress on stderr, and checks the enclave-signed receipt. "
                "Columns the policy does not name are never uploaded. The first upload of a "
                "dataset creates it; a later one needs --append or --replace. Running the same "
                "upload again (same file, dataset and mode) after a lost receipt returns the "
                "receipt of the upload already committed and stores nothing twice.")
    add_host(p)
    add_policy(p)
    add_key_file(p)
    p.add_argument("--dataset", required=True, metavar="NAME", help="policy dataset to upload")
    _add_file_flags(p)
    p.add_argument("--skip-invalid", action="store_true",
                   help="upload the valid rows and leave out those with a refused cell; reads the "
                        "file twice (the counts, per column, are signed into the upload header "
                        "and shown in the receipt). Without it the first refused cell stops the "
                        "upload, after the full validation report is printed")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--append", dest="mode", action="store_const", const="append",
                       help="add these rows to the dataset's earlier uploads")
    which.add_argument("--replace", dest="mode", action="store_const", const="replace",
                       help="replace the dataset's earlier uploads: their rows are deleted")
    p.set_defaults(mode="create")  # without either, refused if the dataset already has uploads
    p.add_argument("--chunk-mib", type=int, default=4, choices=range(1, 9), metavar="N",
                   help="plaintext MiB per encrypted chunk, 1-8 (default 4)")
    add_attestation_flags(p)
    p.set_defaults(func=_upload)

    p = command(subparsers, "validate", "Check a dataset file against the policy, send nothing",
                "Reads all of FILE exactly as `upload` would, with no network and no keys, and "
                "prints per column the rows read, refused identifiers by reason, undeclared "
                "dimension values (most frequent first), metrics the enclave will clamp, "
                "distinct identifiers and exact duplicate rows. The report quotes your values: "
                "it stays on your machine. Exit status 1 if any cell would be refused.")
    add_policy(p)
    p.add_argument("--dataset", required=True, metavar="NAME", help="policy dataset to check against")
    _add_file_flags(p)
    p.set_defaults(func=_validate)

    p = command(subparsers, "uploads", "List the uploads the enclave has accepted",
                "As reported by the host (informational; the signed receipts are the proof).")
    add_host(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_uploads)


def _add_file_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE",
                   help="CSV with a header line (also .csv.gz, .csv.zst) or Parquet file")
    p.add_argument("--default-country-code", metavar="CC",
                   help="for phone identifiers without a leading '+': a calling code (44, +1) or "
                        "an ISO 3166 region (GB); see docs/normalisation.md")
    p.add_argument("--delimiter", default=",", metavar="C",
                   help="CSV field separator: one character, or 'tab' (default ',')")
    p.add_argument("--reject-file", type=Path, metavar="F",
                   help="write every refused cell (line, column, reason, value) to F as CSV")
    p.add_argument("--progress", action="store_true",
                   help="print progress on stderr even when it is not a terminal")


def _delimiter(args: argparse.Namespace) -> str:
    return "\t" if args.delimiter in ("tab", "\\t") else args.delimiter


def _dataset(policy: Policy, name: str) -> Dataset:
    dataset = policy.dataset(name)
    if dataset is None:
        raise InvalidInput(f"the policy has no dataset {name!r}; it has: "
                           + ", ".join(d.name for d in policy.datasets))
    return dataset


def _report(args: argparse.Namespace, dataset: Dataset) -> Any:
    """Read the whole file and print the validation report on stderr."""
    from cleanroom.validation import validate

    printer = ProgressPrinter(enabled=True if args.progress else None, what="checked")
    try:
        report = validate(args.file, dataset, default_country_code=args.default_country_code,
                          delimiter=_delimiter(args), reject_file=args.reject_file,
                          progress=lambda table: printer(TableProgress(table)))
    finally:
        printer.done()
    for line in report.lines():
        err(line)
    if args.reject_file is not None:
        err(f"refused cells written to {args.reject_file}")
    return report


def _check_header(args: argparse.Namespace, dataset: Dataset) -> None:
    """The file's columns against the policy, before anything touches the network."""
    from cleanroom.tables import open_table

    with open_table(args.file, dataset, default_country_code=args.default_country_code,
                    delimiter=_delimiter(args)):
        pass


def _validate(args: argparse.Namespace) -> int:
    _, policy = read_policy(args.policy)
    check_input_file(args.file)
    report = _report(args, _dataset(policy, args.dataset))
    return 0 if report.ok else 1


def _upload(args: argparse.Namespace) -> int:
    from cleanroom.tables import RefusedCell

    raw, policy = read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    require_party(policy, keys)  # before the network: Client.upload checks it again
    check_own_dataset(policy, keys.party_id, args.dataset)
    check_input_file(args.file)
    dataset = _dataset(policy, args.dataset)
    _check_header(args, dataset)
    skipped = None
    if args.skip_invalid or args.reject_file is not None:
        report = _report(args, dataset)  # the whole file, before the attestation round trip
        if not report.ok and not args.skip_invalid:
            raise InvalidInput(report.first_problem)
        skipped = report.skipped
    client = Client(args.host)
    enclave = verify_before_sending(args, client, raw)
    printer = ProgressPrinter(enabled=True if args.progress else None)
    try:
        receipt = client.upload(enclave, keys, policy, args.dataset, args.file, progress=printer,
                                chunk_size=args.chunk_mib * 1024 * 1024,
                                default_country_code=args.default_country_code, mode=args.mode,
                                skip_invalid=args.skip_invalid, skipped=skipped,
                                delimiter=_delimiter(args))
    except RefusedCell:
        printer.done()
        printer.enabled = False  # the final totals are out; the report follows
        err("the upload stopped at the first refused cell; nothing was accepted. The whole file:")
        _report(args, dataset)
        raise
    finally:
        printer.done()
    print("\n".join(receipt.summary_lines()))
    return 0


def _uploads(args: argparse.Namespace) -> int:
    uploads = Client(args.host).uploads()
    if args.json:
        print_json(uploads)
        return 0
    print("accepted uploads (as listed by the host; the signed receipts are the proof):")
    print(f"{'upload_id':32}  {'party':12}  {'dataset':14}  {'rows':>12}  accepted (UTC)")
    for u in uploads:
        print(f"{u.get('upload_id', '?'):32}  {u.get('party', '?'):12}  {u.get('dataset', '?'):14}  "
              f"{u.get('rows', 0):>12,}  {iso_utc(u.get('accepted_at', '?'))}")
    if not uploads:
        print("(none)")
    return 0
