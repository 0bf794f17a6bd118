"""``python -m cleanroom.demo``: two parties run a whole collaboration against a local host.

Steps: fresh keys for ``publisher`` and ``advertiser``; a copy of
``policies/advertiser-publisher-events.toml`` with those keys bound in; seeded synthetic CSVs (the
publisher's impressions and the advertiser's conversions, with a chosen share of shared people);
a host in simulation mode (or with ``--enclave-command``, under Gramine); then, as each party,
attestation, upload, the policy's templates and named analysis, and three analysts' SQL queries
(7-day last-touch attribution by campaign and week, a filtered aggregate, a lift comparison),
signature checks, saved results and an offline check of one saved file.

The synthetic data is generated with NumPy's seeded RNG: it is test data, not a privacy path.
The demo prints only what the parties would see (noisy, signed results), never the true values
hidden in the data it generated.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cleanroom.audit import HeadStore
from cleanroom.client import Client, UploadProgress
from cleanroom.demo_data import generate_data
from cleanroom.formatting import fraction_decimal
from cleanroom.keys import PartyKeys, bind_keys_into_policy
from cleanroom.lift import lift_report, render_lift
from cleanroom.offline_check import check_saved_result
from cleanroom.result_display import render_table
from cleanroom.result_files import save_result
from cleanroom.result_open import Result
from cleanroom.sql import compile_query
from protocol.errors import CleanroomError, EnclaveUnavailable, InvalidInput
from protocol.policy import parse_policy

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
# The example policy with event times, so the demo can run analysts' SQL over time too.
EXAMPLE_POLICY = ROOT / "policies" / "advertiser-publisher-events.toml"
# Analysts' queries (docs/query-language.md), run after the policy's named analyses.
DEMO_SQL = [
    ("advertiser", """SELECT i.campaign, DATE_TRUNC('week', c.ts) AS week,
       COUNT(DISTINCT person) AS converters, SUM(c.value) AS revenue
FROM impressions i JOIN conversions c ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY
WHERE i.campaign IN ('spring_sale', 'summer_run', 'trail_launch')
GROUP BY i.campaign, week"""),
    ("publisher", """SELECT i.region, COUNT(DISTINCT person) AS buyers, SUM(c.value) AS revenue,
       AVG(c.value) AS order_value
FROM impressions i JOIN conversions c
WHERE i.age_band IN ('25-34', '35-44') AND i.arm = 'test'
GROUP BY i.region"""),
    ("advertiser", """SELECT i.arm, COUNT(DISTINCT i.person) AS exposed, COUNT(DISTINCT person) AS converters
FROM impressions i JOIN conversions c
GROUP BY i.arm"""),
]
_MARKER = ".cleanroom-demo"  # only a directory carrying it is ever deleted by a re-run
_BANNER = "=" * 78


def _say(text: str = "") -> None:
    print(text, flush=True)


def _step(text: str) -> None:
    _say()
    _say(f"--- {text}")


# --- the host -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _host(policy_path: Path, work: Path, enclave_command: str | None,
          startup_timeout: float) -> Iterator[str]:
    """Start ``python -m host.cli serve`` and stop exactly that process afterwards."""
    port = _free_port()
    log_path = work / "host.log"
    command = [sys.executable, "-m", "host.cli", "serve", "--policy", str(policy_path),
               "--state-dir", str(work / "host-state"), "--bind", f"127.0.0.1:{port}"]
    if enclave_command:
        command += ["--enclave-command", enclave_command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(Client(url, timeout=5), process, log_path, startup_timeout)
        _say(f"host running at {url} (pid {process.pid}, log {log_path})")
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _say(f"host stopped (pid {process.pid})")


def _wait_healthy(client: Client, process: subprocess.Popen[bytes], log_path: Path,
                  timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EnclaveUnavailable(_start_failure(log_path))
        try:
            client.health()
            return
        except EnclaveUnavailable:
            time.sleep(0.3)
    raise EnclaveUnavailable(f"the host was not healthy after {timeout:.0f} s (see {log_path})")


def _start_failure(log_path: Path) -> str:
    """What a tester needs when the host dies at start: the enclave's own last words (under
    Gramine, the loader's errors), then the host's, and where the whole log is."""
    lines = log_path.read_text(errors="replace").splitlines()
    enclave = [line for line in lines if "enclave[" in line][-15:]
    host = [line for line in lines if "enclave[" not in line][-8:]
    parts = ["the host exited during start-up"]
    if enclave:
        parts += ["last enclave output:", *(f"  {line}" for line in enclave)]
    parts += ["last host log lines:", *(f"  {line}" for line in host), f"full log: {log_path}"]
    return "\n".join(parts)


# --- the parties --------------------------------------------------------------------------------


def _progress(party: str) -> Any:
    tty = sys.stderr.isatty()
    state = {"last": 0.0}

    def show(p: UploadProgress) -> None:
        now = time.monotonic()
        if now - state["last"] < (0.3 if tty else 2.0):
            return
        state["last"] = now
        share = f"{100 * p.bytes_done // p.bytes_total:3d}%" if p.bytes_total else "   "
        line = (f"  {party}: read {share} {p.rows_done:>10,} rows, "
                f"{p.sent_bytes / 2**20:7.1f} MiB sent, {p.throughput / 2**20:6.1f} MiB/s")
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show


def _prepare_work_dir(work: Path) -> None:
    if work.exists():
        if not (work / _MARKER).exists() and any(work.iterdir()):
            raise InvalidInput(f"{work} exists and was not made by the demo; choose another "
                                 "--work-dir")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / _MARKER).write_text("created by python -m cleanroom.demo; deleted by the next run\n")


def _activation_summary(result: Result) -> str:
    """Activation returns the requester's own hashed identifiers: count them, show a few."""
    ids = [value for row in result.rows for value in row if isinstance(value, bytes)]
    shown = ", ".join(i.hex()[:16] + "..." for i in ids[:3])
    return (f"{len(ids):,} of the advertiser's own identifiers (SHA-256 of its normalised emails) "
            f"in the matched cohort: {shown}\n"
            f"privacy: {result.privacy.get('mechanism', '?')}; this release is gated by a noisy "
            f"cohort size and is not itself differentially private (the policy says so)")


