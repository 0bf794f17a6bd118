"""``python -m cleanroom.demo``: two parties run a whole collaboration against a local host.

Steps: fresh keys for ``publisher`` and ``advertiser``; a copy of
``policies/advertiser-publisher.toml`` with those keys bound in; seeded synthetic CSVs (the
publisher's impressions and the advertiser's conversions, with a chosen share of shared people);
a host in simulation mode (or with ``--enclave-command``, under Gramine); then, as each party,
attestation, upload, two queries, signature checks, saved results and an offline check of one saved file.

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

import numpy as np

from cleanroom.audit import HeadStore
from cleanroom.client import Client, UploadProgress
from cleanroom.formatting import fraction_decimal
from cleanroom.keys import PartyKeys, bind_keys_into_policy
from cleanroom.offline_check import check_saved_result
from cleanroom.result_display import render_table
from cleanroom.result_files import save_result
from cleanroom.result_open import Result
from protocol.errors import CleanroomError, EnclaveUnavailable, InvalidInput
from protocol.policy import Policy, parse_policy

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "policies" / "advertiser-publisher.toml"
_MARKER = ".cleanroom-demo"  # only a directory carrying it is ever deleted by a re-run
_BANNER = "=" * 78


def _say(text: str = "") -> None:
    print(text, flush=True)


def _step(text: str) -> None:
    _say()
    _say(f"--- {text}")


# --- synthetic data -----------------------------------------------------------------------------


def _rows_per_person(rng: np.random.Generator, people: int, low: int, high: int,
                     at_least: int) -> np.ndarray:
    counts = rng.integers(low, high + 1, size=people)
    short = at_least - int(counts.sum())
    if short > 0:  # top up so each party has at least the requested number of rows
        np.add.at(counts, rng.integers(0, people, size=short), 1)
    return counts


def _emails(rng: np.random.Generator, person: np.ndarray, messy: bool) -> np.ndarray:
    emails = np.char.add(np.char.add("person", person.astype(str)), "@example.org")
    if messy:  # real exports differ in case and whitespace; normalisation must undo it
        emails = np.where(rng.random(len(emails)) < 0.1, np.char.upper(emails), emails)
        emails = np.where(rng.random(len(emails)) < 0.05, np.char.add(" ", emails), emails)
    return emails


def _write_csv(path: Path, header: Sequence[str], columns: Sequence[np.ndarray]) -> None:
    joined = columns[0].astype(str)
    for column in columns[1:]:
        joined = np.char.add(np.char.add(joined, ","), column.astype(str))
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        f.write("\n".join(joined.tolist()))
        f.write("\n")


def generate_data(policy: Policy, work: Path, rows: int, overlap: float, seed: int) -> dict[str, Path]:
    """Write ``impressions.csv`` and ``conversions.csv``; return {dataset: path}."""
    rng = np.random.default_rng(seed)
    impressions, conversions = policy.dataset("impressions"), policy.dataset("conversions")
    assert impressions is not None and conversions is not None
    campaigns = np.array(impressions.dimension("campaign").values)  # type: ignore[union-attr]
    ages = np.array(impressions.dimension("age_band").values)  # type: ignore[union-attr]
    regions = np.array(impressions.dimension("region").values)  # type: ignore[union-attr]

    pub_people = max(1, rows // 4)
    pub_counts = _rows_per_person(rng, pub_people, 1, 7, rows)
    person = np.repeat(np.arange(pub_people), pub_counts)
    age_of = rng.integers(0, len(ages), size=pub_people)  # a person keeps one age band
    region_of = rng.integers(0, len(regions), size=pub_people)
    order = rng.permutation(len(person))
    person = person[order]
    pub_path = work / "publisher-impressions.csv"
    _write_csv(pub_path, ["email", "campaign", "age_band", "region", "device"], [
        _emails(rng, person, messy=True),
        campaigns[rng.integers(0, len(campaigns), size=len(person))],
        ages[age_of[person]],
        regions[region_of[person]],
        np.array(["mobile", "desktop", "tablet"])[rng.integers(0, 3, size=len(person))],
    ])

    adv_people = max(1, rows * 2 // 3)
    shared = min(round(overlap * adv_people), pub_people)
    adv_ids = np.concatenate([rng.choice(pub_people, size=shared, replace=False),
                              pub_people + np.arange(adv_people - shared)])
    adv_counts = _rows_per_person(rng, adv_people, 1, 2, rows)
    buyer = rng.permutation(np.repeat(adv_ids, adv_counts))
    cents = np.clip(rng.lognormal(np.log(6_000), 0.8, size=len(buyer)), 1, 90_000).astype(np.int64)
    values = np.char.add(np.char.add((cents // 100).astype(str), "."),
                         np.char.zfill((cents % 100).astype(str), 2))
    adv_path = work / "advertiser-conversions.csv"
    _write_csv(adv_path, ["email", "value"], [_emails(rng, buyer, messy=False), values])
    return {"impressions": pub_path, "conversions": adv_path}


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

        queries = [
            ("publisher", "overlap", {"group_by": ["impressions.campaign"]}),
            ("advertiser", "conversions_by_segment",
             {"group_by": ["impressions.campaign", "impressions.age_band"],
              "metric": "conversions.value"}),
            ("publisher", "reach", {"group_by": ["impressions.campaign"]}),
            ("advertiser", "campaign_attribution",
             {"group_by": ["impressions.campaign"], "metric": "conversions.value"}),
            ("advertiser", "activate_converters",
             {"cohort": {"impressions.campaign": "spring_sale"}}),
        ]
        saved: list[Path] = []
        results_dir = work / "results"
        results_dir.mkdir()
        shown: list[Result] = []
        for requester, analysis, params in queries:
            _step(f"{requester}: query {analysis} {params}")
            enclave, _ = enclaves[requester]
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
        _say(f"  {result.analysis}: {len(result.rows)} cohorts released, "
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
