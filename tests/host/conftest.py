"""Fixtures for host tests: a fake enclave process, app and client, upload body builders.

The host is tested against ``fake_enclave.py``, a separate process speaking the real frames and
messages over the real loopback connection, so the supervisor, relay and replay paths are the
production ones. Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from flask import Flask
from flask.testing import FlaskClient

from host import create_app, shutdown_app
from protocol.upload import RECORD_HEADER

FAKE_ENCLAVE = Path(__file__).with_name("fake_enclave.py")
FAKE_COMMAND = shlex.join([sys.executable, str(FAKE_ENCLAVE)])
SIGNATURE = bytes(range(64))


def record(payload: bytes) -> bytes:
    return RECORD_HEADER.pack(len(payload)) + payload


def upload_header(upload_id: bytes, mode: str | None = None) -> bytes:
    header: dict[str, Any] = {"upload_id": upload_id, "party": "advertiser", "dataset": "crm"}
    if mode is not None:
        header["mode"] = mode
    return msgpack.packb(header)


def build_upload(upload_id: bytes, chunks: list[bytes], mode: str | None = None) -> bytes:
    """An HTTP upload body: header record, then one record per chunk, the last one flagged."""
    first = msgpack.packb({"header": upload_header(upload_id, mode), "signature": SIGNATURE})
    body = record(first)
    for i, chunk in enumerate(chunks):
        body += record((b"\x01" if i == len(chunks) - 1 else b"\x00") + chunk)
    return body


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists"; /proc tells whether it has really finished.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_bytes(b"# a fake policy: the fake enclave only hashes it\nformat = 1\n")
    return path


@pytest.fixture
def host_config(state_dir: Path, policy_file: Path) -> dict[str, Any]:
    return {
        "CLEANROOM_STATE_DIR": str(state_dir),
        "CLEANROOM_POLICY_FILE": str(policy_file),
        "CLEANROOM_ENCLAVE_COMMAND": FAKE_COMMAND,
        "CLEANROOM_ENCLAVE_START_TIMEOUT": 20,
        "CLEANROOM_ENCLAVE_CALL_TIMEOUT": 20,
        "CLEANROOM_ENCLAVE_STOP_TIMEOUT": 5,
        "CLEANROOM_ENCLAVE_RESTART_DELAY": 0.05,
        "CLEANROOM_ENCLAVE_RESTART_MAX_DELAY": 0.5,
        "TESTING": True,
    }


@pytest.fixture
def make_app(host_config: dict[str, Any]) -> Iterator[Callable[..., Flask]]:
    """Build apps with extra settings; every app's enclave is stopped at teardown."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app({**host_config, **overrides})
        apps.append(app)
        return app

    yield make
    for app in apps:
        shutdown_app(app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def enclave_events(state_dir: Path) -> list[str]:
    path = state_dir / "enclave" / "events.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def h() -> SimpleNamespace:
    """Helpers for the test modules (with --import-mode=importlib they cannot import conftest)."""
    return SimpleNamespace(
        FAKE_COMMAND=FAKE_COMMAND,
        FAKE_ENCLAVE=FAKE_ENCLAVE,
        SIGNATURE=SIGNATURE,
        record=record,
        upload_header=upload_header,
        build_upload=build_upload,
        wait_for=wait_for,
        pid_alive=pid_alive,
        events=enclave_events,
        new_id=lambda: secrets.token_bytes(16),
    )
