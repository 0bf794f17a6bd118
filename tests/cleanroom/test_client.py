"""Client transport against a small stdlib HTTP server standing in for the host (no enclave).

Checks the chunked streaming upload, receipt verification against the pinned key, and that
HTTP errors and unreachable hosts become the typed protocol errors.
"""

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import msgpack
import pytest

from cleanroom.client import Client
from protocol.crypto import RECEIPT_LABEL
from protocol.errors import (
    AuthenticationFailed,
    EnclaveUnavailable,
    InvalidInput,
    PolicyMismatch,
    ProtocolError,
)
from protocol.upload import RECORD_HEADER, UploadDigest
from protocol.wire import pack_document, unpack_document
from tests.support.records import split_records


class FakeHost(BaseHTTPRequestHandler):
    enclave = None  # set per test: signs receipts like the enclave would
    policy = None
    refuse_upload = False
    bodies: list

    def log_message(self, *args):  # keep test output quiet
        pass

    def _json(self, status, payload):
        raw = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _chunked_body(self):
        assert self.headers["Transfer-Encoding"] == "chunked"
        body = bytearray()
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()

    def do_GET(self):
        if self.path.startswith("/v1/attestation"):
            self._json(503, {"error": {"code": "enclave_unavailable", "message": "restarting"}})
        elif self.path == "/v1/health":
            self._json(200, b"<html>not json</html>")
        elif self.path == "/v1/uploads":
            self._json(200, {"uploads": []})
        else:
            self._json(404, {"error": {"code": "not_found", "message": "no such resource"}})

    def do_POST(self):
        if self.path == "/v1/queries":
            type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self._json(200, {"query_id": "00" * 32, "results": {}})
            return
        body = self._chunked_body()
        type(self).bodies.append(body)
        if self.refuse_upload:
            self._json(401, {"error": {"code": "bad_signature", "message": "signature did not verify"}})
            return
        payloads = split_records(body)
        head = msgpack.unpackb(payloads[0], raw=False)
        header = unpack_document("upload_header", head["header"])
        digest = UploadDigest(head["header"], head["signature"])
        for payload in payloads[1:]:
            digest.add_chunk_hash(hashlib.sha256(payload).digest())
        receipt = pack_document("upload_receipt", {
            "collaboration_id": self.policy.collaboration_id, "policy_hash": self.policy.hash,
            "upload_id": header["upload_id"], "party": header["party"],
            "dataset": header["dataset"], "rows": 3, "digest": digest.digest(),
            "accepted_at": 1, "simulated": True, "audit_head": {"seq": 1, "hash": bytes(32)},
        })
        self._json(201, {"upload_id": header["upload_id"].hex(), "rows": 3,
                         "digest": digest.digest().hex(),
                         "receipt": base64.b64encode(receipt).decode(),
                         "signature": base64.b64encode(
                             self.enclave.signing.sign(RECEIPT_LABEL + receipt)).decode()})


