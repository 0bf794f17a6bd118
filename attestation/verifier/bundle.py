"""Party side: parse the host's attestation bundle and verify the enclave behind it.

The bundle (docs/http-api.md, ``GET /v1/attestation``) is untrusted JSON from the host. On
top of the quote checks (``attestation.verifier.quote_checks``) it must bind the enclave's keys, the
agreed collaboration policy and the party's fresh nonce into REPORTDATA.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from attestation.verifier.quote_checks import check_quote
from attestation.verifier.values import check_now, hex32
from attestation.verifier.verification_report import BoundKeys, ReportDraft, VerificationReport
from attestation.verifier.verifier_policy import VerifierPolicy
from protocol.errors import (
    CleanroomError,
    PolicyMismatch,
    ProtocolError,
    SimulationNotAllowed,
    StaleNonce,
)
from protocol.report_data import report_data as compute_report_data

__all__ = ["evaluate_bundle"]

_BUNDLE_KEYS = frozenset(
    {
        "format",
        "mode",
        "simulated",
        "quote",
        "collateral",
        "enc_pub",
        "sig_pub",
        "policy",
        "policy_hash",
        "nonce",
        "simulation_root_ca",
    }
)
_MODES = ("simulation", "gramine-direct", "sgx")


@dataclass(frozen=True)
class _Bundle:
    simulated: bool
    quote: bytes
    collateral: str | None
    enc_pub: bytes
    sig_pub: bytes
    policy: bytes
    nonce: bytes
    simulation_root_ca: bytes | None


def _b64(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(f"bundle field {name} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"bundle field {name} is not base64") from None


def _hex32(name: str, value: object) -> bytes:
    return bytes.fromhex(hex32(name, value, ProtocolError))


def _parse_bundle(bundle: object) -> _Bundle:
    if not isinstance(bundle, dict):
        raise ProtocolError("attestation bundle must be a JSON object")
    unknown = sorted(set(bundle) - _BUNDLE_KEYS)
    if unknown:
        raise ProtocolError(f"unknown bundle field: {unknown[0]}")
    missing = sorted(_BUNDLE_KEYS - set(bundle))
    if missing:
        raise ProtocolError(f"missing bundle field: {missing[0]}")
    if bundle["format"] != 1 or isinstance(bundle["format"], bool):
        raise ProtocolError("unsupported attestation bundle format")
    if bundle["mode"] not in _MODES:
        raise ProtocolError("unknown attestation mode")
    simulated = bundle["simulated"]
    if not isinstance(simulated, bool) or simulated != (bundle["mode"] != "sgx"):
        raise ProtocolError("bundle mode and simulated flag disagree")
    root = bundle["simulation_root_ca"]
    if (root is not None) != simulated:
        raise ProtocolError("simulation_root_ca must be present exactly when simulated")
    collateral = bundle["collateral"]
    if collateral is not None and not isinstance(collateral, str):
        raise ProtocolError("bundle field collateral must be text or null")
    policy = _b64("policy", bundle["policy"])
    if not hmac.compare_digest(_hex32("policy_hash", bundle["policy_hash"]), hashlib.sha256(policy).digest()):
        raise ProtocolError("bundle policy_hash is not the hash of its policy")
    return _Bundle(
        simulated=simulated,
        quote=_b64("quote", bundle["quote"]),
        collateral=collateral,
        enc_pub=_hex32("enc_pub", bundle["enc_pub"]),
        sig_pub=_hex32("sig_pub", bundle["sig_pub"]),
        policy=policy,
        nonce=_hex32("nonce", bundle["nonce"]),
        simulation_root_ca=None if root is None else _b64("simulation_root_ca", root),
    )


def _check_bundle(
    draft: ReportDraft,
    bundle: object,
    *,
    agreed_policy: bytes,
    now: int,
    policy: VerifierPolicy,
    nonce: bytes | None,
    collateral: str | None,
) -> _Bundle:
    try:
        parsed = _parse_bundle(bundle)
    except ProtocolError as err:
        draft.fail("bundle", err)
    draft.ok("bundle", "well-formed")
    draft.simulated = parsed.simulated
    if parsed.simulated and not policy.allow_simulation:
        draft.fail("simulation", SimulationNotAllowed("bundle is simulated; simulation not allowed"))

    bundle_policy_hash = hashlib.sha256(parsed.policy).digest()
    expected = compute_report_data(parsed.enc_pub, parsed.sig_pub, bundle_policy_hash, parsed.nonce)
    check_quote(
        draft,
        parsed.quote,
        collateral if collateral is not None else parsed.collateral,
        now=now,
        policy=policy,
        root_ca_der=parsed.simulation_root_ca,
        expected_report_data=expected,
    )

    agreed_hash = hashlib.sha256(agreed_policy).digest()
    if not hmac.compare_digest(agreed_hash, bundle_policy_hash):
        draft.fail("policy_hash", PolicyMismatch())
    if policy.expected_policy_hash is not None and bundle_policy_hash.hex() != policy.expected_policy_hash:
        draft.fail("policy_hash", PolicyMismatch("the policy is not the one the verifier pinned"))
    draft.ok("policy_hash", "the enclave runs the agreed policy")

    if nonce is None:
        draft.ok("nonce", "not checked: no fresh nonce was requested")
    elif not hmac.compare_digest(nonce, parsed.nonce):
        draft.fail("nonce", StaleNonce())
    else:
        draft.ok("nonce", "carries the requested nonce")
    return parsed


def evaluate_bundle(
    bundle: dict[str, Any],
    *,
    agreed_policy: bytes,
    now: int,
    policy: VerifierPolicy,
    nonce: bytes | None = None,
    collateral: str | None = None,
) -> VerificationReport:
    """Verify the host's attestation bundle; return the report, accepted or refused.

    ``report.enclave()`` returns the keys to pin (``VerifiedEnclave``), or raises the typed error
    of the first refused check. Checks, in order: the bundle is well-formed (ProtocolError); a
    simulated bundle needs ``policy.allow_simulation`` (SimulationNotAllowed); the quote passes
    the quote checks (``evaluate_quote``) with the REPORTDATA recomputed from enc_pub, sig_pub,
    SHA-256(bundle policy) and the bundle nonce (ReportDataMismatch); the bundle's policy is
    ``agreed_policy`` and, if pinned, ``policy.expected_policy_hash`` (PolicyMismatch); the
    nonce is the requested one (StaleNonce). Without ``nonce`` any bundle nonce is accepted (it
    is still bound into REPORTDATA). ``collateral`` replaces the bundle's collateral (brought or
    fetched by the party; see ``cleanroom.collateral_source``). Collateral is Intel-signed, so
    its source does not matter.

    :raise TypeError, ValueError: a caller mistake (``agreed_policy`` not bytes, a nonce that is
        not 32 bytes, ``now`` out of range), never an attestation outcome.
    """
    if not isinstance(agreed_policy, bytes):
        raise TypeError("agreed_policy must be bytes")
    if nonce is not None and (not isinstance(nonce, bytes) or len(nonce) != 32):
        raise ValueError("nonce must be 32 bytes")
    check_now(now)
    draft = ReportDraft()
    try:
        parsed = _check_bundle(
            draft,
            bundle,
            agreed_policy=agreed_policy,
            now=now,
            policy=policy,
            nonce=nonce,
            collateral=collateral,
        )
    except CleanroomError as err:
        return draft.report(err)
    keys = BoundKeys(parsed.enc_pub, parsed.sig_pub, hashlib.sha256(parsed.policy).digest())
    return draft.report(None, keys)
