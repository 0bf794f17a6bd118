"""The application factory and the one error shape for every failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import protocol.errors as errors_module
from host import create_app
from host.errors import STATUS_BY_CODE
from protocol.errors import CleanroomError, PolicyInvalid


def _all_codes() -> set[str]:
    codes = set()
    for name in errors_module.__all__:
        obj = getattr(errors_module, name)
        if isinstance(obj, type) and issubclass(obj, CleanroomError):
            codes.add(obj.code)
    return codes


def test_every_error_code_has_a_status() -> None:
    assert _all_codes() <= set(STATUS_BY_CODE)


def test_factory_returns_a_flask_app_with_the_enclave_ready(app: Flask) -> None:
    services = app.extensions["cleanroom"]
    assert isinstance(app, Flask)
    assert services.supervisor.info.mode == "simulation"
    assert services.supervisor.info.generation == 1


def test_factory_requires_state_dir_and_policy(host_config: dict[str, Any]) -> None:
    config = dict(host_config)
    del config["CLEANROOM_STATE_DIR"]
    with pytest.raises(ValueError, match="CLEANROOM_STATE_DIR"):
        create_app(config)


def test_factory_rejects_a_misspelt_setting(host_config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="CLEANROOM_STATEDIR"):
        create_app({**host_config, "CLEANROOM_STATEDIR": "/tmp"})


def test_factory_reads_settings_from_the_environment(
    host_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, make_app: Any
) -> None:
    monkeypatch.setenv("CLEANROOM_MAX_CONCURRENT_UPLOADS", "7")
    app = make_app()
    assert app.config["CLEANROOM_MAX_CONCURRENT_UPLOADS"] == 7
    monkeypatch.setenv("CLEANROOM_MAX_CONCURRENT_UPLOADS", "-1")
    with pytest.raises(ValueError, match="CLEANROOM_MAX_CONCURRENT_UPLOADS"):
        create_app(host_config)


def test_enclave_refusing_the_policy_fails_the_factory(
    host_config: dict[str, Any], policy_file: Path, h: Any
) -> None:
    policy_file.write_bytes(b"invalid policy")
    with pytest.raises(PolicyInvalid):
        create_app(host_config)
    pid = int((Path(host_config["CLEANROOM_STATE_DIR"]) / "enclave" / "pid").read_text())
    h.wait_for(lambda: not h.pid_alive(pid), timeout=10)


def _error(response: Any) -> dict[str, str]:
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


def test_unknown_route_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_wrong_method_is_a_json_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/v1/health")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_unexpected_exception_is_a_generic_500(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    def explode() -> str:
        raise RuntimeError("secret row value 42")

    app.add_url_rule("/boom", view_func=explode)
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert _error(response) == {"code": "internal", "message": "internal error"}
    assert b"secret" not in response.data and b"Traceback" not in response.data
    assert "secret row value 42" in caplog.text  # the traceback goes to the host log


def test_health(client: FlaskClient) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["enclave"]["mode"] == "simulation"
