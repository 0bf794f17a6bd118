"""The golden wire vectors, checked in both directions.

Each file's check (``checks.CHECKS``; one module per construct, ``checks_*.py``) re-encodes the
file's inputs and compares with the stored bytes, then decodes, verifies and decrypts the stored
bytes and compares with the stored inputs, using only ``protocol/`` and plain ``cryptography``
primitives (what another implementation would use). ``test_the_generator_reproduces_the_files``
then checks that the project's real code paths (the enclave ``Session``, ``protocol``) still make
exactly these bytes, and the last tests check the party-side code (``UploadEncryptor``, result,
receipt and audit-log verification) against them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from protocol.crypto import HPKE_SUITE
from protocol.wire import unpack_document
from tests.vectors.checks import CHECKS, check_all
from tests.vectors.checks_common import Vectors, assert_same, enclave_of, policy_of
from tests.vectors.checks_inputs import check_requests
from tests.vectors.checks_session import check_result
from tests.vectors.loader import FILES, VECTOR_DIR, dump, from_json, h, load_all


@pytest.fixture(scope="module")
def stored() -> Vectors:
    return load_all()


@pytest.fixture
def vectors(stored: Vectors) -> Vectors:
    return copy.deepcopy(stored)


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    """The generator, imported only by the tests that run the project's code (the checks need
    ``protocol`` alone)."""
    from tests.vectors import generate

    return generate


def test_every_file_has_a_check() -> None:
    assert tuple(CHECKS) == FILES
    # normalisation.json is the party-side identifier rules, checked by test_normalisation.py.
    assert sorted(p.stem for p in VECTOR_DIR.glob("*.json")) == sorted([*FILES, "normalisation"])


@pytest.mark.parametrize("name", FILES)
def test_vector_file(vectors: Vectors, name: str) -> None:
    CHECKS[name](vectors)


def _flip_middle_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def test_a_one_byte_edit_of_a_signed_request_fails(vectors: Vectors) -> None:
    entry = vectors["requests"]["query_request"]
    entry["bytes"] = _flip_middle_byte(h(entry["bytes"])).hex()
    with pytest.raises(AssertionError, match="re-encoding the document differs"):
        check_requests(vectors)


def test_a_one_byte_edit_of_a_result_ciphertext_fails(vectors: Vectors) -> None:
    sealed = vectors["result"]["sealed"][0]
    sealed["ciphertext"] = _flip_middle_byte(h(sealed["ciphertext"])).hex()
    with pytest.raises(Exception):  # noqa: B017 - cryptography raises its own opaque error
        check_result(vectors)


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "description":  # free text, not a vector
                yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path


def _mutated(value: Any) -> Any:
    """The value with one byte changed: a byte of hex data, a character, a number, a flag."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return 0
    assert isinstance(value, str)
    if not value:
        return "x"
    try:
        return _flip_middle_byte(h(value)).hex()
    except ValueError:  # text, not hex
        i = len(value) // 2
        return value[:i] + chr(ord(value[i]) ^ 0x01) + value[i + 1:]


def test_any_one_byte_edit_of_any_vector_fails(stored: Vectors) -> None:
    """Every leaf of every file is covered by some check: editing it makes ``check_all`` fail."""
    survived, leaves = [], 0
    for name in FILES:
        for path in _leaves(stored[name]):
            leaves += 1
            edited = copy.deepcopy(stored)
            parent = edited[name]
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = _mutated(parent[path[-1]])
            try:
                CHECKS[name](edited)  # the file's own check first: it notices almost every edit
                check_all(edited)
            except Exception:  # any failure is the expected outcome
                continue
            survived.append(f"{name}:{'.'.join(map(str, path))}")
    assert leaves > 100
    assert not survived, f"edits no check noticed: {survived}"


def test_the_generator_reproduces_the_files(stored: Vectors, generate: ModuleType) -> None:
    """The real code paths (enclave Session, protocol) still make exactly the stored bytes.

    A failure here means the wire bytes changed: if that is intended, run
    ``python -m tests.vectors.generate`` and review the diff of tests/vectors/*.json.
    """
    for name, doc in generate.build(stored).items():
        assert dump(doc) == (VECTOR_DIR / f"{name}.json").read_text(encoding="utf-8"), (
            f"{name}.json is stale: the code now makes other bytes (see this test's docstring)")


def test_fresh_hpke_ciphertexts_give_valid_vectors(stored: Vectors, generate: ModuleType) -> None:
    """From nothing, the generator draws fresh HPKE ciphertexts; everything still checks."""
    fresh = generate.build({})
    check_all(fresh)
    for name in ("keys", "policy", "report_data", "requests"):  # nothing here depends on HPKE
        assert fresh[name] == stored[name]
    assert fresh["result"]["sealed"] != stored["result"]["sealed"]
    # Once stored, the fresh ciphertexts are kept: regenerating is a no-op.
    assert generate.build(fresh) == fresh


