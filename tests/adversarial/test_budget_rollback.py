"""A host colluding with one party rolls the budget back; one party locks the other out (issue 11).

Each test runs its own real host on loopback (``HostDeployment``) under a small variant of the
example policy: the attacks edit the host's state directory between restarts.

* ``test_witnessed_budget_survives_a_collusive_rollback``: the host copies the sealed state after
  both uploads, the advertiser spends the whole budget, the host restores the copy and restarts,
  and the advertiser (who colludes, so it ignores its own rollback check) asks again. Without a
  witness, the enclave would answer from a fresh ledger; with ``privacy.witness = "owners"`` the
  publisher's witness refuses to co-sign a charge on a head it has already moved past.
* ``test_replayed_witnessed_query_after_rollback_releases_nothing_new``: replaying a witnessed
  query on the state it was proposed on gives the identical answer, so the replay adds nothing.
* ``test_budget_shares_keep_one_party_from_locking_out_the_other``: with shares, the advertiser
  stops at its own share and the publisher can still query; ``GET /v1/budget`` shows both.
* ``test_activation_waits_for_the_other_owners_approval``: an activation under
  ``approval = "other_owners"`` runs only once the publisher co-signed it; unapproved it times out
  and nothing is charged.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cleanroom.audit import HeadStore
from cleanroom.client import Client
from cleanroom.commands.witness import witness_once
from cleanroom.keys import PartyKeys
from cleanroom.witness import Witness
from protocol.errors import ApprovalTimeout, BudgetExhausted, CleanroomError
from protocol.policy import Policy, parse_policy
from tests.adversarial.kit import ALLOW_SIMULATION, MarkedData, assert_no_leak, assert_still_serving
from tests.conftest import EXAMPLE_POLICY, bind_policy
from tests.support.deployment import HostDeployment

pytestmark = pytest.mark.slow

OVERLAP = ("overlap", {"group_by": []})  # 0.2 per query


def _variant(parties: dict[str, PartyKeys], *, budget: str = "1.0", privacy_extra: str = "",
             activation_extra: str = "") -> bytes:
    text = EXAMPLE_POLICY.read_text()
    text = text.replace("max_rows = 3_000_000", "max_rows = 20_000")  # queries pad to max_rows
    text = text.replace('impressions = "6.0"\nconversions = "6.0"',
                        f'impressions = "{budget}"\nconversions = "{budget}"')
    text = text.replace('refresh = "none"', 'refresh = "none"\n' + privacy_extra, 1)
    text = text.replace("max_identifiers = 100000", "max_identifiers = 100000\n" + activation_extra)
    return bind_policy(parties, text)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "deployment").mkdir()
    return tmp_path


class WitnessLoop:
    """The publisher's `cleanroom witness`, polling in a thread; records what it refused."""

    def __init__(self, host: HostDeployment, policy: Policy, keys: PartyKeys, state: Path,
                 approve: set[str] | None = None) -> None:
        self.client = Client(host.url, head_store=HeadStore(state.parent / "witness-heads"))
        enclave = self.client.verify(policy.raw, ALLOW_SIMULATION)
        self.witness = Witness(policy, keys, enclave.sig_pub, state)
        self.approve = approve if approve is not None else set()
        self.reported: set[tuple[str, str]] = set()
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(CleanroomError):  # the host is restarting: poll again
                self.refused += witness_once(self.client, self.witness, self.approve, self.reported)
            self._stop.wait(0.1)

    def __enter__(self) -> WitnessLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _sealed(host: HostDeployment, policy: Policy) -> Path:
    return host.state / "enclave" / f"collaboration-{hashlib.sha256(policy.raw).hexdigest()}.sealed"


def _upload_both(client: Client, enclave: Any, marked: MarkedData, policy: Policy,
                 parties: dict[str, PartyKeys]) -> None:
    """Marked rows plus 300 people on both sides, so the overlap is released, noised."""
    impressions, conversions = marked.impressions(policy), marked.conversions()
    with impressions.open("a") as out:
        out.writelines(f"shared-{i}@example.com,spring_sale,25-34,north\n" for i in range(300))
    with conversions.open("a") as out:
        out.writelines(f"shared-{i}@example.com,{i % 90}.50\n" for i in range(300))
    client.upload(enclave, parties["publisher"], policy, "impressions", impressions)
    client.upload(enclave, parties["advertiser"], policy, "conversions", conversions)


