"""The one way the party verifies an enclave: attestation checks, then the party's own memory.

``evaluate_enclave`` is called by every path that trusts an enclave key: ``Client.verify`` and
``Client.attestation_report`` (so ``cleanroom verify``, ``upload``, ``query``, ``delete``) and the
offline checks of saved results and audit logs (``cleanroom check``, ``audit verify``). It runs
``attestation.verifier.verify.evaluate_bundle`` and then the check only a party can make: the
enclave signing key must be the one this party remembers for the collaboration (its
``HeadStore``). A different key means the enclave's sealed state was replaced or lost, which
would also reset the privacy budget (``RollbackDetected``).

The answer is one ``VerificationReport``: ``report.enclave()`` gives the keys to pin, or raises
the typed error of the first refused check. The verifier (and dcap-qvl) is imported when a
verification runs, not when this module is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cleanroom.audit import HeadStore
from protocol.errors import ProtocolError, RollbackDetected
from protocol.policy import parse_policy

if TYPE_CHECKING:
    from attestation.verifier.verify import VerificationReport, VerifierPolicy

__all__ = ["SAME_ENCLAVE_CHECK", "evaluate_enclave", "own_collateral"]

SAME_ENCLAVE_CHECK = "same_enclave"  # the report's name for the remembered-key check


def own_collateral(bundle: dict[str, Any],
                   collateral_for: Callable[[bytes], str | None] | None) -> str | None:
    """The party's own collateral for the bundle's quote, or None to use the bundle's."""
    if collateral_for is None or not isinstance(bundle, dict):
        return None  # not a bundle at all: the verifier refuses it with a report
    try:
        quote = base64.b64decode(bundle.get("quote", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ProtocolError("the attestation bundle's quote is not base64") from None
    return collateral_for(quote)


def evaluate_enclave(
    bundle: dict[str, Any],
    *,
    agreed_policy: bytes,
    verifier_policy: VerifierPolicy,
    now: int,
    head_store: HeadStore | None,
    nonce: bytes | None = None,
    collateral_for: Callable[[bytes], str | None] | None = None,
) -> VerificationReport:
    """Verify the host's attestation bundle as this party; return the report.

    ``nonce`` is the fresh nonce the bundle was requested for (None offline: the bundle's own
    nonce is still bound into the quote). ``collateral_for(quote)`` may supply the party's own
    collateral (a file, or fetched from a PCCS) instead of the bundle's. ``head_store`` is this
    party's memory of the enclave key per collaboration; None skips that check (a verifier with
    no memory, e.g. an outside auditor).

    :raise ProtocolError: the bundle's quote is not base64 while ``collateral_for`` needs it.
    :raise AttestationError: ``collateral_for`` could not provide collateral (e.g. the PCCS).
    """
    from attestation.verifier.verify import evaluate_bundle  # party side only; pulls in dcap-qvl

    report = evaluate_bundle(bundle, agreed_policy=agreed_policy, now=now, policy=verifier_policy,
                             nonce=nonce, collateral=own_collateral(bundle, collateral_for))
    if not report.accepted or head_store is None:
        return report
    assert report.bound_keys is not None  # an accepted bundle binds its keys
    seen = head_store.load(parse_policy(agreed_policy).collaboration_id)
    if seen is not None and seen[0] != report.bound_keys.sig_pub:
        return report.refused_by(SAME_ENCLAVE_CHECK, RollbackDetected(
            "the enclave's signing key changed for this collaboration: its sealed state was "
            "replaced or lost, which would also reset the privacy budget"))
    return report
