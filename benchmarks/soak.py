"""Load and soak: ``python -m benchmarks.soak [--seconds 60] [--parties 4] [--json]``.

Starts a REAL host on loopback (``python -m host.cli serve``, which starts the real enclave in
simulation mode), then runs ``--parties`` threads, each acting as the publisher or the
advertiser, that mix small CSV uploads through ``cleanroom.client.Client``, overlap queries,
attestation fetches (and full verifications), listings, and deliberately bad requests. Mid-run the
enclave is killed with SIGKILL (found by its state directory in ``/proc/<pid>/environ``) and the
host restarts it and replays the stored uploads. After the run the enclave is killed once more,
so that EVERY acknowledged upload (a verified receipt came back) is checked to be listed and
present after a restart.

Classification of each request:

* succeeded: the answer the request was meant to get (2xx, verified receipt or result);
* rejected_as_expected: a clean JSON error that the situation explains: ``enclave_unavailable``
  or ``enclave_busy`` (503) while the enclave restarts or the upload slots are full,
  ``budget_exhausted`` once the privacy budget is spent, ``conflict`` for a query before both
  datasets exist, and any 4xx answer to a deliberately bad request;
* unexpected_errors: everything else: another 5xx, a 4xx to a valid request, a timeout, a
  dropped or refused connection, a non-JSON or malformed answer, a receipt that does not verify.

Prints ONE JSON object (``--json``: compact, and nothing else on stdout or stderr) and exits 1
when ``unexpected_errors`` or ``lost_acknowledged_uploads`` is not zero, 2 when the host never
came up. The policy is a copy of ``policies/advertiser-publisher.toml`` with the parties' fresh
keys bound in, every dataset budget raised to the policy cap and each analysis made cheaper,
so a long soak exercises queries rather than only ``budget_exhausted`` (still an expected answer).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from attestation.verifier.verify import VerifierPolicy
from cleanroom.audit import HeadStore
from cleanroom.client import Client
from cleanroom.keys import PartyKeys, bind_keys_into_policy
from protocol.crypto import QUERY_LABEL
from protocol.errors import CleanroomError, PolicyInvalid
from protocol.policy import Policy, parse_policy
from protocol.wire import pack_document

__all__ = ["main", "soak_policy"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "policies" / "advertiser-publisher.toml"
ALLOW_SIMULATION = VerifierPolicy(allow_simulation=True)
PARTIES = ("publisher", "advertiser")
REQUEST_TIMEOUT_S = 30.0  # per request; a slower answer counts as an unexpected timeout
SOAK_BUDGET = {"pure": "20", "zcdp": "2"}  # the policy parser's caps (protocol/policy.py)
SOAK_COST = {"epsilon": "0.002", "rho": "0.0002"}
# Clean, retryable or situational answers any request may get during a soak.
_TRANSIENT = {"enclave_unavailable", "enclave_busy"}
_UNREACHABLE = "cannot reach the clean-room host"  # cleanroom.client's transport failure text


# --- the policy -----------------------------------------------------------------------------------


def _raise_budgets(text: str, mode: str) -> str:
    """Set every value of the ``[privacy.budget]`` table to the cap for ``mode``."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.split("#")[0].strip() == "[privacy.budget]"
        elif inside:
            line = re.sub(r'^(\s*[A-Za-z0-9_]+\s*=\s*)"[^"]*"', rf'\g<1>"{SOAK_BUDGET[mode]}"', line)
        out.append(line)
    return "".join(out)


def _cheapen_analyses(text: str) -> str:
    """Lower each analysis' per-query cost (lines ``epsilon = "..."`` / ``rho = "..."``)."""
    for unit, cost in SOAK_COST.items():
        text = re.sub(rf'(?m)^({unit}\s*=\s*)"[^"]*"', rf'\g<1>"{cost}"', text)
    return text