@pytest.fixture
def host(enclave, policy):
    handler = type("Handler", (FakeHost,), {"enclave": enclave, "policy": policy, "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}", handler=handler)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def pinned(enclave, policy):
    # What Client.verify returns after a successful attestation (only the fields used here).
    return SimpleNamespace(enc_pub=enclave.enc_pub, sig_pub=enclave.sig_pub, policy_hash=policy.hash)


@pytest.fixture
def conversions_csv(tmp_path):
    path = tmp_path / "conversions.csv"
    path.write_text("email,value,notes\na@x.org,1.50,x\nb@x.org,2,y\nc@x.org,0.99,z\n")
    return path


def test_streamed_upload_returns_the_verified_receipt(host, pinned, parties, policy, conversions_csv):
    seen = []
    receipt = Client(host.url).upload(pinned, parties["advertiser"], policy, "conversions",
                                      conversions_csv, progress=seen.append)
    assert receipt.rows == 3 and receipt.party == "advertiser" and receipt.dataset == "conversions"
    assert len(host.handler.bodies) == 1
    assert seen[0].ignored_columns == ("notes",)
    assert seen[-1].rows_done == 3 and seen[-1].sent_bytes == len(host.handler.bodies[0])


def test_receipt_signed_by_another_key_is_refused(host, pinned, parties, policy, conversions_csv,
                                                  other_enclave):
    host.handler.enclave = other_enclave
    with pytest.raises(AuthenticationFailed):
        Client(host.url).upload(pinned, parties["advertiser"], policy, "conversions", conversions_csv)


def test_host_error_becomes_the_typed_error(host, pinned, parties, policy, conversions_csv):
    host.handler.refuse_upload = True
    with pytest.raises(AuthenticationFailed, match="signature did not verify"):
        Client(host.url).upload(pinned, parties["advertiser"], policy, "conversions", conversions_csv)
    with pytest.raises(EnclaveUnavailable, match="restarting"):
        Client(host.url).attestation()


def test_bad_file_fails_before_any_connection(host, pinned, parties, policy, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("email,value\n")
    with pytest.raises(InvalidInput, match="no rows"):
        Client(host.url).upload(pinned, parties["advertiser"], policy, "conversions", path)
    path.write_text("mail,value\na@x.org,1\n")
    with pytest.raises(InvalidInput, match="column 'email'"):
        Client(host.url).upload(pinned, parties["advertiser"], policy, "conversions", path)
    assert host.handler.bodies == []


def test_upload_refuses_an_enclave_pinned_for_another_policy(host, pinned, parties, policy,
                                                             conversions_csv):
    pinned.policy_hash = hashlib.sha256(b"other").digest()
    with pytest.raises(PolicyMismatch):
        Client(host.url).upload(pinned, parties["advertiser"], policy, "conversions", conversions_csv)


def test_answer_for_another_query_is_refused(host, pinned, parties, policy):
    with pytest.raises(AuthenticationFailed, match="different query"):
        Client(host.url).query(pinned, parties["publisher"], policy, "overlap", {"group_by": []})


def test_non_json_answer_is_a_protocol_error(host):
    with pytest.raises(ProtocolError):
        Client(host.url).health()
    assert Client(host.url).uploads() == []


def test_unreachable_host():
    with pytest.raises(EnclaveUnavailable, match="cannot reach"):
        Client("http://127.0.0.1:9", timeout=5).attestation()


def test_bad_url():
    with pytest.raises(InvalidInput):
        Client("ftp://example.org")


def test_injected_nonce_and_time_reproduce_a_query_byte_for_byte(host, pinned, parties, policy):
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):  # the stand-in host answers for another query
            Client(host.url).query(pinned, parties["publisher"], policy, "overlap", {"group_by": []},
                                   nonce=bytes(16), now=1_700_000_000)
    first, second = host.handler.bodies
    assert first == second  # request bytes and (deterministic Ed25519) signature
    request = unpack_document("query_request", base64.b64decode(first["request"]))
    assert request["nonce"] == bytes(16) and request["issued_at"] == 1_700_000_000
    with pytest.raises(InvalidInput, match="16 bytes"):
        Client(host.url).query(pinned, parties["publisher"], policy, "overlap", {"group_by": []},
                               nonce=bytes(8))


def test_upload_takes_the_injected_id_key_and_clock(host, pinned, parties, policy, conversions_csv):
    ticks = iter(range(100))
    seen = []
    receipt = Client(host.url).upload(pinned, parties["advertiser"], policy, "conversions",
                                      conversions_csv, progress=seen.append, upload_id=b"u" * 16,
                                      data_key=b"k" * 32, now=1_700_000_000,
                                      clock=lambda: float(next(ticks)))
    assert receipt.upload_id == b"u" * 16
    body = host.handler.bodies[0]
    (length,) = RECORD_HEADER.unpack_from(body)
    head = msgpack.unpackb(body[RECORD_HEADER.size:RECORD_HEADER.size + length], raw=False)
    assert unpack_document("upload_header", head["header"])["created_at"] == 1_700_000_000
    assert [p.elapsed for p in seen] == [float(i) for i in range(1, len(seen) + 1)]


def test_upload_refuses_keys_of_a_party_the_policy_does_not_name(host, pinned, policy, conversions_csv):
    from cleanroom.keys import PartyKeys

    with pytest.raises(InvalidInput, match="no party 'stranger'"):
        Client(host.url).upload(pinned, PartyKeys.generate("stranger"), policy, "conversions",
                                conversions_csv)
    assert host.handler.bodies == []
