"""``cleanroom``: the party's command line. Thin commands over ``cleanroom.Client``.

Exit codes: 0 success, 1 a refused or failed operation (``error [code]: message`` on stderr,
never a traceback), 2 a usage error. The clock is read here, at the edge.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cleanroom.audit import check_on_chain, default_head_store, verify_audit_log
from cleanroom.client import Client, UploadProgress, own_collateral
from cleanroom.collateral_source import add_collateral_arguments, collateral_from_args
from cleanroom.keys import PartyKeys, bind_keys_into_policy, load_public
from cleanroom.results import Result, check_saved_result, render_table, save_result
from protocol.errors import (
    AttestationError,
    CleanroomError,
    CollateralExpired,
    InvalidInput,
    ProtocolError,
    RollbackDetected,
)
from protocol.policy import parse_policy

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_SIMULATION_WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! WARNING: --insecure-allow-simulation is set.                               !!
!! A SIMULATED enclave will be accepted: no SGX hardware protects your data,  !!
!! and whoever runs the host can read everything you upload. Testing only.    !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


class _Usage(Exception):
    """A flag combination or input the command cannot work with (exit 2)."""


def _err(text: str) -> None:
    print(text, file=sys.stderr)


# --- shared helpers -----------------------------------------------------------------------------


def _read_policy(path: Path) -> tuple[bytes, Any]:
    raw = path.read_bytes()
    return raw, parse_policy(raw)


def _verifier_policy(args: argparse.Namespace) -> Any:
    from attestation.verifier.verify import VerifierPolicy

    if args.insecure_allow_simulation:
        _err(_SIMULATION_WARNING)
    if args.verifier_policy is not None:
        policy = VerifierPolicy.from_toml(args.verifier_policy)
        return policy.replace(allow_simulation=True) if args.insecure_allow_simulation else policy
    if args.insecure_allow_simulation:
        return VerifierPolicy(allow_simulation=True)  # measured against the simulation MRENCLAVE
    raise _Usage("--verifier-policy FILE is required: it names the enclave measurement you trust "
                 "(or pass --insecure-allow-simulation for a simulated test enclave)")


def _pinned_lines(enclave: Any, policy_hash: bytes) -> list[str]:
    return [
        f"policy hash:  {policy_hash.hex()} (equals the hash of your copy of the policy)",
        f"pinned keys:  enc_pub {enclave.enc_pub.hex()}",
        f"              sig_pub {enclave.sig_pub.hex()}",
    ]


def _verified(args: argparse.Namespace, client: Client, raw_policy: bytes) -> Any:
    """Verify the enclave before anything is sent to it; one summary line on stderr."""
    verifier = _verifier_policy(args)
    try:
        enclave = client.verify(raw_policy, verifier, collateral_for=_collateral_for(args))
    except AttestationError as exc:
        exc.message += " (run `cleanroom verify` for the full report)"
        raise
    report = enclave.report
    mode = "SIMULATED" if enclave.simulated else "SGX"
    _err(f"attestation verified ({mode}): mr_enclave {report.mr_enclave}, "
         f"policy {enclave.policy_hash.hex()[:16]}..., sig_pub {enclave.sig_pub.hex()[:16]}...")
    return enclave


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
            _err("ignored columns (not named by the policy, never uploaded): "
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _print_result(result: Result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_jsonable(result.body), indent=2))
    else:
        print(render_table(result))


# --- commands -----------------------------------------------------------------------------------


def _cmd_keygen(args: argparse.Namespace) -> int:
    keys = PartyKeys.generate(args.party)
    private_path, public_path = keys.save(args.out)
    print(f"private keys: {private_path} (mode 0600; keep it secret, never share it)")
    print(f"public keys:  {public_path} (share it; `cleanroom policy bind-keys` puts it in a policy)")
    for name, value in keys.public_hex().items():
        print(f"  {name} = \"{value}\"")
    return EXIT_OK


def _cmd_policy_hash(args: argparse.Namespace) -> int:
    _raw, policy = _read_policy(args.policy)
    print(f"{policy.hash.hex()}  {args.policy} (collaboration {policy.collaboration_id})")
    return EXIT_OK


def _cmd_policy_bind_keys(args: argparse.Namespace) -> int:
    raw = args.policy.read_bytes()
    publics = {}
    for path in sorted(args.keys.glob("*.pub.json")):
        public = load_public(path)
        if path.name != f"{public.party_id}.pub.json":
            raise InvalidInput(f"{path}: names party {public.party_id!r}; the file name disagrees")
        publics[public.party_id] = public
    if not publics:
        raise InvalidInput(f"{args.keys}: no <party>.pub.json files")
    new, bound = bind_keys_into_policy(raw, publics)
    policy = parse_policy(new)
    for party_id in bound:
        party, public = policy.party(party_id), publics[party_id]
        if party is None or (party.signing_key, party.result_key) != (public.signing_key,
                                                                      public.result_key):
            raise InvalidInput(f"could not rewrite the keys of party {party_id!r}: write its "
                               "signing_key and result_key as one-line strings")
    if not bound:
        raise InvalidInput("none of the key files names a party of this policy")
    unknown = sorted(set(publics) - set(bound))
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_bytes(new)
    os.replace(tmp, args.output)
    print(f"bound keys of: {', '.join(bound)}")
    if unknown:
        print(f"not in the policy (ignored): {', '.join(unknown)}")
    print(f"wrote {args.output}")
    print(f"policy hash: {policy.hash.hex()}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from attestation.verifier.verify import evaluate_bundle, verify_bundle

    raw, policy = _read_policy(args.policy)
    verifier = _verifier_policy(args)
    client = Client(args.host)
    nonce = os.urandom(32)
    bundle = client.attestation(nonce)
    now = int(time.time())
    collateral = own_collateral(bundle, _collateral_for(args))
    try:
        enclave = verify_bundle(bundle, agreed_policy=raw, now=now, policy=verifier, nonce=nonce,
                                collateral=collateral)
    except (AttestationError, ProtocolError):
        report = evaluate_bundle(bundle, agreed_policy=raw, now=now, policy=verifier, nonce=nonce,
                                 collateral=collateral)
        if args.json:
            print(json.dumps(report.to_json_dict(), indent=2))
        else:
            print("\n".join(report.summary_lines()))
        raise
    if args.json:
        print(json.dumps({**enclave.report.to_json_dict(), "policy_hash": policy.hash.hex(),
                          "enc_pub": enclave.enc_pub.hex(), "sig_pub": enclave.sig_pub.hex(),
                          "nonce": nonce.hex()}, indent=2))
    else:
        print("\n".join(enclave.report.summary_lines()))
        print("\n".join(_pinned_lines(enclave, policy.hash)))
        print(f"fresh nonce:  {nonce.hex()} (bound into this quote)")
    return EXIT_OK


def _cmd_upload(args: argparse.Namespace) -> int:
    raw, policy = _read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    if policy.party(keys.party_id) is None:
        raise InvalidInput(f"the policy has no party {keys.party_id!r}")
    client = Client(args.host)
    enclave = _verified(args, client, raw)
    printer = _ProgressPrinter()
    try:
        receipt = client.upload(enclave, keys, policy, args.dataset, args.file, progress=printer,
                                chunk_size=args.chunk_mib * 1024 * 1024,
                                default_country_code=args.default_country_code)
    finally:
        printer.done()
    print("\n".join(receipt.summary_lines()))
    return EXIT_OK


def _cmd_uploads(args: argparse.Namespace) -> int:
    uploads = Client(args.host).uploads()
    if args.json:
        print(json.dumps(uploads, indent=2))
        return EXIT_OK
    print("accepted uploads (as listed by the host; the signed receipts are the proof):")
    print(f"{'upload_id':32}  {'party':12}  {'dataset':14}  {'rows':>12}  accepted_at")
    for u in uploads:
        print(f"{u.get('upload_id', '?'):32}  {u.get('party', '?'):12}  {u.get('dataset', '?'):14}  "
              f"{u.get('rows', 0):>12,}  {u.get('accepted_at', '?')}")
    if not uploads:
        print("(none)")
    return EXIT_OK


def _cmd_query(args: argparse.Namespace) -> int:
    raw, policy = _read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    params: dict[str, Any] = {"group_by": list(args.group_by)}
    if args.metric is not None:
        params["metric"] = args.metric
    if args.cohort:
        if args.group_by or args.metric is not None:
            raise _Usage("--cohort (cohort_activation) cannot be combined with --group-by or --metric")
        params = {"cohort": dict(_cohort_pair(text) for text in args.cohort)}
    client = Client(args.host)
    enclave = _verified(args, client, raw)
    result = client.query(enclave, keys, policy, args.analysis, params)
    _print_result(result, args.json)
    if args.save is not None:
        assert client.last_bundle is not None  # set by the verify above
        save_result(args.save, result, client.last_bundle)
        _err(f"saved the signed result and its attestation to {args.save} "
             f"(check it offline with `cleanroom check {args.save} --policy {args.policy}`)")
    return EXIT_OK


def _cohort_pair(text: str) -> tuple[str, str]:
    column, sep, value = text.partition("=")
    if not sep or column.count(".") != 1:
        raise _Usage(f"--cohort wants DATASET.COLUMN=VALUE, not {text!r}")
    return column, value


def _cmd_delete(args: argparse.Namespace) -> int:
    raw, policy = _read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    client = Client(args.host)
    enclave = _verified(args, client, raw)
    body = client.delete(enclave, keys, policy, args.dataset)
    print(f"dataset {body['dataset']!r} deleted inside the enclave and on the host")
    print(f"  uploads removed: {len(body['upload_ids'])}, rows removed: {body['rows_deleted']:,}")
    print(f"  signed by the attested enclave; audit entry {body['audit_head']['seq']}")
    print("  the privacy budget already spent on this dataset stays spent")
    return EXIT_OK


def _cmd_audit_download(args: argparse.Namespace) -> int:
    client = Client(args.host)
    entries = client.audit_entries(0)
    doc = {"format": 1, "attestation": client.attestation(),
           "entries": [base64.b64encode(e).decode() for e in entries]}
    with open(args.output, "x", encoding="utf-8") as out:
        json.dump(doc, out, indent=1)
        out.write("\n")
    print(f"saved {len(entries)} audit entries and the attestation bundle to {args.output}")
    return EXIT_OK


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from attestation.verifier.verify import verify_bundle

    raw, policy = _read_policy(args.policy)
    verifier = _verifier_policy(args)
    try:
        doc = json.loads(Path(args.file).read_text(encoding="utf-8"))
        entries = [base64.b64decode(e, validate=True) for e in doc["entries"]]
        bundle = doc["attestation"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{args.file}: not a file written by `cleanroom audit download`") from exc
    now = int(time.time()) if args.now is None else args.now
    enclave = verify_bundle(bundle, agreed_policy=raw, now=now, policy=verifier,
                            collateral=own_collateral(bundle, _collateral_for(args)))
    head, bodies = verify_audit_log(entries, enclave.sig_pub, policy.collaboration_id)
    # The log alone cannot show that entries were cut off its end: the head this party has
    # seen in its own receipts and results can.
    seen = default_head_store().load(policy.collaboration_id)
    if seen is not None:
        seen_key, seen_head = seen
        if seen_key != enclave.sig_pub:
            raise RollbackDetected("this log is from another enclave than the one this party used")
        if seen_head.seq > head.seq:
            raise RollbackDetected(f"the log ends at entry {head.seq} but this party has seen entry "
                                   f"{seen_head.seq}: entries were cut off")
        check_on_chain(entries, enclave.sig_pub, policy.collaboration_id, seen_head, head)
    for body in bodies:
        details = ", ".join(f"{k}={_short(v)}" for k, v in body["details"].items())
        print(f"{body['seq']:>6}  {body['at']}  {body['kind']:16}  {details}")
    print(f"audit log verified: {head.seq} entries, every one signed by the attested enclave and "
          f"linked to the previous; head {head.hash.hex()}")
    if seen is None:
        print("note: this party has no remembered audit head for the collaboration, so a log cut "
              "short at its end could not be detected")
    else:
        print(f"it contains the head this party last saw (entry {seen[1].seq})")
    return EXIT_OK


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()[:16]
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def _cmd_check(args: argparse.Namespace) -> int:
    raw, policy = _read_policy(args.policy)
    verifier = _verifier_policy(args)
    now = int(time.time()) if args.now is None else args.now
    try:
        result, enclave = check_saved_result(args.file, raw, verifier, now, _collateral_for(args))
    except CollateralExpired as exc:
        exc.message += (" (collateral is short-lived: pass --now with a time when it was valid, "
                        "e.g. the result's created_at)")
        raise
    if args.json:
        print(json.dumps({"verified": True, "attestation": enclave.report.to_json_dict(),
                          "sig_pub": enclave.sig_pub.hex(), "result": _jsonable(result.body)},
                         indent=2))
        return EXIT_OK
    print("\n".join(enclave.report.summary_lines()))
    print("\n".join(_pinned_lines(enclave, policy.hash)))
    print("result signature: ok (signed by the attested enclave's sig_pub)")
    print()
    print(render_table(result))
    return EXIT_OK


# --- parser -------------------------------------------------------------------------------------


def _add_attestation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verifier-policy", type=Path, metavar="FILE",
                        help="verifier policy TOML: the enclave measurements and TCB levels you "
                             "accept (see policies/verifier-policy.example.toml)")
    parser.add_argument("--insecure-allow-simulation", action="store_true",
                        help="INSECURE: accept a simulated enclave (no SGX hardware); testing only")
    add_collateral_arguments(parser)


def _collateral_for(args: argparse.Namespace) -> Callable[[bytes], str | None]:
    """Your own collateral (--collateral / --pccs-url) instead of the one the host attached."""
    return lambda quote: collateral_from_args(args, quote)


def _add_host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, metavar="URL",
                        help="the clean-room host, e.g. http://127.0.0.1:8080")


def _add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, type=Path, metavar="FILE",
                        help="your copy of the agreed collaboration policy (TOML)")


def _command(subparsers: Any, name: str, summary: str, detail: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=summary, description=f"{summary}. {detail}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleanroom",
        description="Party-side client of the SGX data clean room: verify the enclave, upload "
                    "your data encrypted to it, run the analyses the policy allows, and check "
                    "signed results.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(commands, "keygen", "Generate a party's signing and result key pair",
                 "Writes DIR/<party>.key.json (private, mode 0600) and DIR/<party>.pub.json "
                 "(public, goes into the policy). Never overwrites existing files.")
    p.add_argument("--party", required=True, help="party id as the policy names it")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the key files")
    p.set_defaults(func=_cmd_keygen)

    group = _command(commands, "policy", "Work with collaboration policy files",
                     "Subcommands: hash, bind-keys, lint.")
    policy_commands = group.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    p = _command(policy_commands, "hash", "Print the SHA-256 of a policy file",
                 "This is the hash every enclave quote must bind; compare it with the other "
                 "parties out of band. The policy is validated first.")
    p.add_argument("policy", type=Path, metavar="POLICY", help="policy TOML file")
    p.set_defaults(func=_cmd_policy_hash)
    p = _command(policy_commands, "bind-keys", "Write parties' public keys into a policy",
                 "For every DIR/<party>.pub.json whose party is in the policy, rewrites that "
                 "party's signing_key and result_key values; every other byte is kept. Prints "
                 "the new policy hash.")
    p.add_argument("policy", type=Path, metavar="POLICY", help="policy TOML file to start from")
    p.add_argument("--keys", required=True, type=Path, metavar="DIR", help="directory of *.pub.json")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="policy file to write")
    p.set_defaults(func=_cmd_policy_bind_keys)

    p = _command(commands, "verify", "Verify the enclave's attestation and print what was checked",
                 "Requests a quote over a fresh random nonce, then checks the quote's signature "
                 "chain and TCB status, the debug bit, the measurement, the key binding in "
                 "REPORTDATA and that the enclave runs your copy of the policy. Exit 1 when the "
                 "enclave is refused.")
    _add_host(p)
    _add_policy(p)
    _add_attestation_flags(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_verify)

    p = _command(commands, "upload", "Encrypt and upload one of your datasets to the enclave",
                 "Verifies the attestation first, reads FILE (CSV or Parquet), normalises and "
                 "SHA-256-hashes the identifier column the policy names, encodes dimensions and "
                 "metrics as the policy declares, encrypts everything to the attested enclave, "
                 "streams it with progress on stderr, and checks the enclave-signed receipt. "
                 "Columns the policy does not name are never uploaded.")
    _add_host(p)
    _add_policy(p)
    p.add_argument("--keys", required=True, type=Path, metavar="KEYFILE", help="your <party>.key.json")
    p.add_argument("--dataset", required=True, metavar="NAME", help="policy dataset to upload")
    p.add_argument("file", type=Path, metavar="FILE", help="CSV (with a header line) or Parquet file")
    p.add_argument("--default-country-code", metavar="CC",
                   help="for phone identifiers without a leading '+', e.g. 44")
    p.add_argument("--chunk-mib", type=int, default=4, choices=range(1, 9), metavar="N",
                   help="plaintext MiB per encrypted chunk, 1-8 (default 4)")
    _add_attestation_flags(p)
    p.set_defaults(func=_cmd_upload)

    p = _command(commands, "uploads", "List the uploads the enclave has accepted",
                 "As reported by the host (informational; the signed receipts are the proof).")
    _add_host(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_uploads)

    p = _command(commands, "query", "Run an analysis the policy allows and print its result",
                 "Verifies the attestation first, signs the request with your key, opens the "
                 "result sealed to you and checks the enclave's signature on it. Results carry "
                 "differential-privacy noise; the footer says how much budget was spent.")
    _add_host(p)
    _add_policy(p)
    p.add_argument("--keys", required=True, type=Path, metavar="KEYFILE", help="your <party>.key.json")
    p.add_argument("analysis", metavar="ANALYSIS", help="analysis id from the policy, e.g. overlap")
    p.add_argument("--group-by", action="append", default=[], metavar="DATASET.COLUMN",
                   help="dimension to group by (repeatable)")
    p.add_argument("--metric", metavar="DATASET.COLUMN", help="metric to sum (aggregate analyses)")
    p.add_argument("--cohort", action="append", default=[], metavar="DATASET.COLUMN=VALUE",
                   help="cohort to activate (cohort_activation analyses; repeatable)")
    p.add_argument("--save", type=Path, metavar="FILE",
                   help="also save the signed result with its attestation, for `cleanroom check`")
    p.add_argument("--json", action="store_true", help="print the result document as JSON")
    _add_attestation_flags(p)
    p.set_defaults(func=_cmd_query)

    p = _command(commands, "check", "Verify a saved signed result offline",
                 "Re-verifies the saved attestation (which binds the enclave's signing key and "
                 "the policy hash), then the result's signature and its policy. No network.")
    p.add_argument("file", type=Path, metavar="FILE", help="file written by `cleanroom query --save`")
    _add_policy(p)
    p.add_argument("--now", type=int, metavar="UNIX",
                   help="judge collateral validity at this Unix time (default: now)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_attestation_flags(p)
    p.set_defaults(func=_cmd_check)

    p = _command(commands, "delete", "Delete one of your datasets from the clean room",
                 "Verifies the attestation, then sends a request signed with your key: the "
                 "enclave drops the rows and forgets the uploads, the host deletes the stored "
                 "ciphertext, and you get an enclave-signed deletion receipt. The privacy budget "
                 "already spent stays spent.")
    _add_host(p)
    _add_policy(p)
    p.add_argument("--keys", required=True, type=Path, metavar="KEYFILE", help="your <party>.key.json")
    p.add_argument("dataset", metavar="DATASET", help="your dataset to delete")
    _add_attestation_flags(p)
    p.set_defaults(func=_cmd_delete)

    group = _command(commands, "audit", "Download and verify the enclave's audit log",
                     "The log is a hash chain of enclave-signed entries: uploads accepted, "
                     "queries run, budget charged, results released, datasets deleted.")
    audit_commands = group.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    p = _command(audit_commands, "download", "Save the audit log and the attestation bundle",
                 "Writes a JSON file for `cleanroom audit verify` (refuses to overwrite).")
    _add_host(p)
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="file to write")
    p.set_defaults(func=_cmd_audit_download)
    p = _command(audit_commands, "verify", "Verify a downloaded audit log end to end, offline",
                 "Verifies the saved attestation (which binds the enclave's signing key and the "
                 "policy), then every entry's signature and its link to the previous one; prints "
                 "the entries.")
    p.add_argument("file", type=Path, metavar="FILE", help="file written by `cleanroom audit download`")
    _add_policy(p)
    p.add_argument("--now", type=int, metavar="UNIX",
                   help="judge collateral validity at this Unix time (default: now)")
    _add_attestation_flags(p)
    p.set_defaults(func=_cmd_audit_verify)

    from cleanroom.policy_cli import register as register_policy_lint

    register_policy_lint(policy_commands)

    try:
        from cleanroom.attestation_cli import register
    except ImportError:  # the quote inspector is optional; the rest of the CLI works without it
        pass
    else:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except _Usage as exc:
        parser.print_usage(sys.stderr)
        _err(f"cleanroom: error: {exc}")
        return EXIT_USAGE
    except CleanroomError as exc:
        _err(f"error [{exc.code}]: {exc.message}")
        return EXIT_FAILED
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _err(f"error [io_error]: {exc.strerror or exc}{where}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
