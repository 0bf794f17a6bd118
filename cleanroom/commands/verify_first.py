"""The step before anything is sent to the enclave: verify it, say so in one line on stderr."""

from __future__ import annotations

import argparse
from typing import Any

from cleanroom.client import Client
from cleanroom.commands.arguments import collateral_for, verifier_policy
from cleanroom.commands.output import err
from protocol.errors import AttestationError

__all__ = ["verify_before_sending"]


def verify_before_sending(args: argparse.Namespace, client: Client, raw_policy: bytes) -> Any:
    """``Client.verify`` with the attestation flags; the ``VerifiedEnclave`` to send to."""
    verifier = verifier_policy(args)
    try:
        enclave = client.verify(raw_policy, verifier, collateral_for=collateral_for(args))
    except AttestationError as exc:
        exc.message += " (run `cleanroom verify` for the full report)"
        raise
    report = enclave.report
    mode = "SIMULATED" if enclave.simulated else "SGX"
    err(f"attestation verified ({mode}): mr_enclave {report.mr_enclave}, "
        f"policy {enclave.policy_hash.hex()[:16]}..., sig_pub {enclave.sig_pub.hex()[:16]}...")
    return enclave
