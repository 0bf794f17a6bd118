"""Re-verify what a party saved, without the host: a signed result, a downloaded audit log.

Each saved file carries the attestation bundle that pins the enclave's signing key. It is
verified first, as of ``now``, through ``cleanroom.enclave_verification.evaluate_enclave`` (the
same checks as before an upload, including the enclave key this party remembers); only then
is anything checked with that key. No network access, unless ``collateral_for(quote)`` fetches
collateral the saved bundle lacks or that has expired. No nonce: freshness means nothing
offline; the bundle's own nonce is still bound in the quote.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cleanroom.audit import AuditHead, HeadStore, default_head_store, verify_complete_log
from cleanroom.audit_files import load_audit_download
from cleanroom.enclave_verification import evaluate_enclave
from cleanroom.result_files import load_saved_result
from cleanroom.result_open import Result, verify_signed_result
from protocol.policy import parse_policy

if TYPE_CHECKING:
    from attestation.verifier.verify import VerifiedEnclave, VerifierPolicy

__all__ = ["VerifiedAuditLog", "check_audit_download", "check_saved_result"]

Collateral = Callable[[bytes], str | None]


@dataclass(frozen=True)
class VerifiedAuditLog:
    """A downloaded audit log that verified end to end."""

    enclave: VerifiedEnclave  # whose key signed every entry
    head: AuditHead  # the log's last entry
    bodies: list[dict[str, Any]]  # every entry's body, in order
    seen: AuditHead | None  # the head this party last saw (in the log), or None if it saw none


def _enclave(bundle: Any, agreed_policy: bytes, verifier_policy: VerifierPolicy, now: int,
             collateral_for: Collateral | None, head_store: HeadStore) -> VerifiedEnclave:
    return evaluate_enclave(bundle, agreed_policy=agreed_policy, verifier_policy=verifier_policy,
                            now=now, head_store=head_store, collateral_for=collateral_for).enclave()


def check_saved_result(path: str | os.PathLike[str], agreed_policy: bytes,
                       verifier_policy: VerifierPolicy, now: int,
                       collateral_for: Collateral | None = None, *,
                       head_store: HeadStore | None = None) -> tuple[Result, VerifiedEnclave]:
    """Re-verify a saved result offline; return it and the ``VerifiedEnclave``.

    The attestation bundle binds the enclave's signing key and the policy hash into the quote;
    then the result's signature is checked with that key and its body against ``agreed_policy``.
    ``head_store`` is this party's memory of enclave keys (default ``default_head_store()``).

    :raise CleanroomError: an ``AttestationError`` subclass, ``RollbackDetected``,
        ``AuthenticationFailed``, ``ProtocolError`` or ``InvalidInput``.
    """
    signed, bundle = load_saved_result(path)
    policy = parse_policy(agreed_policy)
    store = default_head_store() if head_store is None else head_store
    enclave = _enclave(bundle, agreed_policy, verifier_policy, now, collateral_for, store)
    return verify_signed_result(signed, enclave.sig_pub, policy), enclave


def check_audit_download(path: str | os.PathLike[str], agreed_policy: bytes,
                         verifier_policy: VerifierPolicy, now: int,
                         collateral_for: Collateral | None = None, *,
                         head_store: HeadStore | None = None) -> VerifiedAuditLog:
    """Verify a downloaded audit log end to end, offline.

    The attestation bundle binds the enclave's signing key; then every entry's signature and its
    link to the previous one, and that the log reaches the head this party last saw in its own
    receipts and results (``head_store``, default ``default_head_store()``).

    :raise CleanroomError: an ``AttestationError`` subclass, ``RollbackDetected`` (another
        enclave, or entries cut off the end), ``AuthenticationFailed`` (a broken chain),
        ``ProtocolError`` or ``InvalidInput``.
    """
    entries, bundle = load_audit_download(path)
    policy = parse_policy(agreed_policy)
    store = default_head_store() if head_store is None else head_store
    enclave = _enclave(bundle, agreed_policy, verifier_policy, now, collateral_for, store)
    # evaluate_enclave refused a key other than the remembered one: the remembered head is
    # this enclave's.
    remembered = store.load(policy.collaboration_id)
    seen = None if remembered is None else remembered[1]
    head, bodies = verify_complete_log(entries, enclave.sig_pub, policy.collaboration_id, seen)
    return VerifiedAuditLog(enclave, head, bodies, seen)
