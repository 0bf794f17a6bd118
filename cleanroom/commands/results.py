"""``cleanroom results list`` and ``cleanroom results get ID``: the results sent to you.

Every recipient of a result can fetch it, not only the party that ran the query: the host keeps
one ciphertext per recipient. ``list`` shows what the host says it stores for you (unsigned:
query ids, the host's storage times). ``get`` verifies the enclave, fetches the result
encrypted to you, opens it and checks the enclave's signature, exactly like ``query``, and
prints or saves it the same way. IDs are the full 64 hex digits everywhere, and any
unambiguous prefix of at least 8 of them is accepted (``cleanroom.result_ids``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

from cleanroom.client import Client
from cleanroom.commands.arguments import (
    add_attestation_flags,
    add_host,
    add_key_file,
    add_policy,
    read_policy,
)
from cleanroom.commands.output import add_output_flags, emit, output_format, print_result, refuse_existing
from cleanroom.commands.saving import add_save_flag, save_with_hint
from cleanroom.commands.verify_first import verify_before_sending
from cleanroom.formatting import iso_utc
from cleanroom.keys import PartyKeys
from cleanroom.result_ids import MIN_PREFIX, parse_query_id, resolve_query_id

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "results", help="List the results sent to you, and fetch one",
        description="List the results sent to you, and fetch one. Every recipient of a result "
                    "can fetch it, whoever ran the query.")
    sub = p.add_subparsers(dest="results_command", metavar="COMMAND", required=True)

    listing = sub.add_parser(
        "list", help="List the results the host stores for you",
        description="List the results the host stores for you (as the host lists them: unsigned "
                    "query ids and storage times; `results get` verifies each result).")
    add_host(listing)
    add_key_file(listing)
    add_output_flags(listing)
    listing.set_defaults(func=_list)

    get = sub.add_parser(
        "get", help="Fetch, verify and print one result sent to you",
        description="Fetch, verify and print one result sent to you. Verifies the attestation "
                    "first, opens the result encrypted to you and checks the enclave's signature, "
                    "as `cleanroom query` does.")
    get.add_argument("query_id", metavar="ID",
                     help=f"the query id: 64 hex digits, or a unique prefix of at least {MIN_PREFIX}")
    add_host(get)
    add_policy(get)
    add_key_file(get)
    add_save_flag(get)
    add_output_flags(get)
    add_attestation_flags(get)
    get.set_defaults(func=_get)


def _listing_text(entries: list[dict[str, Any]], fmt: str, party: str) -> str:
    if fmt == "json":
        return json.dumps({"results": [{**e, "created_at_utc": iso_utc(e["created_at"])}
                                       for e in entries]}, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["query_id", "created_at_utc", "recipients"])
        for e in entries:
            writer.writerow([e["query_id"], iso_utc(e["created_at"]), " ".join(e["recipients"])])
        return out.getvalue()
    lines = [f"results stored for {party} (as listed by the host; `cleanroom results get ID` "
             "verifies one):",
             f"{'query_id':64}  {'stored (host time, UTC)':23}  recipients"]
    lines += [f"{e['query_id']:64}  {iso_utc(e['created_at']):23}  {', '.join(e['recipients'])}"
              for e in entries]
    if not entries:
        lines.append("(none)")
    return "\n".join(lines) + "\n"


def _list(args: argparse.Namespace) -> int:
    fmt = output_format(args)
    refuse_existing(args.output)
    party = PartyKeys.load(args.keys).party_id
    entries = Client(args.host).result_list(party)
    emit(_listing_text(entries, fmt, party), args, f"{len(entries):,} results ({fmt})")
    return 0


def _get(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    parse_query_id(args.query_id)  # a malformed id fails before the attestation round trip
    output_format(args)
    refuse_existing(args.output, args.save)
    client = Client(args.host)
    enclave = verify_before_sending(args, client, raw)
    query_id = resolve_query_id(args.query_id, lambda: client.result_list(keys.party_id))
    result = client.fetch_result(enclave, keys, policy, query_id)
    save_with_hint(args, result, client.last_bundle)
    print_result(result, args)
    return 0
