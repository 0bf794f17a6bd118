"""Upload encryption, checked by decrypting it back with plain cryptography primitives.

``open_stream`` below re-implements the receiving side straight from ``protocol/upload.py``
(record framing, HPKE info, nonce = chunk counter, AAD = SHA-256(header) || index || last), so a
successful round trip proves the client builds each of them as specified, and each tampering
test proves the construction catches that attack.
"""

import hashlib

import msgpack
import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from cleanroom.upload_crypto import UploadEncryptor
from protocol.crypto import UPLOAD_HEADER_LABEL, upload_key_hpke_info
from protocol.errors import DecryptionFailed, InvalidInput
from protocol.upload import CHUNK_MIN_PLAINTEXT, UploadDigest, chunk_aad, chunk_nonce
from protocol.wire import unpack_document
from tests.support.records import split_records

SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
CHUNK = max(CHUNK_MIN_PLAINTEXT, 8192)
BATCHES = [b"A" * CHUNK, b"B" * 1000, b"C" * 7]


def open_stream(payloads, enclave, policy, signer_pub):
    """Decrypt an upload as the enclave must; every failure is DecryptionFailed."""
    head = msgpack.unpackb(payloads[0], raw=False)
    header_bytes, signature = head["header"], head["signature"]
    Ed25519PublicKey.from_public_bytes(signer_pub).verify(signature, UPLOAD_HEADER_LABEL + header_bytes)
    header = unpack_document("upload_header", header_bytes)
    info = upload_key_hpke_info(policy.collaboration_id, policy.hash, header["party"], header["dataset"])
    try:
        key = SUITE.decrypt(header["hpke_enc"], enclave.encryption, info=info)
        aead = AESGCM(key)
        plaintexts, finished = [], False
        for index, payload in enumerate(payloads[1:]):
            if finished:
                raise DecryptionFailed()  # nothing may follow the last chunk
            last = payload[:1] == b"\x01"
            plaintexts.append(aead.decrypt(chunk_nonce(index), payload[1:],
                                           chunk_aad(header_bytes, index, last)))
            finished = last
        if not finished:
            raise DecryptionFailed()  # the stream was cut short
    except InvalidTag:
        raise DecryptionFailed() from None
    return header, plaintexts


@pytest.fixture
def upload(parties, policy, enclave):
    encryptor = UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"),
                                enclave.enc_pub, chunk_size=CHUNK, now=1_700_000_000)
    payloads = split_records(b"".join(encryptor.records(BATCHES)))
    return encryptor, payloads


def test_round_trip(upload, parties, policy, enclave):
    encryptor, payloads = upload
    header, plaintexts = open_stream(payloads, enclave, policy, parties["publisher"].signing_public)
    assert plaintexts == BATCHES
    assert [p[:1] for p in payloads[1:]] == [b"\x00", b"\x00", b"\x01"]
    assert header["party"] == "publisher" and header["dataset"] == "impressions"
    assert header["upload_id"] == encryptor.upload_id and len(header["upload_id"]) == 16
    assert header["created_at"] == 1_700_000_000 and header["chunk_size"] == CHUNK
    assert header["schema"] == [["id", "id"], ["campaign", "dimension"],
                                ["age_band", "dimension"], ["region", "dimension"]]
    assert header["policy_hash"] == policy.hash
    assert encryptor.chunks == 3 and encryptor.plaintext_bytes == sum(map(len, BATCHES))


def test_digest_matches_the_protocol_definition(upload):
    encryptor, payloads = upload
    head = msgpack.unpackb(payloads[0], raw=False)
    digest = UploadDigest(head["header"], head["signature"])
    for payload in payloads[1:]:
        digest.add_chunk_hash(hashlib.sha256(payload).digest())
    assert encryptor.digest == digest.digest()


def test_every_upload_has_a_fresh_key_and_id(parties, policy, enclave):
    dataset = policy.dataset("impressions")
    a = UploadEncryptor(parties["publisher"], policy, dataset, enclave.enc_pub, chunk_size=CHUNK)
    b = UploadEncryptor(parties["publisher"], policy, dataset, enclave.enc_pub, chunk_size=CHUNK)
    assert a.upload_id != b.upload_id and a.header["hpke_enc"] != b.header["hpke_enc"]


