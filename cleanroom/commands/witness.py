"""``cleanroom witness``: co-sign the charges to your datasets, and refuse a rolled-back enclave."""

from __future__ import annotations

import argparse
import time
from typing import Any

from cleanroom.approvals_client import pending_proposals, send_approval
from cleanroom.client import Client
from cleanroom.commands.arguments import (
    add_attestation_flags,
    add_host,
    add_key_file,
    add_policy,
    command,
    read_policy,
)
from cleanroom.commands.output import err
from cleanroom.commands.verify_first import verify_before_sending
from cleanroom.formatting import fraction_decimal
from cleanroom.keys import PartyKeys
from cleanroom.witness import Witness, default_witness_path
from protocol.errors import CleanroomError, WitnessRefused

__all__ = ["register", "witness_once"]


def register(subparsers: Any) -> None:
    p = command(subparsers, "witness", "Co-sign the charges to your datasets (policy witness mode)",
                "Under a policy with privacy.witness = \"owners\", every query's charge to your "
                "dataset waits for your co-signature. This command verifies the enclave, then "
                "approves each pending charge that the policy allows, that fits in the budget it "
                "has co-signed so far, and whose audit head extends the last one it signed; it "
                "refuses (and says so) when the enclave's state was rolled back. Its memory is "
                "the --state file: keep it, and back it up; without it the witness cannot tell "
                "a rollback. Activations that need your approval are co-signed only with "
                "--approve-activations or --approve ID. Runs until interrupted unless --once.")
    add_host(p)
    add_policy(p)
    add_key_file(p)
    p.add_argument("--state", metavar="FILE",
                   help="the witness's memory (default $CLEANROOM_HOME/witness/<collaboration>-<party>.json)")
    p.add_argument("--once", action="store_true", help="handle what is pending now, then exit")
    p.add_argument("--status", action="store_true",
                   help="print what this witness has co-signed (its tally per dataset and requester, "
                        "the last audit head it signed) and exit; reads only the state file")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between polls of the host (default 2)")
    p.add_argument("--approve-activations", action="store_true",
                   help="co-sign activation requests automatically too")
    p.add_argument("--approve", action="append", default=[], metavar="QUERY_ID",
                   help="co-sign this activation (64 hex digits); may be repeated")
    add_attestation_flags(p)
    p.set_defaults(func=_witness)


def _witness(args: argparse.Namespace) -> int:
    raw, policy = read_policy(args.policy)
    keys = PartyKeys.load(args.keys)
    if args.status:
        return _status(policy, keys, args.state)
    client = Client(args.host)
    enclave = verify_before_sending(args, client, raw)
    path = args.state or default_witness_path(policy.collaboration_id, keys.party_id)
    witness = Witness(policy, keys, enclave.sig_pub, path, approve_activations=args.approve_activations)
    approve = {text.lower() for text in args.approve}
    err(f"witness for {keys.party_id!r}: state {path}")
    refused, reported = 0, set()
    while True:
        refused += witness_once(client, witness, approve, reported)
        if args.once:
            return 1 if refused else 0
        time.sleep(max(args.interval, 0.1))


def _status(policy: Any, keys: PartyKeys, state: str | None) -> int:
    """The witness's memory, without contacting anyone: what it will count against the budget."""
    path = state or default_witness_path(policy.collaboration_id, keys.party_id)
    summary = Witness(policy, keys, bytes(32), path).summary()
    print(f"witness for {keys.party_id!r} ({path}): {summary['signed']} proposal(s) co-signed; "
          f"last audit head co-signed: {summary['last_head'] or 'none'}")
    for dataset, entry in sorted(summary["spent"].items()):
        total = policy.privacy.budget[dataset]
        by = ", ".join(f"{party} {fraction_decimal(v, up=True)}"
                       for party, v in sorted(entry["by_requester"].items()))
        print(f"  {dataset}: {policy.privacy.unit} {fraction_decimal(entry['spent'], up=True)} of "
              f"{fraction_decimal(str(total))} co-signed ({by})")
    return 0


def witness_once(client: Client, witness: Witness, approve: set[str],
                 reported: set[tuple[str, str]] | None = None) -> int:
    """Decide every pending proposal once; return how many were refused.

    ``reported`` remembers the refusals already printed, so a poll loop says each once.
    """
    refused, reported = 0, set() if reported is None else reported
    for proposal in pending_proposals(client.http, witness.keys.party_id, witness.sig_pub, witness.policy):
        qid = proposal.query_id.hex()
        try:
            signature = witness.decide(proposal, client.audit_entries, activation_ok=qid in approve)
        except WitnessRefused as exc:
            refused += 1
            if (qid, exc.message) not in reported:
                reported.add((qid, exc.message))
                err(f"refused query {qid}: {exc.message}")
            continue
        try:
            status = send_approval(client.http, proposal.query_id, witness.keys.party_id, signature)
        except CleanroomError as exc:
            err(f"could not deliver the approval of query {qid}: [{exc.code}] {exc.message}")
            continue
        print(f"co-signed query {qid} ({proposal.body['requested_by']}, "
              f"{proposal.body['amount']} {proposal.body['unit']}): {status.get('status')}", flush=True)
    return refused
