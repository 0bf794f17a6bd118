"""``cleanroom-host``: serve the host API with gunicorn, one worker process, one enclave.

A clean room has exactly one enclave, and the enclave belongs to the process that started it, so
gunicorn runs ONE worker (gthread, so requests and long uploads run concurrently in threads;
``host/worker.py`` adds a read timeout to every connection).
The worker builds the app, which starts the enclave; the URL is printed once it is ready.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from host.config import READ_TIMEOUT_ENV, SETTINGS

__all__ = ["DEFAULT_THREADS", "main", "upload_connections"]

# Worker model (issue 11, point 10). gthread reads each request in a pool thread, and an upload
# keeps its thread for as long as its body takes to arrive, so uploads that stall must never be
# able to take every thread. Rather than a second pool (one worker process owns the enclave, so
# a second process cannot serve health or attestation), the upload view admits at most half the
# threads (CLEANROOM_MAX_UPLOAD_CONNECTIONS, capped by `upload_connections`) and refuses the
# rest at once with 503; every read waits at most the read timeout for the next byte
# (host/worker.py, host/read_guard.py). 16 threads: 8 may receive uploads (of which 4 stream into
# the enclave, CLEANROOM_MAX_CONCURRENT_UPLOADS), 8 always answer health, attestation and queries.
DEFAULT_THREADS = 16
_WORKER_CLASS = "host.worker.ReadTimeoutThreadWorker"

_DESCRIPTION = """\
Untrusted host of the SGX data clean room. It starts the enclave as a child process, relays
ciphertext between the parties and the enclave, stores accepted uploads durably and replays them
into the enclave after a restart. It holds no keys and never sees plaintext.
"""


def _settings_help() -> str:
    lines = ["environment (serve options override them):"]
    for name, setting in SETTINGS.items():
        lines.append(f"  {name}\n      {setting.help}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleanroom-host",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="start the enclave and serve the HTTP API (/v1)",
        description=_DESCRIPTION + "\nServe the HTTP API until SIGTERM or Ctrl-C; then stop "
        "the enclave (EOF, SIGTERM, SIGKILL).",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--policy", required=True, type=Path, metavar="FILE",
                       help="collaboration policy (TOML) every party agreed to; its SHA-256 is "
                       "bound into the enclave's quote")
    serve.add_argument("--state-dir", required=True, type=Path, metavar="DIR",
                       help="where uploads, results, the enclave's sealed state and the "
                       "simulation PKI live (created if missing)")
    serve.add_argument("--bind", default="127.0.0.1:8700", metavar="HOST:PORT",
                       help="listen address (default: %(default)s; port 0 picks a free port). "
                       "Put TLS in front of it when exposing it beyond loopback")
    serve.add_argument("--threads", type=int, default=DEFAULT_THREADS, metavar="N",
                       help="request threads of the single worker (default: %(default)s); at "
                       "most half of them receive uploads at once, the rest stay free for "
                       "health, attestation and queries")
    serve.add_argument("--read-timeout", type=float, metavar="SECONDS",
                       help="seconds a read may wait for the next byte from a client before the "
                       "connection is cut off (overrides CLEANROOM_UPLOAD_READ_TIMEOUT; "
                       "default 30)")
    serve.add_argument("--enclave-command", metavar="CMD",
                       help="command line starting the enclave, e.g. 'gramine-sgx "
                       "./cleanroom-enclave' (default: this Python with -m enclave)")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"],
                       help="host log level (default: %(default)s)")
    return parser


def _check_policy(path: Path) -> bytes:
    # Fail before forking gunicorn rather than inside the worker; the enclave still decides.
    from protocol.policy import parse_policy

    raw = path.read_bytes()
    parse_policy(raw)
    return raw


def upload_connections(threads: int, configured: int) -> int:
    """Upload requests admitted at once: the configured number, but at most half the threads."""
    return max(1, min(configured, threads // 2))


def _run_gunicorn(app_config: dict[str, Any], bind: str, threads: int, log_level: str) -> None:
    """Serve ``create_app(app_config)`` with gunicorn; returns when gunicorn stops."""
    from gunicorn.app.base import BaseApplication

    from host import create_app, shutdown_app

    state: dict[str, Any] = {}

    def post_worker_init(worker: Any) -> None:
        host, port = worker.sockets[0].getsockname()[:2]
        print(f"cleanroom-host: serving http://{host}:{port}/v1", flush=True)

    def worker_exit(server: Any, worker: Any) -> None:
        if "app" in state:
            shutdown_app(state["app"])

    options = {
        "bind": bind,
        "workers": 1,
        # gthread, plus a read timeout on every connection (request head and body).
        "worker_class": _WORKER_CLASS,
        "threads": threads,
        # The heartbeat, not a request deadline: gthread keeps beating while threads stream
        # long uploads. It does bound app loading, which includes starting the enclave (slow
        # under SGX) and replaying every stored upload into it, hence an hour. Stalled clients
        # are bounded by the read timeouts instead (CLEANROOM_UPLOAD_*).
        "timeout": 3600,
        "graceful_timeout": 60,
        "keepalive": 5,
        "loglevel": log_level,
        "errorlog": "-",
        "accesslog": None,
        "control_socket_disable": True,  # no extra management socket in $HOME
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
    }

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            state["app"] = create_app(app_config)
            return state["app"]

    Application().run()


def _stall_settings(args: argparse.Namespace) -> tuple[float, int]:
    """The effective read timeout and upload connection limit (option, environment, default)."""

    def setting(name: str, option: Any) -> Any:
        raw = option if option is not None else os.environ.get(name, SETTINGS[name].default)
        try:
            return SETTINGS[name].parse(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: {exc}") from None

    read_timeout = setting(READ_TIMEOUT_ENV, args.read_timeout)
    configured = setting("CLEANROOM_MAX_UPLOAD_CONNECTIONS", None)
    return read_timeout, upload_connections(args.threads, configured)


def _serve(args: argparse.Namespace) -> int:
    if args.threads < 1:
        print("cleanroom-host: --threads must be at least 1", file=sys.stderr)
        return 2
    try:
        _check_policy(args.policy)
    except OSError as exc:
        print(f"cleanroom-host: cannot read the policy: {exc.strerror}", file=sys.stderr)
        return 2
    except Exception as exc:  # PolicyInvalid names the field, never a value
        print(f"cleanroom-host: invalid policy: {exc}", file=sys.stderr)
        return 2
    try:
        read_timeout, connections = _stall_settings(args)
    except ValueError as exc:
        print(f"cleanroom-host: {exc}", file=sys.stderr)
        return 2
    # The worker (host/worker.py) reads the timeout from the environment, the app from its config.
    os.environ[READ_TIMEOUT_ENV] = repr(read_timeout)
    app_config: dict[str, Any] = {
        "CLEANROOM_POLICY_FILE": str(args.policy.resolve()),
        "CLEANROOM_STATE_DIR": str(args.state_dir.resolve()),
        READ_TIMEOUT_ENV: read_timeout,
        "CLEANROOM_MAX_UPLOAD_CONNECTIONS": connections,
    }
    if args.enclave_command:
        app_config["CLEANROOM_ENCLAVE_COMMAND"] = args.enclave_command
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _run_gunicorn(app_config, args.bind, args.threads, args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2  # argparse already refused unknown commands


if __name__ == "__main__":
    sys.exit(main())
