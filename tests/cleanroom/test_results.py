"""Opening results encrypted to a party, verifying receipts, saved results and the offline check."""

import base64
import hashlib
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from cleanroom.offline_check import check_saved_result
from cleanroom.receipts import verify_receipt
from cleanroom.result_display import render_table
from cleanroom.result_files import save_result
from cleanroom.result_open import open_result
from protocol.crypto import RECEIPT_LABEL, RESULT_LABEL, result_hpke_info
from protocol.errors import (
    AuthenticationFailed,
    DecryptionFailed,
    InvalidInput,
    PolicyMismatch,
    SimulationNotAllowed,
)
from protocol.wire import pack_document

NOW = 1_790_000_000  # a document timestamp; verification times come from the now fixture
SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
QUERY_ID = hashlib.sha256(b"request bytes").digest()


def result_body(policy, **edits):
    body = {
        "collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
        "query_id": QUERY_ID, "analysis": "overlap", "kind": "overlap",
        "requested_by": "publisher", "recipients": ["publisher", "advertiser"],
        "params": {"group_by": ["impressions.campaign"]}, "simulated": True,
        "created_at": NOW, "columns": ["campaign", "matched_users"],
        "rows": [["spring_sale", 1234], ["loyalty", 56]],
        "privacy": {"mechanism": "discrete_laplace", "epsilon_charged": "1/5",
                    "budget_remaining": {"impressions": "29/5"}, "suppressed_cohorts": 6,
                    "cohorts_total": 8, "min_cohort_size": 50},
        "audit_head": {"seq": 3, "hash": bytes(32)},
    }
    body.update(edits)
    return pack_document("result", body)


def sign_result(signer, body):
    return pack_document("signed", {"body": body, "signature": signer.sign(RESULT_LABEL + body)})


def encrypt_to(signed, keys, policy, query_id=QUERY_ID):
    return SUITE.encrypt(signed, keys.result_key.public_key(),
                         info=result_hpke_info(policy.collaboration_id, query_id, keys.party_id))


def test_open_result(parties, policy, enclave):
    ciphertext = encrypt_to(sign_result(enclave.signing, result_body(policy)), parties["publisher"], policy)
    result = open_result(ciphertext, parties["publisher"], enclave.sig_pub, policy, QUERY_ID)
    assert result.rows == [["spring_sale", 1234], ["loyalty", 56]]
    assert result.columns == ["campaign", "matched_users"] and result.query_id == QUERY_ID
    assert result.simulated and result.privacy["epsilon_charged"] == "1/5"


def test_wrong_signer_is_authentication_failed(parties, policy, enclave):
    impostor = ed25519.Ed25519PrivateKey.generate()
    ciphertext = encrypt_to(sign_result(impostor, result_body(policy)), parties["publisher"], policy)
    with pytest.raises(AuthenticationFailed):
        open_result(ciphertext, parties["publisher"], enclave.sig_pub, policy, QUERY_ID)


def test_tampered_ciphertext_is_decryption_failed(parties, policy, enclave):
    signed = sign_result(enclave.signing, result_body(policy))
    ciphertext = bytearray(encrypt_to(signed, parties["publisher"], policy))
    ciphertext[-5] ^= 1
    with pytest.raises(DecryptionFailed):
        open_result(bytes(ciphertext), parties["publisher"], enclave.sig_pub, policy, QUERY_ID)


def test_result_for_someone_else_or_another_query_does_not_open(parties, policy, enclave):
    signed = sign_result(enclave.signing, result_body(policy))
    with pytest.raises(DecryptionFailed):
        open_result(encrypt_to(signed, parties["advertiser"], policy), parties["publisher"],
                    enclave.sig_pub, policy, QUERY_ID)
    other_query = hashlib.sha256(b"another request").digest()
    with pytest.raises(DecryptionFailed):
        open_result(encrypt_to(signed, parties["publisher"], policy, other_query), parties["publisher"],
                    enclave.sig_pub, policy, QUERY_ID)


@pytest.mark.parametrize("edit", [
    {"policy_hash": bytes(32)},
    {"collaboration_id": "another-room"},
    {"query_id": hashlib.sha256(b"x").digest()},
])
def test_result_bound_to_collaboration_policy_and_query(parties, policy, enclave, edit):
    signed = sign_result(enclave.signing, result_body(policy, **edit))
    ciphertext = encrypt_to(signed, parties["publisher"], policy)
    with pytest.raises(AuthenticationFailed):
        open_result(ciphertext, parties["publisher"], enclave.sig_pub, policy, QUERY_ID)


# --- receipts -----------------------------------------------------------------------------------

UPLOAD_ID, DIGEST = os.urandom(16), hashlib.sha256(b"upload").digest()


def receipt_response(signer, policy, **edits):
    body = {"collaboration_id": policy.collaboration_id, "policy_hash": policy.hash,
            "upload_id": UPLOAD_ID, "party": "publisher", "dataset": "impressions", "rows": 10,
            "digest": DIGEST, "accepted_at": NOW, "simulated": True,
            "audit_head": {"seq": 1, "hash": bytes(32)}}
    body.update(edits)
    receipt = pack_document("upload_receipt", body)
    return {"upload_id": UPLOAD_ID.hex(), "rows": body["rows"], "digest": body["digest"].hex(),
            "receipt": base64.b64encode(receipt).decode(),
            "signature": base64.b64encode(signer.sign(RECEIPT_LABEL + receipt)).decode()}


def check(response, enclave, policy):
    return verify_receipt(response, enclave.sig_pub, policy, upload_id=UPLOAD_ID, party="publisher",
                          dataset="impressions", rows=10, digest=DIGEST)


