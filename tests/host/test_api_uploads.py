"""POST/GET /v1/uploads through the app, against the fake enclave."""

from __future__ import annotations

import base64
import io
import threading
import time
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from protocol.upload import UploadDigest


def _post(client: FlaskClient, body: bytes) -> Any:
    return client.post("/v1/uploads", data=body,
                       headers={"Content-Type": "application/octet-stream"})


def _uploads_dir(state_dir: Path) -> Path:
    return state_dir / "uploads"


def _leftovers(state_dir: Path) -> list[str]:
    return sorted(p.name for p in _uploads_dir(state_dir).iterdir()
                  if p.name not in ("index", "quarantine"))


def test_upload_is_stored_exactly_and_acknowledged(
    client: FlaskClient, state_dir: Path, h: Any
) -> None:
    upload_id = h.new_id()
    chunks = [b"c" * 1000, b"d" * 10, b"e"]
    body = h.build_upload(upload_id, chunks)
    response = _post(client, body)
    assert response.status_code == 201, response.get_json()
    receipt = response.get_json()
    assert receipt["upload_id"] == upload_id.hex()
    assert receipt["rows"] == 3
    digest = UploadDigest(h.upload_header(upload_id), h.SIGNATURE)
    for i, chunk in enumerate(chunks):
        digest.update(i == 2, chunk)
    assert receipt["digest"] == digest.digest().hex()
    assert base64.b64decode(receipt["signature"]) == bytes(64)
    assert base64.b64decode(receipt["receipt"])
    stored = _uploads_dir(state_dir) / f"{upload_id.hex()}.upload"
    assert stored.read_bytes() == body
    assert _leftovers(state_dir) == [stored.name]
    assert f"commit {upload_id.hex()}" in h.events(state_dir)


def test_chunked_transfer_encoding(client: FlaskClient, state_dir: Path, h: Any) -> None:
    upload_id = h.new_id()
    body = h.build_upload(upload_id, [b"x" * 5000, b"y"])
    # No Content-Length: the WSGI server marks the input as terminated instead.
    response = client.post("/v1/uploads", input_stream=io.BytesIO(body),
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 201, response.get_json()
    assert (_uploads_dir(state_dir) / f"{upload_id.hex()}.upload").read_bytes() == body


def test_list_uploads(client: FlaskClient, h: Any) -> None:
    ids = [h.new_id(), h.new_id()]
    for upload_id in ids:
        assert _post(client, h.build_upload(upload_id, [b"x"])).status_code == 201
    listed = client.get("/v1/uploads").get_json()["uploads"]
    assert [u["upload_id"] for u in listed] == [i.hex() for i in ids]
    assert {u["party"] for u in listed} == {"advertiser"}
    assert all(len(u["digest"]) == 64 and u["rows"] == 1 for u in listed)


def test_refused_chunk_leaves_nothing_behind(
    client: FlaskClient, state_dir: Path, h: Any
) -> None:
    upload_id = h.new_id()
    response = _post(client, h.build_upload(upload_id, [b"a", b"b", b"c"], mode="fail-chunk-1"))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "decrypt_failed"
    assert _leftovers(state_dir) == []  # renamed only after upload_ready; temp file deleted
    assert f"commit {upload_id.hex()}" not in h.events(state_dir)


def test_refused_commit_removes_the_stored_copy(
    client: FlaskClient, state_dir: Path, h: Any
) -> None:
    response = _post(client, h.build_upload(h.new_id(), [b"a"], mode="refuse-commit"))
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert _leftovers(state_dir) == []


def test_malformed_stream_aborts_the_enclave_stream(
    client: FlaskClient, state_dir: Path, h: Any
) -> None:
    body = h.build_upload(h.new_id(), [b"a", b"b"])
    response = _post(client, body[:-1])
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_message"
    assert _leftovers(state_dir) == []
    assert "abort" in h.events(state_dir)
    assert client.get("/v1/health").get_json()["enclave"]["uploads_in_progress"] == 0


def test_bad_signature_length_is_refused_before_the_enclave(client: FlaskClient, h: Any) -> None:
    import msgpack

    first = msgpack.packb({"header": b"h", "signature": b"short"})
    response = _post(client, h.record(first) + h.record(b"\x01x"))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_message"


def test_upload_size_limit(make_app: Any, state_dir: Path, h: Any) -> None:
    client = make_app(CLEANROOM_MAX_UPLOAD_BYTES=2000).test_client()
    response = _post(client, h.build_upload(h.new_id(), [b"x" * 1500, b"y" * 1500]))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "message_too_large"
    assert _leftovers(state_dir) == []


def test_too_many_concurrent_uploads(make_app: Any, h: Any) -> None:
    app = make_app(CLEANROOM_MAX_CONCURRENT_UPLOADS=1)
    slots = app.extensions["cleanroom"].upload_slots
    assert slots.acquire(blocking=False)  # one upload is streaming
    try:
        response = _post(app.test_client(), h.build_upload(h.new_id(), [b"x"]))
    finally:
        slots.release()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "enclave_busy"
    assert response.headers["Retry-After"]


class _RecordingInput(io.RawIOBase):
    """A WSGI input that records the largest read the app asks for."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.max_request = 0
        self.total = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # werkzeug's test client measures the body this way
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()

    def readinto(self, buffer: Any) -> int:
        self.max_request = max(self.max_request, len(buffer))
        data = self._data.read(len(buffer))
        buffer[: len(data)] = data
        self.total += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 62
        self.max_request = max(self.max_request, size)
        data = self._data.read(size)
        self.total += len(data)
        return data


def test_big_upload_is_streamed_not_read_at_once(
    client: FlaskClient, state_dir: Path, h: Any
) -> None:
    upload_id = h.new_id()
    chunks = [bytes([i]) * (4 * 1024 * 1024) for i in range(4)]  # 16 MiB body
    body = h.build_upload(upload_id, chunks)
    stream = _RecordingInput(body)
    response = client.post("/v1/uploads", input_stream=stream,
                           headers={"Content-Length": str(len(body)),
                                    "Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.get_json()
    assert stream.total == len(body)
    assert stream.max_request <= 1024 * 1024
    assert (_uploads_dir(state_dir) / f"{upload_id.hex()}.upload").read_bytes() == body


class _PacedInput(io.RawIOBase):
    """Hands out the body in small pieces, pausing so concurrent uploads interleave."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()

    def read(self, size: int = -1) -> bytes:
        time.sleep(0.002)
        return self._data.read(min(size, 4096) if size >= 0 else 4096)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_concurrent_uploads_interleave(app: Any, state_dir: Path, h: Any) -> None:
    ids = [h.new_id() for _ in range(3)]
    bodies = {i: h.build_upload(i, [bytes([n]) * 20_000 for n in range(5)]) for i in ids}
    statuses: dict[bytes, int] = {}

    def send(upload_id: bytes) -> None:
        body = bodies[upload_id]
        response = app.test_client().post(
            "/v1/uploads", input_stream=_PacedInput(body),
            headers={"Content-Length": str(len(body))})
        statuses[upload_id] = response.status_code

    threads = [threading.Thread(target=send, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == {i: 201 for i in ids}
    for upload_id, body in bodies.items():
        assert (_uploads_dir(state_dir) / f"{upload_id.hex()}.upload").read_bytes() == body
    order = app.extensions["cleanroom"].uploads.accepted()
    commits = [e.split()[1] for e in h.events(state_dir) if e.startswith("commit ")]
    assert [i.hex() for i in order] == commits  # index order is the enclave's commit order
