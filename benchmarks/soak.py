"""Load and soak: ``python -m benchmarks.soak [--seconds 60] [--parties 4] [--json]``.

Starts a REAL host on loopback with the shared harness (``tests/support/deployment.py``:
``python -m host.cli serve``, which starts the real enclave in simulation mode), then runs
``--parties`` threads, each acting as the publisher or the advertiser, that mix small CSV
uploads through ``cleanroom.client.Client``, overlap queries, attestation fetches (and full
verifications), listings, and deliberately bad requests. Mid-run the enclave is killed with
SIGKILL (found by its state directory in ``/proc/<pid>/environ``) and the host restarts it and
replays the stored uploads. After the run the enclave is killed once more, so that EVERY
acknowledged upload (a verified receipt came back) is checked to be listed and present after a
restart.

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

This module runs the soak; the policy is ``benchmarks/soak_policy.py``, the party threads and
the classification of their answers ``benchmarks/soak_workload.py``, the bookkeeping, the lost
upload check and the report ``benchmarks/soak_checks.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.soak_checks import Stats, lost_uploads, summary
from benchmarks.soak_policy import soak_policy
from benchmarks.soak_workload import REQUEST_TIMEOUT_S, Party, raw_request
from cleanroom.keys import PartyKeys
from protocol.policy import parse_policy
from tests.support.deployment import HostDeployment

__all__ = ["main", "run", "soak_policy"]

PARTIES = ("publisher", "advertiser")


def _final_check(host: HostDeployment, stats: Stats) -> tuple[int, list[str]]:
    """Kill the enclave once more, wait for the replay, and look for every acknowledged upload."""
    host.kill_enclave()
    host.wait_until_healthy(120)
    reply = raw_request(host.url + "/v1/uploads")
    if reply.status != 200 or not isinstance(reply.body, dict):
        raise RuntimeError(f"the final listing failed with HTTP {reply.status}")
    return lost_uploads(stats, reply.body)


def run(seconds: float, parties: int, kills: int, work: Path, seed: int,
        say: Callable[[str], None], shared_heads: bool = False) -> dict[str, Any]:
    keys = {name: PartyKeys.generate(name) for name in PARTIES}
    policy_bytes = soak_policy(keys)
    policy = parse_policy(policy_bytes)
    host = HostDeployment(work, policy_bytes, threads=max(8, 2 * parties + 4), log_level="warning")
    stats = Stats()
    stop = threading.Event()
    recoveries: list[float] = []
    try:
        host.start(120)
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
            recoveries.append(host.wait_until_healthy(120))
            say(f"soak: enclave back after {recoveries[-1]:.2f} s")
        stop.wait(max(0.0, started + seconds - time.monotonic()))
        stop.set()
        for worker in workers:
            worker.join(REQUEST_TIMEOUT_S * 2)
        hung = [w.name for w in workers if w.is_alive()]
        elapsed = time.monotonic() - started
        lost = _final_check(host, stats)
        say(f"soak: final restart checked {len(stats.acknowledged)} acknowledged uploads")
        return summary(stats, seconds=seconds, elapsed=elapsed, parties=parties,
                       shared_heads=shared_heads, recoveries=recoveries, hung=hung, lost=lost)
    finally:
        stop.set()
        host.stop()


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