def run(args: argparse.Namespace) -> int:
    from attestation.verifier.verify import VerifierPolicy

    work = Path(args.work_dir).resolve()
    _prepare_work_dir(work)
    if args.verifier_policy is None:
        _say(_BANNER)
        _say("SIMULATION MODE: the enclave runs without SGX hardware and its quotes are signed by a")
        _say("throwaway simulation PKI. The parties accept it only because this demo opts in")
        _say("(--insecure-allow-simulation). Never upload real data to a simulated enclave.")
        _say(_BANNER)
        verifier = VerifierPolicy(allow_simulation=True)
    else:
        verifier = VerifierPolicy.from_toml(args.verifier_policy)

    _step("keys and policy")
    keys = {party: PartyKeys.generate(party) for party in ("publisher", "advertiser")}
    for party_keys in keys.values():
        party_keys.save(work / "keys")
    policy_bytes, bound = bind_keys_into_policy(EXAMPLE_POLICY.read_bytes(),
                                                {p: k.public() for p, k in keys.items()})
    policy = parse_policy(policy_bytes)
    assert sorted(bound) == sorted(keys), bound
    policy_path = work / "policy.toml"
    policy_path.write_bytes(policy_bytes)
    _say(f"keys in {work / 'keys'}; policy {policy_path}")
    _say(f"policy hash {policy.hash.hex()} (collaboration {policy.collaboration_id})")

    _step(f"synthetic data: at least {args.rows:,} rows per party, overlap {args.overlap}, "
          f"seed {args.seed}")
    started = time.monotonic()
    files = generate_data(policy, work, args.rows, args.overlap, args.seed)
    for name, path in files.items():
        _say(f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    _say(f"generated in {time.monotonic() - started:.1f} s")

    with contextlib.ExitStack() as stack:
        _step(f"starting the host (enclave: {args.enclave_command or 'python -m enclave'})")
        url = stack.enter_context(_host(policy_path, work, args.enclave_command,
                                        args.startup_timeout))
        # The demo's own head store: a fresh deployment is a new enclave for the same
        # collaboration id, which a party's long-lived store would rightly refuse.
        client = Client(url, head_store=HeadStore(work / "audit-heads"))
        enclaves = {}
        receipts = {}
        for party, dataset in (("publisher", "impressions"), ("advertiser", "conversions")):
            _step(f"{party}: verify attestation, upload {dataset}")
            enclave = client.verify(policy_bytes, verifier)
            enclaves[party] = (enclave, client.last_bundle)
            _say("\n".join("  " + line for line in enclave.report.summary_lines()))
            _say(f"  pinned enclave keys: enc_pub {enclave.enc_pub.hex()[:16]}..., "
                 f"sig_pub {enclave.sig_pub.hex()[:16]}...")
            started = time.monotonic()
            try:
                receipt = client.upload(enclave, keys[party], policy, dataset, files[dataset],
                                        progress=_progress(party))
            finally:
                if sys.stderr.isatty():
                    print(file=sys.stderr)
            receipts[party] = receipt
            _say("\n".join("  " + line for line in receipt.summary_lines()))
            _say(f"  ({time.monotonic() - started:.1f} s)")

        # The policy's fixed reports are templates (their GROUP BY parameter "by": the cohorts
        # chosen); the activation is a named analysis.
        queries = [
            ("publisher", "overlap", {"by": ["impressions.campaign"]}),
            ("advertiser", "conversions_by_segment",
             {"by": ["impressions.campaign", "impressions.age_band"]}),
            ("publisher", "reach", {"by": ["impressions.campaign"]}),
            ("advertiser", "campaign_attribution", {"by": ["impressions.campaign"]}),
            ("advertiser", "activate_converters",
             {"cohort": {"impressions.campaign": "spring_sale"}}),
        ]
        if policy.template("weekly_revenue") is not None:  # a fixed report the policy approved
            queries.append(("publisher", "weekly_revenue", {"campaigns": ["spring_sale", "summer_run"]}))
        saved: list[Path] = []
        results_dir = work / "results"
        results_dir.mkdir()
        shown: list[Result] = []
        sql_queries = [(requester, f"sql-{i + 1}", text) for i, (requester, text) in enumerate(
            DEMO_SQL if policy.dataset("conversions").timestamp("ts") is not None  # type: ignore[union-attr]
            else ())]
        for requester, analysis, params in [*queries, *sql_queries]:
            enclave, _ = enclaves[requester]
            if isinstance(params, str):  # analysts' SQL, compiled and checked on this machine first
                _step(f"{requester}: SQL query\n" + "\n".join("    " + line for line in params.splitlines()))
                compiled = compile_query(params, policy, requester)
                result = client.query(enclave, keys[requester], policy, "", {},
                                      plan=compiled.wire, sql=params)
            else:
                _step(f"{requester}: query {analysis} {params}")
                result = client.query(enclave, keys[requester], policy, analysis, params)
            shown.append(result)
            for recipient in result.body["recipients"]:
                own_enclave, own_bundle = enclaves[recipient]
                mine = result if recipient == requester else client.fetch_result(
                    own_enclave, keys[recipient], policy, result.query_id)
                path = results_dir / f"{recipient}-{analysis}.json"
                save_result(path, mine, own_bundle)
                saved.append(path)
                _say(f"  {recipient}: result opened with its own key, enclave signature ok, "
                     f"saved to {path.name}")
            _say()
            _say(_activation_summary(result) if result.body["kind"] == "cohort_activation"
                 else render_table(result))
            if isinstance(params, str) and "GROUP BY i.arm" in params:  # the lift: test vs control
                _say()
                _say(render_lift(lift_report(result.body, "test", "control")))

    _step(f"offline check of {saved[-1].name} (no network)")
    checked, enclave = check_saved_result(saved[-1], policy_bytes, verifier, int(time.time()),
                                          head_store=client.head_store)
    _say(f"  attestation re-verified: {'simulated' if enclave.simulated else 'SGX'}, "
         f"sig_pub {enclave.sig_pub.hex()[:16]}...; signature ok; query {checked.query_id.hex()}")

    _step("summary")
    for party, receipt in receipts.items():
        _say(f"  {party}: uploaded {receipt.rows:,} rows of {receipt.dataset} "
             f"(receipt {receipt.upload_id.hex()[:16]}..., digest matches)")
    for result in shown:
        if result.body["kind"] == "cohort_activation":
            _say(f"  {result.analysis}: {len(result.rows):,} of the requester's own identifiers, "
                 f"epsilon {fraction_decimal(result.privacy.get('epsilon_charged', '?'), up=True)}")
            continue
        remaining = ", ".join(f"{k} {fraction_decimal(v)}"
                              for k, v in result.privacy.get("budget_remaining", {}).items())
        _say(f"  {result.analysis or 'SQL ' + result.body['query_id'].hex()[:12]}: "
             f"{len(result.rows)} cohorts released, "
             f"{result.privacy.get('suppressed_cohorts', '?')} suppressed, "
             f"epsilon {fraction_decimal(result.privacy.get('epsilon_charged', '?'), up=True)}, "
             f"budget left {remaining}")
    _say(f"  saved signed results: {', '.join(p.name for p in saved)} in {results_dir}")
    _say("  every number above is noised by the enclave; neither party saw the other's rows.")
    if any(receipt.simulated for receipt in receipts.values()):
        _say("  SIMULATED run: no SGX hardware was involved.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cleanroom.demo",
        description="Run a two-party clean-room collaboration end to end on this machine "
                    "(simulation mode).")
    parser.add_argument("--rows", type=int, default=200_000, help="minimum rows per party")
    parser.add_argument("--overlap", type=float, default=0.3,
                        help="share of the advertiser's people who are also publisher readers")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument("--work-dir", default="demo-work",
                        help="directory for keys, policy, data, host state and results "
                             "(replaced on each run)")
    parser.add_argument("--enclave-command", metavar="CMD",
                        help="how the host starts the enclave (default: python -m enclave); "
                             "e.g. 'gramine-direct build/gramine/direct/cleanroom-enclave' "
                             "(see make gramine-direct)")
    parser.add_argument("--verifier-policy", type=Path, metavar="FILE",
                        help="verify a real SGX enclave against this verifier policy instead of "
                             "opting into simulation (make gramine-sgx writes one)")
    parser.add_argument("--startup-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="how long to wait for the host and enclave to come up "
                             "(raise it under gramine-sgx)")
    args = parser.parse_args(argv)
    if args.rows < 1 or not 0.0 <= args.overlap <= 1.0:
        parser.error("--rows must be positive and --overlap between 0 and 1")
    try:
        return run(args)
    except CleanroomError as exc:
        print(f"\nerror [{exc.code}]: {exc.message}", file=sys.stderr)
    except OSError as exc:
        print(f"\nerror [io_error]: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
