"""``attestation.verifier.verify`` is the stable import path of the verifier, however it is split inside."""

from __future__ import annotations

import attestation.verifier.verify as verify
from attestation.verifier import bundle, quote_checks, verification_report, verifier_policy

PUBLIC = {
    "INTEL_ROOT_CA_SHA256": quote_checks,
    "TCB_STATUSES": verifier_policy,
    "BoundKeys": verification_report,
    "Check": verification_report,
    "VerificationReport": verification_report,
    "VerifiedEnclave": verification_report,
    "VerifierPolicy": verifier_policy,
    "evaluate_bundle": bundle,
}


def test_all_names_the_public_surface() -> None:
    assert set(verify.__all__) == set(PUBLIC) | {"evaluate_quote"}
    for name in verify.__all__:
        assert getattr(verify, name) is not None


def test_re_exports_are_the_defining_modules_objects() -> None:
    for name, module in PUBLIC.items():
        assert getattr(verify, name) is getattr(module, name), name


def test_one_function_per_input_no_raising_twins() -> None:
    # A bare quote and a bundle each have one entry point, returning a report; the report's
    # require() / enclave() is the only raising form.
    assert not {name for name in verify.__all__ if name.startswith("verify_")}