def test_receipt_verifies(policy, enclave):
    receipt = check(receipt_response(enclave.signing, policy), enclave, policy)
    assert (receipt.rows, receipt.digest, receipt.upload_id) == (10, DIGEST, UPLOAD_ID)
    assert any("SIMULATED" in line for line in receipt.summary_lines())


@pytest.mark.parametrize("edit", [
    {"digest": hashlib.sha256(b"other").digest()}, {"upload_id": os.urandom(16)}, {"rows": 9},
    {"dataset": "conversions"}, {"party": "advertiser"}, {"policy_hash": bytes(32)},
])
def test_receipt_must_match_what_was_sent(policy, enclave, edit):
    with pytest.raises(AuthenticationFailed):
        check(receipt_response(enclave.signing, policy, **edit), enclave, policy)


def test_receipt_from_another_key(policy, enclave):
    with pytest.raises(AuthenticationFailed):
        check(receipt_response(ed25519.Ed25519PrivateKey.generate(), policy), enclave, policy)


# --- saved results ------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path, parties, policy, policy_bytes, enclave, make_bundle):
    from attestation.verifier.verify import VerifierPolicy

    ciphertext = encrypt_to(sign_result(enclave.signing, result_body(policy)), parties["publisher"], policy)
    result = open_result(ciphertext, parties["publisher"], enclave.sig_pub, policy, QUERY_ID)
    path = tmp_path / "result.json"
    save_result(path, result, make_bundle(enclave, policy_bytes))
    return path, VerifierPolicy(allow_simulation=True)


def test_saved_result_checks_offline(saved, policy_bytes, enclave, now):
    path, verifier = saved
    doc = json.loads(path.read_text())
    assert set(doc) == {"format", "signed", "attestation"} and doc["format"] == 1
    result, verified = check_saved_result(path, policy_bytes, verifier, now)
    assert verified.sig_pub == enclave.sig_pub and verified.simulated
    assert result.rows[0] == ["spring_sale", 1234]


def test_saved_result_is_never_overwritten(saved, policy_bytes, now):
    path, verifier = saved
    result, _ = check_saved_result(path, policy_bytes, verifier, now)
    with pytest.raises(FileExistsError):
        save_result(path, result, {})


def test_saved_result_with_tampered_body(saved, policy_bytes, now):
    path, verifier = saved
    doc = json.loads(path.read_text())
    signed = bytearray(base64.b64decode(doc["signed"]))
    signed[signed.index(b"spring_sale")] ^= 0x20  # "Spring_sale"
    doc["signed"] = base64.b64encode(bytes(signed)).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(AuthenticationFailed):
        check_saved_result(path, policy_bytes, verifier, now)


def test_saved_result_signed_by_a_different_enclave(saved, policy_bytes, make_bundle, now,
                                                    other_enclave):
    path, verifier = saved
    other = other_enclave
    doc = json.loads(path.read_text())
    doc["attestation"] = make_bundle(other, policy_bytes)  # a genuine quote, for another key
    path.write_text(json.dumps(doc))
    with pytest.raises(AuthenticationFailed):
        check_saved_result(path, policy_bytes, verifier, now)


def test_saved_result_needs_the_simulation_opt_in_and_the_same_policy(saved, policy_bytes, now):
    from attestation.verifier.verify import VerifierPolicy

    path, verifier = saved
    with pytest.raises(SimulationNotAllowed):
        check_saved_result(path, policy_bytes, VerifierPolicy(), now)
    with pytest.raises(PolicyMismatch):
        check_saved_result(path, policy_bytes + b"\n# edited\n", verifier, now)


def test_not_a_saved_result(tmp_path, policy_bytes, now):
    from attestation.verifier.verify import VerifierPolicy

    path = tmp_path / "x.json"
    path.write_text('{"format": 2}')
    with pytest.raises(InvalidInput):
        check_saved_result(path, policy_bytes, VerifierPolicy(allow_simulation=True), now)


def test_render_table(parties, policy, enclave):
    ciphertext = encrypt_to(sign_result(enclave.signing, result_body(policy)), parties["publisher"], policy)
    text = render_table(open_result(ciphertext, parties["publisher"], enclave.sig_pub, policy, QUERY_ID))
    lines = text.splitlines()
    assert lines[0].endswith(f"query {QUERY_ID.hex()}")  # the full id, as `results get` takes it
    assert lines[1].startswith("created 2026-09-21T14:13:20Z")  # ISO 8601 UTC, not Unix seconds
    assert lines[2].split() == ["campaign", "matched_users"]
    assert lines[4].split() == ["spring_sale", "1,234"]
    assert len(lines[4]) == len(lines[3])  # right-aligned number ends at the column edge
    assert "mechanism discrete_laplace" in text and "epsilon charged 0.2" in text
    assert "impressions 5.8" in text and "suppressed cohorts 6 of 8" in text  # decimals, not 29/5
    assert "±" not in text  # this result carries no noise scale to derive one from
    assert "simulated: true" in text


def test_saved_result_from_an_enclave_other_than_the_remembered_one(saved, policy, policy_bytes,
                                                                   enclave, other_enclave, now,
                                                                   tmp_path):
    from cleanroom.audit import AuditHead, HeadStore
    from protocol.errors import RollbackDetected

    path, verifier = saved
    store = HeadStore(tmp_path / "heads")
    store.observe(policy.collaboration_id, enclave.sig_pub, AuditHead(1, bytes(32)))
    _, verified = check_saved_result(path, policy_bytes, verifier, now, head_store=store)
    assert verified.sig_pub == enclave.sig_pub
    other = HeadStore(tmp_path / "other-heads")
    other.observe(policy.collaboration_id, other_enclave.sig_pub, AuditHead(1, bytes(32)))
    with pytest.raises(RollbackDetected, match="signing key changed"):
        check_saved_result(path, policy_bytes, verifier, now, head_store=other)