def test_upload_encryptor_agrees_with_the_vector_construction(vectors: Vectors,
                                                              generate: ModuleType) -> None:
    """``UploadEncryptor`` wraps its data key with HPKE itself (a fresh ephemeral key each time);
    with its random values put into ``generate.build_upload`` (what made the vector) the bytes
    are the same, so the vector construction is the client's."""
    from cleanroom.upload_crypto import UploadEncryptor

    policy, parties, enclave = policy_of(vectors), generate.party_keys(), generate.enclave_keys()
    for up in vectors["upload"]["uploads"]:
        dataset = policy.dataset(up["dataset"])
        assert dataset is not None
        stored_header = from_json(up["header"]["document"])
        batches = [h(b["bytes"]) for b in up["batches"]]
        encryptor = UploadEncryptor(parties[up["party"]], policy, dataset, enclave.enc_pub,
                                    chunk_size=stored_header["chunk_size"],
                                    now=stored_header["created_at"], rows_hint=stored_header["rows_hint"],
                                    skipped=stored_header.get("skipped"))
        stream = b"".join(encryptor.records(batches))
        header = unpack_document("upload_header", encryptor.header_bytes)
        info = h(up["data_key_wrap"]["info"])
        data_key = HPKE_SUITE.decrypt(header["hpke_enc"], enclave.encryption, info=info)
        rebuilt = generate.build_upload(
            parties[up["party"]], policy, dataset, upload_id=header["upload_id"], data_key=data_key,
            hpke_enc=header["hpke_enc"], created_at=stored_header["created_at"],
            chunk_size=stored_header["chunk_size"], rows_hint=stored_header["rows_hint"], batches=batches,
            skipped=stored_header.get("skipped"))
        assert rebuilt["header_bytes"] == encryptor.header_bytes
        assert rebuilt["signature"] == encryptor.signature
        assert rebuilt["record_stream"] == stream
        assert rebuilt["digest"] == encryptor.digest
        # Only the random values differ from the stored header (the idempotency key defaults to
        # the upload id).
        assert header["idempotency_key"] == header["upload_id"]
        random = ("upload_id", "hpke_enc", "idempotency_key")
        assert {k: x for k, x in header.items() if k not in random} == {
            k: x for k, x in stored_header.items() if k not in random}


def test_party_side_verification_accepts_the_vectors(vectors: Vectors, generate: ModuleType) -> None:
    """The client's own opening and verification code accepts the enclave's stored outputs."""
    import base64

    from cleanroom.audit import verify_audit_log
    from cleanroom.receipts import verify_deletion_receipt, verify_receipt
    from cleanroom.result_open import open_result

    policy, parties = policy_of(vectors), generate.party_keys()
    sig_pub = h(enclave_of(vectors)["ed25519_public"])
    result = vectors["result"]
    for sealed in result["sealed"]:
        opened = open_result(h(sealed["enc"]) + h(sealed["ciphertext"]), parties[sealed["recipient"]],
                             sig_pub, policy, h(result["query_id"]))
        assert_same(opened.body, from_json(result["document"]))
    for receipt, up in zip(vectors["receipts"]["upload_receipts"], vectors["upload"]["uploads"], strict=True):
        header = from_json(up["header"]["document"])
        response = {"receipt": base64.b64encode(h(receipt["bytes"])).decode(),
                    "signature": base64.b64encode(h(receipt["signature"])).decode()}
        verify_receipt(response, sig_pub, policy, upload_id=header["upload_id"], party=up["party"],
                       dataset=up["dataset"], rows=sum(b["rows"] for b in up["batches"]),
                       digest=h(up["digest"]), skipped=header.get("skipped"))
    deletion, request = vectors["receipts"]["deletion_receipt"], vectors["requests"]["delete_request"]
    verify_deletion_receipt({"receipt": base64.b64encode(h(deletion["bytes"])).decode(),
                             "signature": base64.b64encode(h(deletion["signature"])).decode()},
                            sig_pub, policy, request_id=h(request["request_id"]),
                            party=request["signer"], dataset=from_json(request["document"])["dataset"])
    entries = vectors["audit"]["entries"]
    head, _ = verify_audit_log([h(e["signed"]) for e in entries], sig_pub, policy.collaboration_id)
    assert (head.seq, head.hash) == (len(entries), h(entries[-1]["entry_hash"]))