def test_flipped_ciphertext_byte_fails(upload, parties, policy, enclave):
    _, payloads = upload
    damaged = bytearray(payloads[2])
    damaged[10] ^= 1
    with pytest.raises(DecryptionFailed):
        open_stream([*payloads[:2], bytes(damaged), *payloads[3:]], enclave, policy,
                    parties["publisher"].signing_public)


def test_swapped_chunks_fail(upload, parties, policy, enclave):
    _, payloads = upload
    swapped = [payloads[0], payloads[2], payloads[1], payloads[3]]
    with pytest.raises(DecryptionFailed):
        open_stream(swapped, enclave, policy, parties["publisher"].signing_public)


def test_reordered_chunks_fail(upload, parties, policy, enclave):
    _, payloads = upload
    with pytest.raises(DecryptionFailed):
        open_stream([payloads[0], payloads[3], payloads[1], payloads[2]], enclave, policy,
                    parties["publisher"].signing_public)


def test_dropped_last_chunk_fails(upload, parties, policy, enclave):
    _, payloads = upload
    with pytest.raises(DecryptionFailed):
        open_stream(payloads[:-1], enclave, policy, parties["publisher"].signing_public)


def test_truncation_by_flipping_the_last_flag_fails(upload, parties, policy, enclave):
    _, payloads = upload
    early_end = b"\x01" + payloads[2][1:]
    with pytest.raises(DecryptionFailed):
        open_stream([payloads[0], payloads[1], early_end], enclave, policy,
                    parties["publisher"].signing_public)


def test_chunk_spliced_from_another_upload_fails(upload, parties, policy, enclave):
    _, payloads = upload
    other = UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"),
                            enclave.enc_pub, chunk_size=CHUNK)
    other_payloads = split_records(b"".join(other.records(BATCHES)))
    with pytest.raises(DecryptionFailed):
        open_stream([payloads[0], other_payloads[1], *payloads[2:]], enclave, policy,
                    parties["publisher"].signing_public)


def test_wrong_enclave_key_fails(upload, parties, policy, enclave):
    from dataclasses import replace

    from cryptography.hazmat.primitives.asymmetric import x25519

    _, payloads = upload
    impostor = replace(enclave, encryption=x25519.X25519PrivateKey.generate())
    with pytest.raises(DecryptionFailed):
        open_stream(payloads, impostor, policy, parties["publisher"].signing_public)


def test_the_enclaves_own_opener_reads_it(upload, policy, enclave):
    """Interoperability with ``enclave/requests/envelope.py`` (the lead's receiving side)."""
    envelope = pytest.importorskip("enclave.requests.envelope")
    encryptor, payloads = upload
    head = msgpack.unpackb(payloads[0], raw=False)
    opener = envelope.UploadOpener(head["header"], head["signature"], policy=policy, keys=enclave)
    # open_chunk returns a view of a reused buffer: copy each chunk before the next one.
    opened = [bytes(opener.open_chunk(p[:1] == b"\x01", p[1:])) for p in payloads[1:]]
    assert opened == BATCHES and opener.digest() == encryptor.digest


def test_header_signature_is_the_partys(upload, parties, policy, enclave):
    _, payloads = upload
    with pytest.raises(InvalidSignature):
        open_stream(payloads, enclave, policy, parties["advertiser"].signing_public)


def test_empty_dataset_is_refused(parties, policy, enclave):
    encryptor = UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"),
                                enclave.enc_pub, chunk_size=CHUNK)
    with pytest.raises(InvalidInput, match="no rows"):
        list(encryptor.records([]))


def test_oversized_batch_is_refused(parties, policy, enclave):
    encryptor = UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"),
                                enclave.enc_pub, chunk_size=CHUNK)
    with pytest.raises(InvalidInput, match="larger than"):
        list(encryptor.records([b"x" * (CHUNK + 1)]))


@pytest.mark.parametrize("size", [CHUNK_MIN_PLAINTEXT - 1, 8 * 1024 * 1024 + 1])
def test_chunk_size_bounds(parties, policy, enclave, size):
    with pytest.raises(InvalidInput, match="chunk size"):
        UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"),
                        enclave.enc_pub, chunk_size=size)


