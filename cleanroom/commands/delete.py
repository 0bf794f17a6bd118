"""``cleanroom delete``: delete one of your datasets from the clean room."""

from __future__ import annotations

import argparse
from typing import Any

from cleanroom.client import Client
from cleanroom.commands.arguments import (
    add_attestation_flags,
    add_host,
    add_key_file,
    add_policy,
    command,
    read_policy,
)
from cleanroom.commands.verify_first import verify_before_sending
from cleanroom.keys import PartyKeys
from cleanroom.preflight import check_own_dataset

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "delete", "Delete one of your datasets from the clean room",
                "Verifies the attestation, then sends a request signed with your key: the "
                "enclave drops the rows and forgets the uploads, the host deletes the stored "
                "ciphertext, and you get an enclave-signed deletion receipt. The privacy budget "
                "already spent stays spent.")
    add_host(p)
    add_policy(p)
    add_key_file(p)
    p.add_argument("dataset", metavar="DATASET", help="your dataset to delete")
    add_attestation_flags(p)
    p.set_defaults(func=_delete)


def _delete(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    check_own_dataset(policy, keys.party_id, args.dataset)  # before the attestation round trip
    client = Client(args.host)
    enclave = verify_before_sending(args, client, raw)
    body = client.delete(enclave, keys, policy, args.dataset)
    print(f"dataset {body['dataset']!r} deleted inside the enclave and on the host")
    print(f"  uploads removed: {len(body['upload_ids'])}, rows removed: {body['rows_deleted']:,}")
    print(f"  signed by the attested enclave; audit entry {body['audit_head']['seq']}")
    print("  the privacy budget already spent on this dataset stays spent")
    return 0