def soak_policy(keys: dict[str, PartyKeys], source: Path = EXAMPLE_POLICY) -> bytes:
    """The example policy with ``keys`` bound in and a budget that lasts; never edits ``source``.

    Each edit is kept only if the result still parses, so a reshaped example policy degrades to
    a smaller budget (more expected ``budget_exhausted`` answers) rather than a broken soak.
    """
    bound, _ = bind_keys_into_policy(source.read_bytes(), {k: v.public() for k, v in keys.items()})
    best = bound
    mode = parse_policy(bound).privacy.mode
    for edit in (lambda t: _cheapen_analyses(_raise_budgets(t, mode)), lambda t: _raise_budgets(t, mode)):
        candidate = edit(bound.decode()).encode()
        try:
            parse_policy(candidate)
        except PolicyInvalid:
            continue
        best = candidate
        break
    return best


# --- the host -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def enclave_pids(state: Path) -> list[int]:
    """Live enclave processes of this deployment, by the state dir in their environment."""
    marker = f"CLEANROOM_STATE_DIR={(state / 'enclave').resolve()}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # exited, not yet reaped
        except (OSError, IndexError):
            continue
        found.append(int(proc.name))
    return found


class Host:
    """``python -m host.cli serve`` as a child process, with its log in the work directory."""

    def __init__(self, work: Path, policy: bytes, threads: int) -> None:
        self.state = work / "host-state"
        self.policy_path = work / "policy.toml"
        self.policy_path.write_bytes(policy)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log: IO[bytes] = (work / "host.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "host.cli", "serve", "--policy", str(self.policy_path),
             "--state-dir", str(self.state), "--bind", f"127.0.0.1:{self.port}",
             "--threads", str(threads), "--log-level", "warning"],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/v1/health", timeout=5) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until /v1/health answers 200; raises TimeoutError."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError("the host exited")
            if self.healthy():
                return time.monotonic() - start
            time.sleep(0.05)
        raise TimeoutError("the host did not become healthy")

    def kill_enclave(self, timeout: float = 30) -> None:
        pids = enclave_pids(self.state)
        if len(pids) != 1:
            raise RuntimeError(f"expected one enclave process, found {len(pids)}")
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while pids[0] in enclave_pids(self.state):
            if time.monotonic() > deadline:
                raise TimeoutError("the killed enclave did not go away")
            time.sleep(0.02)

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=30)
        finally:
            for pid in enclave_pids(self.state):  # in its own session: never leak it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._log.close()


