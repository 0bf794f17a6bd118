"""Saved, enclave-signed results (an overlap, a SQL plan) for the offline commands' tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanroom.result_files import save_result
from cleanroom.result_open import verify_signed_result
from protocol.crypto import RESULT_LABEL
from protocol.wire import pack_document


def write_saved_overlap(directory: Path, policy: Any, policy_bytes: bytes, enclave: Any, bundle: dict,
                        now: int, rows: list[list[Any]]) -> tuple[Path, Path]:
    """``directory/r.json`` (the result and its attestation) and ``directory/policy.toml``.

    Noise scale 20 for users: every count's 95% half-width is 60.
    """
    body = pack_document("result", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "query_id": bytes(range(32)), "analysis": "overlap", "kind": "overlap",
        "requested_by": "publisher", "recipients": ["publisher", "advertiser"],
        "params": {"group_by": ["impressions.campaign"]}, "simulated": True, "created_at": now,
        "columns": ["campaign", "matched_users"], "rows": rows,
        "privacy": {"mechanism": "discrete_laplace", "accounting": "pure", "epsilon_charged": "1/5",
                    "noise_scale": {"users": "20"},
                    "budget_remaining": {"impressions": "29/5", "conversions": "29/5"},
                    "suppressed_cohorts": 5, "cohorts_total": 8, "min_cohort_size": 50,
                    "delta_total": "0", "threshold": None},
        "audit_head": {"seq": 7, "hash": bytes(32)},
    })
    signed = pack_document("signed", {"body": body, "signature": enclave.signing.sign(RESULT_LABEL + body)})
    path = directory / "r.json"
    save_result(path, verify_signed_result(signed, enclave.sig_pub, policy), bundle)
    policy_file = directory / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    return path, policy_file


def write_saved_plan(directory: Path, policy: Any, policy_bytes: bytes, enclave: Any, bundle: dict,
                     now: int, *, sql: str, plan: dict[str, Any], columns: list[str],
                     rows: list[list[Any]], privacy: dict[str, Any]) -> tuple[Path, Path]:
    """Like ``write_saved_overlap``, for a free-form SQL result (kind "plan"): analysis "",
    params {plan, sql}, and the privacy metadata given (as ``enclave/engine/plan_run.py`` writes it)."""
    body = pack_document("result", {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "query_id": bytes(range(32)), "analysis": "", "kind": "plan",
        "requested_by": "advertiser", "recipients": ["advertiser", "publisher"],
        "params": {"plan": plan, "sql": sql}, "simulated": True, "created_at": now,
        "columns": columns, "rows": rows, "privacy": privacy, "audit_head": {"seq": 3, "hash": bytes(32)},
    })
    signed = pack_document("signed", {"body": body, "signature": enclave.signing.sign(RESULT_LABEL + body)})
    path = directory / "plan.json"
    save_result(path, verify_signed_result(signed, enclave.sig_pub, policy), bundle)
    policy_file = directory / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    return path, policy_file