def _colluding_advertiser(host: HostDeployment, work: Path, name: str) -> Client:
    """A client that forgets audit heads: the colluding party does not check for rollback."""
    return Client(host.url, head_store=HeadStore(work / f"heads-{name}"))


def test_witnessed_budget_survives_a_collusive_rollback(
        work: Path, marked: MarkedData, parties: dict[str, PartyKeys]) -> None:
    policy = parse_policy(_variant(parties, privacy_extra='witness = "owners"'))
    with HostDeployment(work / "deployment", policy.raw) as host, \
            WitnessLoop(host, policy, parties["publisher"], work / "publisher-witness.json") as loop:
        client = _colluding_advertiser(host, work, "before")
        enclave = client.verify(policy.raw, ALLOW_SIMULATION)
        _upload_both(client, enclave, marked, policy, parties)
        snapshot = _sealed(host, policy).read_bytes()
        with WitnessLoop(host, policy, parties["advertiser"], work / "advertiser-witness.json"):
            answered = [client.query(enclave, parties["advertiser"], policy, *OVERLAP) for _ in range(5)]
            assert answered[-1].privacy["budget_remaining"] == {"conversions": "0", "impressions": "0"}
            with pytest.raises(BudgetExhausted):
                client.query(enclave, parties["advertiser"], policy, *OVERLAP)

        host.stop()
        _sealed(host, policy).write_bytes(snapshot)  # the colluding host restores the copy
        host.start()
        refused_before = loop.refused
        client = _colluding_advertiser(host, work, "after")
        enclave = client.verify(policy.raw, ALLOW_SIMULATION)
        # The colluding advertiser's own witness forgets everything; the publisher's does not.
        with WitnessLoop(host, policy, parties["advertiser"], work / "advertiser-forgetful.json"), \
                pytest.raises(ApprovalTimeout):
            client.query(enclave, parties["advertiser"], policy, *OVERLAP, approval_timeout=3)
        assert loop.refused > refused_before, "the publisher's witness never saw the rolled-back proposal"
        # The witness's tally still holds the whole budget as spent.
        assert loop.witness.tally()["impressions"]["spent"] == "1"
        assert_no_leak(host, marked)
        assert_still_serving(host)


def test_replayed_witnessed_query_after_rollback_releases_nothing_new(
        work: Path, marked: MarkedData, parties: dict[str, PartyKeys]) -> None:
    policy = parse_policy(_variant(parties, privacy_extra='witness = "owners"'))
    with HostDeployment(work / "deployment", policy.raw) as host, \
            WitnessLoop(host, policy, parties["publisher"], work / "publisher-witness.json"), \
            WitnessLoop(host, policy, parties["advertiser"], work / "advertiser-witness.json"):
        client = _colluding_advertiser(host, work, "before")
        enclave = client.verify(policy.raw, ALLOW_SIMULATION)
        _upload_both(client, enclave, marked, policy, parties)
        snapshot = _sealed(host, policy).read_bytes()
        nonce, now = bytes(range(16)), int(time.time())
        first = client.query(enclave, parties["advertiser"], policy, *OVERLAP, nonce=nonce, now=now)

        host.stop()
        _sealed(host, policy).write_bytes(snapshot)
        host.start()
        client = _colluding_advertiser(host, work, "after")
        enclave = client.verify(policy.raw, ALLOW_SIMULATION)
        # The same signed request (same nonce and time) on the same restored head: the witnesses
        # answer with the signatures they stored, and the enclave draws the same randomness.
        replay = client.query(enclave, parties["advertiser"], policy, *OVERLAP, nonce=nonce, now=now)
        assert replay.body["query_id"] == first.body["query_id"]
        assert first.body["rows"], "the overlap was suppressed: the comparison would prove nothing"
        assert replay.body["rows"] == first.body["rows"], "a replay drew fresh noise: averaging works"


