"""Host settings: one table of defaults, overridable by ``CLEANROOM_*`` environment variables.

Precedence, lowest first: the defaults below, the process environment, then the mapping given to
``create_app``. Keys in the Flask config are the environment variable names themselves, so one
name is documented, set and read everywhere. The host holds no secrets, so nothing here is one:
there are no keys, tokens or passwords to configure, and no secret defaults.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["READ_TIMEOUT_ENV", "SETTINGS", "Setting", "load_config"]

# Read by the gunicorn worker (host/worker.py) from the environment the CLI exports it to.
READ_TIMEOUT_ENV = "CLEANROOM_UPLOAD_READ_TIMEOUT"

# The directory holding the `enclave` package: `python -m enclave` must run from there.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path(value: str) -> Path:
    return Path(value).expanduser()


def _command(value: str | list[str] | tuple[str, ...]) -> list[str]:
    # Shell-style so testers can write `gramine-sgx ./cleanroom-enclave`; never run via a shell.
    argv = shlex.split(value) if isinstance(value, str) else [str(v) for v in value]
    if not argv:
        raise ValueError("CLEANROOM_ENCLAVE_COMMAND is empty")
    return argv


def _positive_float(value: str | float) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a positive number")
    return number


def _positive_int(value: str | int) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a positive integer")
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _non_negative_float(value: str | float) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError("must be a non-negative number")
    return number


def _optional_path(value: str | Path | None) -> Path | None:
    return None if value in (None, "") else _path(str(value))


def _optional_str(value: str | None) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


@dataclass(frozen=True)
class Setting:
    """One setting: its default and how to read it from a string (or an already typed value)."""

    default: Any
    parse: Callable[[Any], Any]
    help: str


SETTINGS: dict[str, Setting] = {
    "CLEANROOM_STATE_DIR": Setting(
        None, _optional_path, "directory for stored ciphertexts, results and the enclave's state"
    ),
    "CLEANROOM_POLICY_FILE": Setting(
        None, _optional_path, "the collaboration policy (TOML) handed to the enclave at start"
    ),
    "CLEANROOM_ENCLAVE_COMMAND": Setting(
        [sys.executable, "-m", "enclave"],
        _command,
        "command line starting the enclave, e.g. 'gramine-sgx ./cleanroom-enclave'",
    ),
    "CLEANROOM_ENCLAVE_CWD": Setting(
        PROJECT_ROOT, _path, "working directory of the enclave process"
    ),
    "CLEANROOM_ENCLAVE_START_TIMEOUT": Setting(
        120.0, _positive_float, "seconds for the enclave to connect and answer init (SGX is slow)"
    ),
    "CLEANROOM_ENCLAVE_CALL_TIMEOUT": Setting(
        300.0, _positive_float, "seconds one enclave call may take before it is declared dead"
    ),
    "CLEANROOM_ENCLAVE_STOP_TIMEOUT": Setting(
        10.0, _positive_float, "seconds between SIGTERM and SIGKILL when stopping the enclave"
    ),
    "CLEANROOM_ENCLAVE_RESTART_DELAY": Setting(
        0.5, _positive_float, "first delay before restarting a dead enclave; doubles per failure"
    ),
    "CLEANROOM_ENCLAVE_RESTART_MAX_DELAY": Setting(
        30.0, _positive_float, "upper bound of the restart delay"
    ),
    "CLEANROOM_ENCLAVE_MAX_RESTARTS": Setting(
        20, _positive_int, "consecutive failed restarts before the host gives up (stays 503)"
    ),
    "CLEANROOM_MAX_UPLOAD_BYTES": Setting(
        64 * 1024**3, _positive_int, "largest accepted upload body in bytes"
    ),
    "CLEANROOM_MAX_CONCURRENT_UPLOADS": Setting(
        4, _positive_int, "uploads streamed at once (a slot is taken only once the enclave "
        "has checked the signed header); more get 503 enclave_busy"
    ),
    "CLEANROOM_MAX_UPLOAD_CONNECTIONS": Setting(
        8, _positive_int, "upload requests being received at once, header phase included; more "
        "get 503 enclave_busy at once (the CLI keeps it at most half of --threads)"
    ),
    "CLEANROOM_UPLOAD_READ_TIMEOUT": Setting(
        30.0, _positive_float, "seconds a read may wait for the next byte from a client (request "
        "head and body); a silent connection is cut off after it (408)"
    ),
    "CLEANROOM_UPLOAD_HEADER_TIMEOUT": Setting(
        10.0, _positive_float, "seconds an upload's signed header record (record 0, at most "
        "64 KiB) may take to arrive whole, before any upload slot is held"
    ),
    "CLEANROOM_UPLOAD_MIN_RATE": Setting(
        16384.0, _non_negative_float, "bytes per second an upload body must average (time "
        "waiting for the client only, after a grace of the read timeout); 0 disables it"
    ),
    "CLEANROOM_MAX_JSON_BYTES": Setting(
        1024 * 1024, _positive_int, "largest JSON request body in bytes"
    ),
    "CLEANROOM_COLLATERAL_FILE": Setting(
        None, _optional_path, "DCAP collateral JSON served with real quotes (optional)"
    ),
    "CLEANROOM_COLLATERAL_DIR": Setting(
        None, _optional_str, "directory of collateral files for real quotes (host.collateral)"
    ),
    "CLEANROOM_PCCS_URL": Setting(
        None, _optional_str, "PCCS to fetch collateral for real quotes from (host.collateral)"
    ),
    "CLEANROOM_ATTESTATION_CACHE_SECONDS": Setting(
        3600.0, _positive_float, "how long the nonce-less attestation bundle is reused"
    ),
}


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Defaults, then ``CLEANROOM_*`` variables from ``environ``, then ``overrides``; all parsed.

    Raises:
        ValueError: a value does not parse, or a required setting is missing.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    # A misspelt key in code is a bug; the environment may hold the enclave's own CLEANROOM_* names.
    unknown = sorted(k for k in overrides if k.startswith("CLEANROOM_") and k not in SETTINGS)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]}")
    config: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        if name in overrides:
            raw = overrides[name]
        elif name in environ:
            raw = environ[name]
        else:
            config[name] = setting.default
            continue
        try:
            config[name] = setting.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: {exc}") from None
    for name in ("CLEANROOM_STATE_DIR", "CLEANROOM_POLICY_FILE"):
        if config[name] is None:
            raise ValueError(f"{name} is required")
    # Everything else in the mapping (Flask's own keys such as TESTING) passes through untouched.
    extra = {k: v for k, v in overrides.items() if k not in SETTINGS}
    return {**extra, **config}
