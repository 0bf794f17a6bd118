"""``cleanroom upload`` (encrypt and stream a dataset, with progress) and ``cleanroom uploads``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from cleanroom.client import Client, UploadProgress, require_party
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
from cleanroom.keys import PartyKeys

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
    p.add_argument("file", type=Path, metavar="FILE", help="CSV (with a header line) or Parquet file")
    p.add_argument("--default-country-code", metavar="CC",
                   help="for phone identifiers without a leading '+': a calling code (44, +1) or "
                        "an ISO 3166 region (GB); see docs/normalisation.md")
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

    p = command(subparsers, "uploads", "List the uploads the enclave has accepted",
                "As reported by the host (informational; the signed receipts are the proof).")
    add_host(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_uploads)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


class _ProgressPrinter:
    """Progress on stderr: an updating line on a terminal, a line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.latest: UploadProgress | None = None

    def __call__(self, p: UploadProgress) -> None:
        if self.latest is None and p.ignored_columns:
            err("ignored columns (not named by the policy, never uploaded): "
                + ", ".join(p.ignored_columns))
        self.latest = p
        now = time.monotonic()
        if now - self.last >= (0.2 if self.tty else 5.0):
            self.last = now
            self._show(p)

    def _show(self, p: UploadProgress) -> None:
        share = f" ({100 * p.bytes_done // p.bytes_total}%)" if p.bytes_total else ""
        line = (f"read {_human_bytes(p.bytes_done)}{share}, {p.rows_done:,} rows, "
                f"sent {_human_bytes(p.sent_bytes)}, {_human_bytes(p.throughput)}/s")
        print(("\r" + line + "   ") if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.latest is not None:
            self._show(self.latest)  # the final totals, whatever the throttle skipped
            if self.tty:
                print(file=sys.stderr)


def _upload(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    require_party(policy, keys)  # before the network: Client.upload checks it again
    client = Client(args.host)
    enclave = verify_before_sending(args, client, raw)
    printer = _ProgressPrinter()
    try:
        receipt = client.upload(enclave, keys, policy, args.dataset, args.file, progress=printer,
                                chunk_size=args.chunk_mib * 1024 * 1024,
                                default_country_code=args.default_country_code, mode=args.mode)
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
    print(f"{'upload_id':32}  {'party':12}  {'dataset':14}  {'rows':>12}  accepted_at")
    for u in uploads:
        print(f"{u.get('upload_id', '?'):32}  {u.get('party', '?'):12}  {u.get('dataset', '?'):14}  "
              f"{u.get('rows', 0):>12,}  {u.get('accepted_at', '?')}")
    if not uploads:
        print("(none)")
    return 0