def test_budget_shares_keep_one_party_from_locking_out_the_other(
        work: Path, marked: MarkedData, parties: dict[str, PartyKeys]) -> None:
    shares = ("[privacy.budget_shares.impressions]\nadvertiser = \"0.4\"\npublisher = \"0.6\"\n"
              "[privacy.budget_shares.conversions]\nadvertiser = \"0.4\"\npublisher = \"0.6\"\n")
    text = _variant(parties).decode().replace("[privacy.budget]", shares + "\n[privacy.budget]")
    policy = parse_policy(text.encode())
    with HostDeployment(work / "deployment", policy.raw) as host:
        client = host.client
        enclave = client.verify(policy.raw, ALLOW_SIMULATION)
        _upload_both(client, enclave, marked, policy, parties)
        spent = [client.query(enclave, parties["advertiser"], policy, *OVERLAP) for _ in range(2)]
        assert spent[-1].privacy["share_remaining"] == {"conversions": "0", "impressions": "0"}
        with pytest.raises(BudgetExhausted) as refused:
            client.query(enclave, parties["advertiser"], policy, *OVERLAP)
        assert "'advertiser''s share" in refused.value.message and "0.2" in refused.value.message
        # The publisher's own share is untouched by the advertiser's queries.
        mine = client.query(enclave, parties["publisher"], policy, *OVERLAP)
        assert mine.privacy["share_remaining"] == {"conversions": "2/5", "impressions": "2/5"}
        status = client.budget_status(enclave, policy)
        assert status["datasets"]["impressions"]["remaining"] == "2/5"
        assert status["datasets"]["impressions"]["shares"]["advertiser"]["remaining"] == "0"
        assert status["datasets"]["impressions"]["shares"]["publisher"]["spent"] == "1/5"
        assert_still_serving(host)


def test_activation_waits_for_the_other_owners_approval(
        work: Path, marked: MarkedData, parties: dict[str, PartyKeys]) -> None:
    policy = parse_policy(_variant(parties, activation_extra='approval = "other_owners"'))
    activation = ("activate_converters", {"cohort": {"impressions.campaign": "spring_sale"}})
    with HostDeployment(work / "deployment", policy.raw) as host:
        client = host.client
        enclave = client.verify(policy.raw, ALLOW_SIMULATION)
        _upload_both(client, enclave, marked, policy, parties)
        before = client.budget_status(enclave, policy)["datasets"]["impressions"]["spent"]
        # No approval: the query waits, times out, and costs nothing.
        with pytest.raises(ApprovalTimeout):
            client.query(enclave, parties["advertiser"], policy, *activation, approval_timeout=1)
        assert client.budget_status(enclave, policy)["datasets"]["impressions"]["spent"] == before

        approved: set[str] = set()
        loop = WitnessLoop(host, policy, parties["publisher"], work / "publisher-witness.json", approved)
        with loop:
            # The automatic witness does not co-sign an activation without --approve.
            with pytest.raises(ApprovalTimeout):
                client.query(enclave, parties["advertiser"], policy, *activation, approval_timeout=2)
            assert loop.refused > 0
            waiting: list[str] = []
            result_box: dict[str, Any] = {}

            def ask() -> None:
                result_box["result"] = client.query(
                    enclave, parties["advertiser"], policy, *activation, approval_timeout=30,
                    on_wait=lambda status: waiting.append(status["query_id"]))

            asking = threading.Thread(target=ask)
            asking.start()
            _wait_for(lambda: bool(waiting))
            approved.add(waiting[0])  # the publisher approves this one list, by its id
            asking.join(60)
        result = result_box["result"]
        assert result.body["kind"] == "cohort_activation"
        assert client.budget_status(enclave, policy)["datasets"]["impressions"]["spent"] != before
        assert_still_serving(host)


def _wait_for(condition: Any, timeout: float = 20) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError("condition not met in time")