def test_only_the_owner_may_upload_a_dataset(parties, policy, enclave):
    with pytest.raises(InvalidInput, match="belongs to party 'advertiser'"):
        UploadEncryptor(parties["publisher"], policy, policy.dataset("conversions"), enclave.enc_pub)


def test_records_are_produced_once(parties, policy, enclave):
    encryptor = UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"),
                                enclave.enc_pub, chunk_size=CHUNK)
    list(encryptor.records([b"x"]))
    with pytest.raises(RuntimeError):
        list(encryptor.records([b"x"]))


def test_injected_randomness_and_clock_reproduce_the_upload(parties, policy, enclave):
    """Same upload id, data key and time: identical records except where HPKE's own ephemeral
    key is involved. cryptography's HPKE draws that key inside ``Suite.encrypt`` and its public
    API takes none, so ``hpke_enc`` differs, and with it what covers the header bytes (the
    header signature, each chunk's GCM tag through the AAD). Everything else is byte-identical.
    """
    from protocol.crypto import DATA_KEY_BYTES
    from protocol.wire import pack_document

    fixed = {"upload_id": bytes(range(16)), "data_key": bytes(range(DATA_KEY_BYTES)),
             "now": 1_700_000_000, "chunk_size": CHUNK, "rows_hint": 3}
    runs = [UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"),
                            enclave.enc_pub, **fixed) for _ in range(2)]
    a, b = runs
    a_payloads, b_payloads = (split_records(b"".join(e.records(BATCHES))) for e in runs)

    # The header: every field equal but HPKE's encapsulation, which wraps the same data key.
    assert a.header["hpke_enc"] != b.header["hpke_enc"]
    assert {**a.header, "hpke_enc": None} == {**b.header, "hpke_enc": None}
    assert a.upload_id == fixed["upload_id"] and a.header["created_at"] == fixed["now"]
    for payloads in (a_payloads, b_payloads):  # both are valid uploads of the same batches
        assert open_stream(payloads, enclave, policy, parties["publisher"].signing_public)[1] == BATCHES
    info = upload_key_hpke_info(policy.collaboration_id, policy.hash, "publisher", "impressions")
    assert {SUITE.decrypt(e.header["hpke_enc"], enclave.encryption, info=info) for e in runs} == {
        fixed["data_key"]}
    # Given b's encapsulation, a's header bytes and (deterministic Ed25519) signature are b's.
    a_with_b_enc = pack_document("upload_header", {**a.header, "hpke_enc": b.header["hpke_enc"]})
    assert a_with_b_enc == b.header_bytes
    assert parties["publisher"].sign(UPLOAD_HEADER_LABEL, a_with_b_enc) == b.signature

    # The chunks: same flags, same ciphertext; only the 16-byte tag differs (its AAD binds the
    # header hash), and re-encrypting under b's header reproduces b's chunk exactly.
    assert len(a_payloads) == len(b_payloads) == 1 + len(BATCHES)
    aead = AESGCM(fixed["data_key"])
    for index, (pa, pb) in enumerate(zip(a_payloads[1:], b_payloads[1:], strict=True)):
        last = index == len(BATCHES) - 1
        assert pa[:1] == pb[:1] == (b"\x01" if last else b"\x00")
        assert pa[1:-16] == pb[1:-16] and pa[-16:] != pb[-16:]
        assert pb[1:] == aead.encrypt(chunk_nonce(index), BATCHES[index],
                                      chunk_aad(b.header_bytes, index, last))
    assert (a.chunks, a.plaintext_bytes, a.sent_bytes) == (b.chunks, b.plaintext_bytes, b.sent_bytes)


@pytest.mark.parametrize(("field", "value"), [("upload_id", bytes(15)), ("data_key", bytes(16))])
def test_injected_values_of_the_wrong_size_are_refused(parties, policy, enclave, field, value):
    with pytest.raises(InvalidInput, match=field):
        UploadEncryptor(parties["publisher"], policy, policy.dataset("impressions"), enclave.enc_pub,
                        chunk_size=CHUNK, **{field: value})
