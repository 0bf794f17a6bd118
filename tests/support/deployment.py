"""The one real-host harness: `python -m host.cli serve` (gunicorn) and its enclave, on loopback.

Used by the end-to-end and adversarial tests and by the benchmarks (``benchmarks/http_path.py``,
``benchmarks/soak.py``). Nothing is faked: the host is the production CLI in a child process,
and it starts the real `python -m enclave` in simulation mode as its own child. Callers reach it
over HTTP only, find the enclave by the state directory in its environment (so they can SIGKILL
it, as a crash or a hostile host would), and may stop and start the host on the same state
directory to exercise the replay after a restart. Every wait has a timeout; ``stop`` always
reaps the host and any enclave it left behind. Failures raise ``HostError``.

Layout of ``work``: ``policy.toml`` (written here), ``host-state/`` (the host's state directory),
``host.log`` (the host's stdout and stderr: truncated on the first start, appended across
restarts).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any

from cleanroom.audit import HeadStore
from cleanroom.client import Client

__all__ = ["ROOT", "HostDeployment", "HostError", "HttpReply", "enclave_pids", "free_port", "http"]

ROOT = Path(__file__).resolve().parents[2]
_POLL_S = 0.05  # health and process polling; soak recovery times are measured with it


class HostError(RuntimeError):
    """The host did not start or come back in time, exited, or its enclave is not as expected."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def enclave_pids(state: Path) -> list[int]:
    """Enclave children of one deployment, found by the state dir in their environment."""
    marker = f"CLEANROOM_STATE_DIR={(state / 'enclave').resolve()}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                entries = (proc / "environ").read_bytes().split(b"\0")
                if marker in entries and _alive(int(proc.name)):
                    pids.append(int(proc.name))
            except OSError:  # gone, or not ours to read
                continue
    return pids


def _alive(pid: int) -> bool:
    # A zombie keeps its /proc entry (and environ) until reaped: it is not a running enclave.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def code(self) -> str | None:
        """The error code of an error body, else None."""
        try:
            body = self.json()
        except ValueError:
            return None
        error = body.get("error") if isinstance(body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


def http(url: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> HttpReply:
    """One request; HTTP errors are returned, not raised. Transport errors propagate."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return HttpReply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        with err:
            return HttpReply(err.code, dict(err.headers), err.read())


class HostDeployment:
    """One host (and so one enclave) serving ``policy_bytes`` from ``work/host-state``.

    ``threads`` and ``log_level`` become ``--threads`` and ``--log-level`` (None: the CLI's
    default); ``enclave_command`` becomes ``--enclave-command`` (None: the real enclave);
    ``env`` is added to this process's environment, which the host and its enclave inherit.
    """

    def __init__(self, work: Path, policy_bytes: bytes, *, threads: int | None = 4,
                 log_level: str | None = None, enclave_command: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.work = work
        self.policy_bytes = policy_bytes
        self.policy_path = work / "policy.toml"
        self.policy_path.write_bytes(policy_bytes)
        self.state = work / "host-state"
        self.log_path = work / "host.log"
        self.threads = threads
        self.log_level = log_level
        self.enclave_command = enclave_command
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log: IO[bytes] | None = None
        self._started = False
        self.responses: list[bytes] = []  # every body seen by `request`, for leak checks

    # lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> Client:
        # One audit-head store per deployment: each deployment is a new enclave for the same
        # collaboration id, which a shared store would rightly refuse as a reset enclave.
        return Client(self.url, timeout=60, head_store=HeadStore(self.work / "audit-heads"))

    def verify_and_upload(self, parties: dict[str, Any], uploads: dict[str, Path]) -> tuple[Client, Any]:
        """Verify this deployment as a party would (simulation allowed) and upload each
        ``dataset: CSV`` with its owner's keys (``parties``, by party id); (client, pinned enclave)."""
        from attestation.verifier.verify import VerifierPolicy
        from protocol.policy import parse_policy

        client = self.client
        policy = parse_policy(self.policy_bytes)
        enclave = client.verify(self.policy_bytes, VerifierPolicy(allow_simulation=True))
        for dataset, path in uploads.items():
            owner = next(d.owner for d in policy.datasets if d.name == dataset)
            client.upload(enclave, parties[owner], policy, dataset, path)
        return client, enclave

    @property
    def pid(self) -> int:
        """The gunicorn master's pid."""
        if self.process is None:
            raise HostError("not started")
        return self.process.pid

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "host.cli", "serve", "--policy", str(self.policy_path),
                   "--state-dir", str(self.state), "--bind", f"127.0.0.1:{self.port}"]
        if self.threads is not None:
            command += ["--threads", str(self.threads)]
        if self.log_level is not None:
            command += ["--log-level", self.log_level]
        if self.enclave_command is not None:
            command += ["--enclave-command", self.enclave_command]
        return command

    def start(self, timeout: float = 60) -> float:
        """Start the host and wait until it is healthy; returns the seconds that took."""
        if self.process is not None:
            raise HostError("already started")
        started = time.monotonic()
        # Same port across restarts, so a party's client (and its base URL) outlives the host.
        self.port = self.port or free_port()
        # Appended across restarts: the whole history is what leak checks read.
        self._log = self.log_path.open("ab" if self._started else "wb")
        self._started = True
        self.process = subprocess.Popen(self.command(), cwd=ROOT, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=self.env)
        try:
            self.wait_until_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - started

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (gunicorn stops the enclave in order), SIGKILL if it hangs; always reaps."""
        process, self.process = self.process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
        finally:
            # The enclave is in its own session: kill a survivor rather than leak it.
            for pid in enclave_pids(self.state):
                _kill_quietly(pid)
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> HostDeployment:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def restart(self, timeout: float = 60) -> float:
        self.stop()
        return self.start(timeout)

    def healthy(self) -> bool:
        try:
            return http(self.url + "/v1/health", timeout=5).status == 200
        except (OSError, HTTPException):  # not listening (yet), or the connection dropped
            return False

    def wait_until_healthy(self, timeout: float = 60) -> float:
        """Poll ``/v1/health`` until it answers 200; returns the seconds that took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process is None or self.process.poll() is not None:
                raise HostError(f"the host exited; last log lines:\n  {self._log_tail()}")
            if self.healthy():
                return time.monotonic() - start
            time.sleep(_POLL_S)
        raise HostError(f"the host was not healthy after {timeout:g} s (see {self.log_path})")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n  ".join(self.log_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # the enclave

    def enclave_pid(self) -> int:
        pids = enclave_pids(self.state)
        if len(pids) != 1:
            raise HostError(f"expected one enclave process, found {len(pids)}")
        return pids[0]

    def kill_enclave(self, timeout: float = 30) -> int:
        """SIGKILL the enclave, wait until it is gone; returns its pid."""
        pid = self.enclave_pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while pid in enclave_pids(self.state):
            if time.monotonic() > deadline:
                raise HostError("the killed enclave did not go away")
            time.sleep(0.02)
        return pid

    # HTTP

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30) -> HttpReply:
        reply = http(self.url + path, method, body, headers, timeout)
        self.responses.append(reply.raw)
        return reply

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited on its own meanwhile
        os.kill(pid, signal.SIGKILL)
