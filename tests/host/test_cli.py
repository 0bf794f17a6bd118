"""``cleanroom-host``: help text, argument checks, and a real gunicorn server (slow)."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from host.cli import main
from host.config import SETTINGS

PROJECT = Path(__file__).resolve().parents[2]
POLICY = PROJECT / "policies" / "advertiser-publisher.toml"


def test_help_explains_options_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--policy", "--state-dir", "--bind", "--threads", "--read-timeout",
                   "--enclave-command"):
        assert option in out
    for name in SETTINGS:
        assert name in out


def test_serve_refuses_an_invalid_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("unknown_field = 1\n")
    assert main(["serve", "--policy", str(policy), "--state-dir", str(tmp_path / "s")]) == 2
    assert "invalid policy" in capsys.readouterr().err
    assert main(["serve", "--policy", str(tmp_path / "missing"),
                 "--state-dir", str(tmp_path / "s")]) == 2


def test_serve_refuses_invalid_read_timeouts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not POLICY.exists():
        pytest.skip("example policy missing")
    base = ["serve", "--policy", str(POLICY), "--state-dir", str(tmp_path / "s")]
    assert main([*base, "--read-timeout", "0"]) == 2
    assert "CLEANROOM_UPLOAD_READ_TIMEOUT" in capsys.readouterr().err
    monkeypatch.setenv("CLEANROOM_MAX_UPLOAD_CONNECTIONS", "none")
    assert main(base) == 2
    assert "CLEANROOM_MAX_UPLOAD_CONNECTIONS" in capsys.readouterr().err


def _lines(stream: Any, out: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        out.put(line)


def _request(url: str, data: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _post_chunked(url: str, body: bytes) -> tuple[int, Any]:
    """POST with Transfer-Encoding: chunked (no Content-Length), in uneven pieces."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=20)
    try:
        pieces = (body[i:i + 9999] for i in range(0, len(body), 9999))
        conn.request("POST", f"{parsed.path}/uploads", body=pieces, encode_chunked=True,
                     headers={"Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.slow
def test_serve_over_real_http(tmp_path: Path, h: Any) -> None:
    if not POLICY.exists():
        pytest.skip("example policy missing")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANROOM_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "serve", "--policy", str(POLICY),
         "--state-dir", str(state), "--bind", "127.0.0.1:0", "--threads", "4",
         "--enclave-command", h.FAKE_COMMAND],
        cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    output: list[str] = []
    try:
        url = None
        while url is None:
            line = lines.get(timeout=60)
            output.append(line)
            if line.startswith("cleanroom-host: serving "):
                url = line.split()[-1]
        status, body = _request(f"{url}/health")
        assert status == 200 and body["status"] == "ok"
        upload_id = h.new_id()
        upload = h.build_upload(upload_id, [b"a" * 100_000, b"b"])
        status, body = _request(f"{url}/uploads", upload)
        assert status == 201, body
        assert body["upload_id"] == upload_id.hex()
        assert (state / "uploads" / f"{upload_id.hex()}.upload").read_bytes() == upload
        chunked_id = h.new_id()
        chunked = h.build_upload(chunked_id, [b"c" * 70_000, b"d" * 10])
        status, body = _post_chunked(url, chunked)
        assert status == 201, body
        assert (state / "uploads" / f"{chunked_id.hex()}.upload").read_bytes() == chunked
        status, body = _request(f"{url}/nothing")
        assert status == 404 and body["error"]["code"] == "not_found"
        enclave_pid = int((state / "enclave" / "pid").read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(10)
        process.stdout.close()
    assert process.returncode == 0, "".join(output)
    h.wait_for(lambda: not h.pid_alive(enclave_pid), timeout=10)
