"""A FAKE enclave for host tests: speaks the real frames and messages, holds no secrets.

Run as a script by the supervisor (``CLEANROOM_ENCLAVE_CONNECT``, ``CLEANROOM_STATE_DIR``). It
keeps a "sealed manifest" (``manifest.jsonl``) of committed uploads in its state directory and an
event log (``events.log``) that tests read. Upload headers are msgpack maps
``{upload_id, party, dataset, mode}``; ``mode`` makes it misbehave on purpose:

    "poison"        refuse upload_begin (decrypt_failed), as for an upload it does not accept
    "fail-chunk-1"  refuse chunk 1 (decrypt_failed)
    "refuse-commit" refuse upload_commit (conflict)

With ``FAKE_ENCLAVE_QUOTE`` set in its environment it returns that value as a "real" quote.
A file ``die-on-health`` in the state directory makes it exit, without replying, at the next
``health`` request (the file is removed first). A query whose request is ``b"deny"`` is denied.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path

import msgpack

from protocol.errors import (
    CleanroomError,
    ConflictError,
    DecryptionFailed,
    NotFound,
    PolicyInvalid,
    PolicyViolation,
)
from protocol.report_data import ZERO_NONCE, report_data
from protocol.upload import UploadDigest
from protocol.wire import encode_frame, pack, read_frame, unpack

ENC_PUB = bytes(range(32))
SIG_PUB = bytes(range(32, 64))
FAKE_SIGNATURE = bytes(64)


class FakeEnclave:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.policy = b""
        self.policy_hash = bytes(32)
        self.streams: dict[int, dict] = {}
        self.next_stream = 1
        self.started = time.monotonic()
        self.manifest = self._load_manifest()

    def _load_manifest(self) -> dict[str, dict]:
        path = self.state / "manifest.jsonl"
        if not path.exists():
            return {}
        entries = [json.loads(line) for line in path.read_text().splitlines() if line]
        return {e["upload_id"]: e for e in entries}

    def event(self, text: str) -> None:
        with open(self.state / "events.log", "a") as f:
            f.write(text + "\n")

    def handle(self, type_: str, body: dict) -> tuple[str, dict]:
        method = getattr(self, "on_" + type_)
        return method(body)

    def on_init(self, body: dict) -> tuple[str, dict]:
        if body["policy"].startswith(b"invalid"):
            raise PolicyInvalid("policy: field 'format' is missing")
        self.policy = body["policy"]
        self.policy_hash = hashlib.sha256(self.policy).digest()
        self.event("start")
        return "ready", {"mode": "simulation", "policy_hash": self.policy_hash,
                         "enc_pub": ENC_PUB, "sig_pub": SIG_PUB}

    def on_attest(self, body: dict) -> tuple[str, dict]:
        nonce = body.get("nonce", ZERO_NONCE)
        quote = os.environ.get("FAKE_ENCLAVE_QUOTE")
        return "attestation", {
            "mode": "simulation", "enc_pub": ENC_PUB, "sig_pub": SIG_PUB, "policy": self.policy,
            "policy_hash": self.policy_hash, "nonce": nonce,
            "report_data": report_data(ENC_PUB, SIG_PUB, self.policy_hash, nonce),
            "quote": quote.encode() if quote else None,
        }

    def on_health(self, body: dict) -> tuple[str, dict]:
        marker = self.state / "die-on-health"
        if marker.exists():
            marker.unlink()
            os._exit(3)
        return "status", {"mode": "simulation", "uptime_s": int(time.monotonic() - self.started),
                          "datasets": len(self.manifest), "uploads_in_progress": len(self.streams)}

    def on_upload_begin(self, body: dict) -> tuple[str, dict]:
        header = msgpack.unpackb(body["header"])
        if header.get("mode") == "poison":
            self.event(f"refuse {header['upload_id'].hex()}")
            raise DecryptionFailed()
        stream = self.next_stream
        self.next_stream += 1
        self.streams[stream] = {"header": header, "index": 0, "ready": False,
                                "digest": UploadDigest(body["header"], body["signature"])}
        return "upload_started", {"stream": stream, "upload_id": header["upload_id"]}

    def _stream(self, body: dict) -> dict:
        if body["stream"] not in self.streams:
            raise NotFound("no such upload stream")
        return self.streams[body["stream"]]

    def on_upload_chunk(self, body: dict) -> tuple[str, dict]:
        s = self._stream(body)
        if s["ready"] or body["index"] != s["index"]:
            self.streams.pop(body["stream"])
            raise DecryptionFailed()
        if s["header"].get("mode") == "fail-chunk-1" and body["index"] == 1:
            self.streams.pop(body["stream"])
            raise DecryptionFailed()
        s["digest"].update(body["last"], body["data"])
        s["index"] += 1
        if not body["last"]:
            return "upload_chunk_ok", {"stream": body["stream"], "index": body["index"]}
        s["ready"] = True
        return "upload_ready", {"stream": body["stream"], "upload_id": s["header"]["upload_id"],
                                "rows": s["index"], "digest": s["digest"].digest()}

    def on_upload_commit(self, body: dict) -> tuple[str, dict]:
        s = self._stream(body)
        self.streams.pop(body["stream"])
        header = s["header"]
        if not s["ready"] or header.get("mode") == "refuse-commit":
            raise ConflictError()
        upload_hex = header["upload_id"].hex()
        if upload_hex in self.manifest:
            self.event(f"reingest {upload_hex}")
        else:
            entry = {"upload_id": upload_hex, "party": header["party"],
                     "dataset": header["dataset"], "rows": s["index"],
                     "digest": s["digest"].digest().hex(), "accepted_at": int(time.time())}
            self.manifest[upload_hex] = entry
            with open(self.state / "manifest.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
            self.event(f"commit {upload_hex}")
        receipt = msgpack.packb({"upload_id": header["upload_id"]})
        return "upload_receipt", {"receipt": receipt, "signature": FAKE_SIGNATURE, "audit": []}

    def on_upload_abort(self, body: dict) -> tuple[str, dict]:
        self._stream(body)
        self.streams.pop(body["stream"])
        self.event("abort")
        return "ok", {}

    def on_list_uploads(self, body: dict) -> tuple[str, dict]:
        uploads = [{**e, "upload_id": bytes.fromhex(e["upload_id"]),
                    "digest": bytes.fromhex(e["digest"])} for e in self.manifest.values()]
        return "uploads", {"uploads": uploads, "more": False}

    def on_query(self, body: dict) -> tuple[str, dict]:
        if body["request"] == b"deny":
            raise PolicyViolation("analysis 'overlap' is not allowed for this party")
        query_id = hashlib.sha256(body["request"]).digest()
        return "query_result", {"query_id": query_id,
                                "results": {"advertiser": b"sealed:" + query_id[:8]}, "audit": []}

    def on_audit_flush(self, body: dict) -> tuple[str, dict]:
        return "audit_entries", {"audit": []}


def main() -> None:
    host, port = os.environ["CLEANROOM_ENCLAVE_CONNECT"].rsplit(":", 1)
    state = Path(os.environ["CLEANROOM_STATE_DIR"])
    (state / "pid").write_text(str(os.getpid()))
    enclave = FakeEnclave(state)
    print("fake enclave starting", flush=True)
    with socket.create_connection((host, int(port))) as sock, sock.makefile("rb") as stream:

        def read_exact(n: int) -> bytes:
            data = stream.read(n)
            if len(data) != n:
                raise EOFError
            return data

        while True:
            try:
                message = unpack(read_frame(read_exact))
            except (EOFError, OSError):  # the host closed the connection: shut down
                return
            try:
                reply = enclave.handle(message.type, message.body)
            except CleanroomError as exc:
                reply = ("error", exc.to_wire())
            sock.sendall(encode_frame(pack(*reply)))

if __name__ == "__main__":
    main()
    sys.exit(0)
