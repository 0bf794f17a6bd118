"""Enclave lifecycle: death, restart, replay of stored uploads, quarantine, clean shutdown."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from host.storage import UploadStore
from host.supervisor import EnclaveSupervisor, SupervisorSettings
from protocol.errors import EnclaveUnavailable


def _post(app: Flask, body: bytes) -> Any:
    return app.test_client().post("/v1/uploads", data=body)


def _health(app: Flask) -> int:
    return app.test_client().get("/v1/health").status_code


def test_enclave_death_is_503_then_served_after_restart(
    app: Flask, state_dir: Path, h: Any
) -> None:
    supervisor = app.extensions["cleanroom"].supervisor
    first_pid = supervisor.child_pid
    (state_dir / "enclave" / "die-on-health").touch()
    response = app.test_client().get("/v1/health")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "enclave_unavailable"
    assert response.headers["Retry-After"]
    h.wait_for(lambda: _health(app) == 200)
    assert supervisor.info.generation == 2
    assert supervisor.child_pid != first_pid
    h.wait_for(lambda: not h.pid_alive(first_pid))


def test_killed_enclave_is_restarted_without_a_request(app: Flask, h: Any) -> None:
    supervisor = app.extensions["cleanroom"].supervisor
    pid = supervisor.child_pid
    os.kill(pid, signal.SIGKILL)
    h.wait_for(lambda: supervisor.info is not None and supervisor.info.generation == 2)
    assert _health(app) == 200


def test_uploads_are_replayed_in_order_after_a_restart(
    app: Flask, state_dir: Path, h: Any
) -> None:
    ids = [h.new_id() for _ in range(3)]
    for upload_id in ids:
        assert _post(app, h.build_upload(upload_id, [b"a", b"b"])).status_code == 201
    (state_dir / "enclave" / "die-on-health").touch()
    assert _health(app) == 503
    h.wait_for(lambda: _health(app) == 200)
    events = h.events(state_dir)
    second_start = len(events) - 1 - events[::-1].index("start")
    assert events[second_start + 1:] == [f"reingest {i.hex()}" for i in ids]


def test_host_restart_replays_into_a_new_enclave(make_app: Any, state_dir: Path, h: Any) -> None:
    first = make_app()
    upload_id = h.new_id()
    assert _post(first, h.build_upload(upload_id, [b"x"])).status_code == 201
    first.extensions["cleanroom"].supervisor.stop()
    second = make_app()
    assert h.events(state_dir)[-1] == f"reingest {upload_id.hex()}"
    listed = second.test_client().get("/v1/uploads").get_json()["uploads"]
    assert [u["upload_id"] for u in listed] == [upload_id.hex()]


def _store_raw(state_dir: Path, upload_id: bytes, body: bytes) -> None:
    store = UploadStore(state_dir)
    with store.new_upload() as writer:
        writer._file.write(body)
        store.commit(writer, upload_id)


def test_refused_and_corrupt_uploads_are_quarantined_on_replay(
    make_app: Any, state_dir: Path, h: Any
) -> None:
    good, poison, corrupt, misfiled = (h.new_id() for _ in range(4))
    _store_raw(state_dir, good, h.build_upload(good, [b"ok"]))
    _store_raw(state_dir, poison, h.build_upload(poison, [b"ok"], mode="poison"))
    _store_raw(state_dir, corrupt, h.build_upload(corrupt, [b"ok"])[:-1])
    _store_raw(state_dir, misfiled, h.build_upload(h.new_id(), [b"ok"]))
    app = make_app()
    quarantined = sorted(p.name for p in (state_dir / "uploads" / "quarantine").iterdir())
    assert quarantined == sorted(f"{i.hex()}.upload" for i in (poison, corrupt, misfiled))
    assert app.extensions["cleanroom"].uploads.accepted() == [good]
    assert f"commit {good.hex()}" in h.events(state_dir)
    assert _health(app) == 200


def _settings(tmp_path: Path, command: list[str], **extra: Any) -> SupervisorSettings:
    extra.setdefault("cwd", Path.cwd())
    extra.setdefault("start_timeout", 10)
    return SupervisorSettings(command=command, state_dir=tmp_path / "state",
                              call_timeout=10, stop_timeout=2,
                              restart_delay=0.05, restart_max_delay=0.2, **extra)


def test_child_exiting_at_start_fails_fast(tmp_path: Path) -> None:
    settings = _settings(tmp_path, [sys.executable, "-c", "raise SystemExit(1)"])
    supervisor = EnclaveSupervisor(settings, b"policy")
    started = time.monotonic()
    with pytest.raises(EnclaveUnavailable, match="exited"):
        supervisor.start()
    assert time.monotonic() - started < 8
    with pytest.raises(EnclaveUnavailable):
        supervisor.call("health", {})


def test_a_child_that_dies_at_start_leaves_its_output_in_the_log_and_its_status_in_the_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Under Gramine the loader's own error (e.g. libos_init() failed) is the child's output:
    # a tester must see it, not only the host's traceback.
    code = "import sys; print('libos_init() failed in init_exec_handle: ENOENT'); sys.exit(3)"
    supervisor = EnclaveSupervisor(_settings(tmp_path, [sys.executable, "-c", code]), b"policy")
    with caplog.at_level("INFO", logger="host.enclave"), pytest.raises(EnclaveUnavailable) as err:
        supervisor.start()
    assert "status 3" in err.value.message and "enclave[" in err.value.message
    assert any("libos_init() failed" in r.getMessage() for r in caplog.records)


def test_child_that_never_connects_times_out_and_is_killed(tmp_path: Path, h: Any) -> None:
    script = "import os, time; open('pid', 'w').write(str(os.getpid())); time.sleep(60)"
    settings = _settings(tmp_path, [sys.executable, "-c", script], start_timeout=1, cwd=tmp_path)
    supervisor = EnclaveSupervisor(settings, b"policy")
    with pytest.raises(EnclaveUnavailable, match="in time"):
        supervisor.start()
    assert not h.pid_alive(int((tmp_path / "pid").read_text()))


def test_stop_ends_the_child_and_refuses_calls(tmp_path: Path, h: Any) -> None:
    supervisor = EnclaveSupervisor(
        _settings(tmp_path, shlex.split(h.FAKE_COMMAND)), b"policy")
    supervisor.start()
    pid = supervisor.child_pid
    assert supervisor.call("health", {}).type == "status"
    supervisor.stop()
    assert not h.pid_alive(pid)
    with pytest.raises(EnclaveUnavailable):
        supervisor.call("health", {})
    supervisor.stop()  # idempotent


def test_restarts_are_bounded(tmp_path: Path, h: Any) -> None:
    flag = tmp_path / "fail-next-starts"
    # Starts once, then every later start exits at once: the supervisor must give up.
    script = (f"import os, runpy, sys, pathlib; p = pathlib.Path({str(flag)!r}); "
              f"sys.exit(1) if p.exists() else None; "
              f"sys.argv = [{str(h.FAKE_ENCLAVE)!r}]; runpy.run_path(sys.argv[0], "
              f"run_name='__main__')")
    supervisor = EnclaveSupervisor(
        _settings(tmp_path, [sys.executable, "-c", script], max_restarts=3), b"policy")
    supervisor.start()
    flag.touch()
    os.kill(supervisor.child_pid, signal.SIGKILL)
    h.wait_for(lambda: supervisor._gave_up, timeout=15)
    with pytest.raises(EnclaveUnavailable):
        supervisor.call("health", {})
    supervisor.stop()