# --- bookkeeping ----------------------------------------------------------------------------------


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    succeeded: int = 0
    rejected: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: dict[str, str] = field(default_factory=dict)  # upload id hex -> party

    def record(self, endpoint: str, seconds: float, outcome: str, detail: str = "") -> None:
        with self.lock:
            self.sent += 1
            self.latency[endpoint].append(seconds)
            if outcome == "ok":
                self.succeeded += 1
            elif outcome == "expected":
                self.rejected[detail] += 1
            else:
                self.unexpected[detail] += 1
                if len(self.samples) < 20:
                    self.samples.append(f"{endpoint}: {detail}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _classify_error(exc: CleanroomError, expected: set[str]) -> tuple[str, str]:
    if exc.message.startswith(_UNREACHABLE):  # dropped, refused or timed-out connection
        return "unexpected", f"transport: {exc.message.rsplit('(', 1)[-1].rstrip(')')}"
    if exc.code in expected | _TRANSIENT:
        return "expected", exc.code
    return "unexpected", f"{exc.code}: {exc.message}"


@dataclass
class RawReply:
    status: int
    body: Any  # parsed JSON, or None when it was not JSON


def _raw(url: str, method: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> RawReply:
    # Always an http://127.0.0.1 URL built here, never a user-supplied scheme.
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        with err:
            raw = err.read()
            status = err.code
    try:
        return RawReply(status, json.loads(raw))
    except ValueError:
        return RawReply(status, None)


def _error_code(reply: RawReply) -> str | None:
    body = reply.body
    if (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)
            and isinstance(body["error"].get("code"), str) and isinstance(body["error"].get("message"), str)):
        return body["error"]["code"]
    return None


# --- the parties ----------------------------------------------------------------------------------


class Party(threading.Thread):
    def __init__(self, index: int, keys: PartyKeys, policy: Policy, policy_bytes: bytes, url: str,
                 work: Path, stats: Stats, stop: threading.Event, seed: int, heads: Path) -> None:
        super().__init__(name=f"party-{index}-{keys.party_id}", daemon=True)
        self.index = index
        self.keys = keys
        self.policy = policy
        self.policy_bytes = policy_bytes
        self.url = url
        # Each client remembers the highest audit head it has seen (rollback detection), in the
        # work directory: never in the user's ~/.cleanroom, and never shared by accident.
        self.client = Client(url, timeout=REQUEST_TIMEOUT_S, head_store=HeadStore(heads))
        self.csv = work / f"party-{index}.csv"
        self.stats = stats
        self.stop_event = stop
        self.random = random.Random(seed)  # workload shape only; nothing secret
        self.enclave: Any = None
        self.uploads = 0
        self.own_dataset = next(d for d in policy.datasets if d.owner == keys.party_id)
        self.analyses = [a.id for a in policy.analyses
                         if a.kind == "overlap" and keys.party_id in a.requesters]

    def run(self) -> None:
        actions: list[tuple[float, Callable[[], None]]] = [
            (0.30, self.upload), (0.25, self.query), (0.15, self.attestation),
            (0.05, self.verify), (0.10, self.listing), (0.15, self.bad_request),
        ]
        weights = [w for w, _ in actions]
        while not self.stop_event.is_set():
            if self.enclave is None:
                self.verify()
                if self.enclave is None:
                    self.stop_event.wait(0.2)
                    continue
            self.random.choices(actions, weights)[0][1]()

    def _timed(self, endpoint: str, call: Callable[[], Any], expected: set[str]) -> Any:
        start = time.monotonic()
        try:
            value = call()
        except CleanroomError as exc:
            outcome, detail = _classify_error(exc, expected)
            self.stats.record(endpoint, time.monotonic() - start, outcome, detail)
            self._back_off(detail)
            return None
        except Exception as exc:  # a crash of the client or a transport failure it did not map
            self.stats.record(endpoint, time.monotonic() - start, "unexpected", type(exc).__name__)
            return None
        self.stats.record(endpoint, time.monotonic() - start, "ok")
        return value

    def _back_off(self, code: str) -> None:
        # A real client honours Retry-After; a short pause keeps the restart window from being
        # counted as thousands of identical rejections, while still probing it continuously.
        if code in _TRANSIENT:
            self.stop_event.wait(0.1)

    # valid requests

    def verify(self) -> None:
        enclave = self._timed("GET /v1/attestation (verify)",
                              lambda: self.client.verify(self.policy_bytes, ALLOW_SIMULATION), set())
        if enclave is not None:
            if self.enclave is not None and enclave.sig_pub != self.enclave.sig_pub:
                self.stats.record("GET /v1/attestation (verify)", 0.0, "unexpected",
                                  "enclave keys changed across a restart")
            self.enclave = enclave

    def _write_csv(self) -> None:
        rows = self.random.randint(50, 200)
        tag = f"soak-{self.index}-{self.uploads}"
        self.uploads += 1
        dataset = self.own_dataset
        header = [dataset.id_column, *(d.name for d in dataset.dimensions),
                  *(m.name for m in dataset.metrics)]
        lines = [",".join(header)]
        for row in range(rows):
            person = self.random.randrange(5000)  # shared people, so the join has matches
            cells = [f"person{person}@example.com" if row % 3 else f"{tag}-{row}@example.com"]
            cells += [self.random.choice(d.values) for d in dataset.dimensions]
            cells += [f"{self.random.randint(0, 400)}.{self.random.randint(0, 99):02d}"
                      for _ in dataset.metrics]
            lines.append(",".join(cells))
        self.csv.write_text("\n".join(lines) + "\n")

    def upload(self) -> None:
        self._write_csv()
        receipt = self._timed("POST /v1/uploads", lambda: self.client.upload(
            self.enclave, self.keys, self.policy, self.own_dataset.name, self.csv,
            chunk_size=64 * 1024), set())
        if receipt is not None:
            with self.stats.lock:
                self.stats.acknowledged[receipt.upload_id.hex()] = self.keys.party_id

    def query(self) -> None:
        if not self.analyses:
            return self.attestation()
        analysis = self.random.choice(self.analyses)
        self._timed("POST /v1/queries", lambda: self.client.query(
            self.enclave, self.keys, self.policy, analysis, {"group_by": []}),
            {"budget_exhausted", "conflict"})
        return None

    def _raw_expect(self, endpoint: str, method: str, path: str, ok: int, body: bytes | None = None,
                    headers: dict[str, str] | None = None, bad: bool = False) -> None:
        start = time.monotonic()
        try:
            reply = _raw(self.url + path, method, body, headers)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            self.stats.record(endpoint, time.monotonic() - start, "unexpected",
                              f"transport: {type(reason).__name__}")
            return
        elapsed = time.monotonic() - start
        code = _error_code(reply)
        if reply.body is None or (reply.status >= 400 and code is None):
            self.stats.record(endpoint, elapsed, "unexpected", f"malformed answer (HTTP {reply.status})")
        elif reply.status == ok and not bad:
            self.stats.record(endpoint, elapsed, "ok")
        elif code in _TRANSIENT and reply.status == 503:
            self.stats.record(endpoint, elapsed, "expected", code or "")
            self._back_off(code or "")
        elif bad and 400 <= reply.status < 500:
            self.stats.record(endpoint, elapsed, "expected", f"bad request: {code}")
        else:
            self.stats.record(endpoint, elapsed, "unexpected", f"HTTP {reply.status} {code}")

    def attestation(self) -> None:
        nonce = self.random.randbytes(32).hex()
        self._raw_expect("GET /v1/attestation", "GET", f"/v1/attestation?nonce={nonce}", 200)

    def listing(self) -> None:
        if self.random.random() < 0.5:
            self._raw_expect("GET /v1/uploads", "GET", "/v1/uploads", 200)
        else:
            self._raw_expect("GET /v1/health", "GET", "/v1/health", 200)

    # bad requests: each must get a clean 4xx (or a clean 503 while the enclave restarts)

    def bad_request(self) -> None:
        choice = self.random.randrange(7)
        octet = {"Content-Type": "application/octet-stream"}
        if choice == 0:
            body = self.random.randbytes(self.random.randint(0, 3000))
            self._raw_expect("bad requests", "POST", "/v1/uploads", 0, body, octet, bad=True)
        elif choice == 1:
            self._raw_expect("bad requests", "POST", "/v1/queries", 0, b"{not json", bad=True)
        elif choice == 2:
            self._raw_expect("bad requests", "POST", "/v1/queries", 0, self._forged_query(), bad=True)
        elif choice == 3:
            self._raw_expect("bad requests", "GET", "/v1/results/" + "z" * 64, 0, bad=True)
        elif choice == 4:
            self._raw_expect("bad requests", "GET", "/v1/no-such-endpoint", 0, bad=True)
        elif choice == 5:
            self._raw_expect("bad requests", "DELETE", "/v1/health", 0, bad=True)
        else:
            self._raw_expect("bad requests", "GET", "/v1/attestation?nonce=xyz", 0, bad=True)

    def _forged_query(self) -> bytes:
        """A well-formed query whose signature is not the party's: bad_signature."""
        request = pack_document("query_request", {
            "collaboration_id": self.policy.collaboration_id, "policy_hash": self.policy.hash,
            "party": self.keys.party_id, "analysis": "overlap", "params": {"group_by": []},
            "nonce": self.random.randbytes(16), "issued_at": int(time.time()),
        })
        forged = bytearray(self.keys.sign(QUERY_LABEL, request))
        forged[0] ^= 1
        return json.dumps({"request": base64.b64encode(request).decode(),
                           "signature": base64.b64encode(bytes(forged)).decode()}).encode()


# --- the run --------------------------------------------------------------------------------------


def _final_check(host: Host, stats: Stats) -> tuple[int, list[str]]:
    """Kill the enclave once more, wait for the replay, and look for every acknowledged upload."""
    host.kill_enclave()
    host.wait_healthy(120)
    reply = _raw(host.url + "/v1/uploads", "GET")
    if reply.status != 200 or not isinstance(reply.body, dict):
        raise RuntimeError(f"the final listing failed with HTTP {reply.status}")
    listed = {u["upload_id"]: u for u in reply.body["uploads"]}
    lost = [upload_id for upload_id in stats.acknowledged
            if upload_id not in listed or listed[upload_id].get("present") is False]
    return len(lost), lost[:10]


def run(seconds: float, parties: int, kills: int, work: Path, seed: int,
        say: Callable[[str], None], shared_heads: bool = False) -> dict[str, Any]:
    keys = {name: PartyKeys.generate(name) for name in PARTIES}
    policy_bytes = soak_policy(keys)
    policy = parse_policy(policy_bytes)
    host = Host(work, policy_bytes, threads=max(8, 2 * parties + 4))
    stats = Stats()
    stop = threading.Event()
    recoveries: list[float] = []
    report: dict[str, Any] = {}
    try:
        host.wait_healthy(120)
        say(f"soak: host up at {host.url}; {parties} parties for {seconds:g} s, {kills} enclave kill(s)")
        # One head store per party thread (an independent client installation), or, with
        # --shared-heads, one per party identity shared by its threads (parallel runs in one org).
        workers = [Party(i, keys[PARTIES[i % 2]], policy, policy_bytes, host.url, work, stats, stop,
                         seed + i, work / "heads" / (PARTIES[i % 2] if shared_heads else f"party-{i}"))
                   for i in range(parties)]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        kill_times = [seconds * (k + 1) / (kills + 1) for k in range(kills)]
        for at in kill_times:
            if stop.wait(max(0.0, started + at - time.monotonic())):
                break
            host.kill_enclave()
            say(f"soak: enclave killed at {time.monotonic() - started:.1f} s")
            recoveries.append(host.wait_healthy(120))
            say(f"soak: enclave back after {recoveries[-1]:.2f} s")
        stop.wait(max(0.0, started + seconds - time.monotonic()))
        stop.set()
        for worker in workers:
            worker.join(REQUEST_TIMEOUT_S * 2)
        hung = [w.name for w in workers if w.is_alive()]
        elapsed = time.monotonic() - started
        lost_count, lost_sample = _final_check(host, stats)
        say(f"soak: final restart checked {len(stats.acknowledged)} acknowledged uploads")
        report = {
            "seconds": seconds,
            "elapsed_s": round(elapsed, 2),
            "parties": parties,
            "shared_heads": shared_heads,
            "enclave_kills": len(recoveries) + 1,  # the mid-run kills and the final one
            "recovery_s": [round(r, 3) for r in recoveries],
            "requests_sent": stats.sent,
            "succeeded": stats.succeeded,
            "rejected_as_expected": sum(stats.rejected.values()),
            "rejections": dict(sorted(stats.rejected.items())),
            "unexpected_errors": sum(stats.unexpected.values()) + len(hung),
            "unexpected": dict(sorted(stats.unexpected.items())),
            "unexpected_samples": stats.samples + [f"{name}: did not stop" for name in hung],
            "uploads_acknowledged": len(stats.acknowledged),
            "lost_acknowledged_uploads": lost_count,
            "lost_sample": lost_sample,
            "throughput_rps": round(stats.sent / elapsed, 1) if elapsed else 0.0,
            "latency_ms": {
                endpoint: {"count": len(values),
                           "p50": round(_percentile(values, 0.50) * 1000, 2),
                           "p99": round(_percentile(values, 0.99) * 1000, 2)}
                for endpoint, values in sorted(stats.latency.items())
            },
        }
    finally:
        stop.set()
        host.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 60)),
                        help="how long the parties run (default: $SOAK_SECONDS or 60)")
    parser.add_argument("--parties", type=int, default=4, help="concurrent party threads (default 4)")
    parser.add_argument("--kills", type=int, default=1, help="enclave SIGKILLs during the run (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the workload mix (default 1)")
    parser.add_argument("--work-dir", type=Path, help="keep the host state and log here (default: a "
                        "temporary directory, removed afterwards)")
    parser.add_argument("--shared-heads", action="store_true", help="threads acting as the same party "
                        "share one audit-head store, as parallel client runs in one organisation would")
    parser.add_argument("--json", action="store_true", help="print only the compact JSON object")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.parties < 1 or args.kills < 0:
        parser.error("--seconds must be positive, --parties at least 1, --kills at least 0")

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cleanroom-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = run(args.seconds, args.parties, args.kills, work, args.seed, say, args.shared_heads)
    except (RuntimeError, TimeoutError) as exc:
        log = work / "host.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "host_log_tail": tail}))
        return 2
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report["ok"] = report["unexpected_errors"] == 0 and report["lost_acknowledged_uploads"] == 0
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
