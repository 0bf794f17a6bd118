"""The witness (``cleanroom/witness.py``) against a real in-process enclave session.

The enclave proposes, the witness decides, the enclave runs only what every approver signed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from cleanroom.approvals_client import Proposal
from cleanroom.keys import PartyKeys
from cleanroom.witness import Witness
from protocol.crypto import PROPOSAL_LABEL
from protocol.errors import WitnessRefused
from protocol.upload import RECORD_HEADER
from protocol.wire import pack_document, unpack_document
from tests.conftest import EXAMPLE_POLICY, ZeroNoise, bind_policy
from tests.support.enclave_harness import EnclaveHarness, digests

OVERLAP = ("overlap", {"group_by": []})  # 0.2 of a budget of 1.0


@pytest.fixture
def policy_raw(parties: dict[str, PartyKeys]) -> bytes:
    text = EXAMPLE_POLICY.read_text().replace("max_rows = 3_000_000", "max_rows = 5_000")
    text = text.replace('impressions = "6.0"\nconversions = "6.0"',
                        'impressions = "1.0"\nconversions = "1.0"')
    return bind_policy(parties, text.replace('refresh = "none"', 'refresh = "none"\nwitness = "owners"', 1))


def _loaded(policy_raw: bytes, parties: dict[str, PartyKeys], *, sealed: bytes | None = None,
            replay: list[list[bytes]] | None = None) -> EnclaveHarness:
    """An enclave with both datasets: uploaded afresh, or (``sealed``) restored and replayed."""
    harness = EnclaveHarness(policy_raw, ZeroNoise(), sealed=sealed)
    if replay is not None:
        for records in replay:  # as the host replays its stored ciphertext after a restart
            head = msgpack.unpackb(records[0][RECORD_HEADER.size:], raw=False)
            stream = harness.call("upload_begin", {**head, "replay": True})["stream"]
            for index, record in enumerate(records[1:]):
                payload = record[RECORD_HEADER.size:]
                harness.call("upload_chunk", {"stream": stream, "index": index,
                                              "last": payload[0] == 1, "data": payload[1:]})
            harness.call("upload_commit", {"stream": stream})
        return harness
    ids = digests(400, seed=1)
    harness.uploaded = [  # type: ignore[attr-defined]
        harness.encrypt(parties["publisher"], "impressions", {
            "id": ids, "campaign": np.zeros(400, np.uint8), "age_band": np.zeros(400, np.uint8),
            "region": np.zeros(400, np.uint8)})[1],
        harness.encrypt(parties["advertiser"], "conversions",
                        {"id": ids, "value": np.full(400, 1000, np.int64)})[1]]
    for records in harness.uploaded:  # type: ignore[attr-defined]
        harness.send_records(records)
    return harness


def _propose(harness: EnclaveHarness, keys: PartyKeys) -> tuple[dict[str, bytes], Proposal]:
    signed = harness.signed_query(keys, *OVERLAP)
    reply = harness.call("query", signed)
    assert "proposal" in reply, "a witnessed query ran without approvals"
    harness.verify_enclave_signature(PROPOSAL_LABEL, reply["proposal"], reply["signature"])
    return signed, _as_proposal(reply)


def _as_proposal(reply: dict[str, Any]) -> Proposal:
    body = unpack_document("charge_proposal", reply["proposal"])
    return Proposal(reply["query_id"], reply["proposal"], body)


def _witnesses(harness: EnclaveHarness, parties: dict[str, PartyKeys], tmp: Path) -> dict[str, Witness]:
    return {name: Witness(harness.policy, keys, harness.ready["sig_pub"], tmp / f"{name}.json")
            for name, keys in parties.items()}


def _entries(harness: EnclaveHarness) -> Any:
    return lambda after: list(harness.published)


def test_a_witnessed_query_runs_only_with_every_owners_signature(
        policy_raw: bytes, parties: dict[str, PartyKeys], tmp_path: Path) -> None:
    harness = _loaded(policy_raw, parties)
    witnesses = _witnesses(harness, parties, tmp_path)
    signed, proposal = _propose(harness, parties["advertiser"])
    assert proposal.body["approvers"] == {"advertiser": ["witness"], "publisher": ["witness"]}
    only_one = {"publisher": witnesses["publisher"].decide(proposal, _entries(harness))}
    assert "proposal" in harness.call("query", {**signed, "approvals": only_one})  # still waiting
    both = {name: w.decide(proposal, _entries(harness)) for name, w in witnesses.items()}
    ran = harness.call("query", {**signed, "approvals": both})
    assert set(ran["results"]) == {"publisher", "advertiser"}
    assert witnesses["publisher"].tally()["impressions"]["spent"] == "1/5"


def test_an_approval_of_a_stale_proposal_gets_the_current_one(
        policy_raw: bytes, parties: dict[str, PartyKeys], tmp_path: Path) -> None:
    harness = _loaded(policy_raw, parties)
    witnesses = _witnesses(harness, parties, tmp_path)
    signed, proposal = _propose(harness, parties["advertiser"])
    approvals = {name: w.decide(proposal, _entries(harness)) for name, w in witnesses.items()}
    harness.upload(parties["advertiser"], "conversions",  # the head moves on
                   {"id": digests(10, seed=2), "value": np.full(10, 5, np.int64)})
    reply = harness.call("query", {**signed, "approvals": approvals})
    assert "proposal" in reply and reply["proposal"] != proposal.raw
    fresh = _as_proposal(reply)
    approvals = {name: w.decide(fresh, _entries(harness)) for name, w in witnesses.items()}  # extends
    assert "results" in harness.call("query", {**signed, "approvals": approvals})


def test_the_witness_refuses_a_rolled_back_enclave_even_after_its_own_restart(
        policy_raw: bytes, parties: dict[str, PartyKeys], tmp_path: Path) -> None:
    harness = _loaded(policy_raw, parties)
    snapshot = harness.sealed[-1]
    witnesses = _witnesses(harness, parties, tmp_path)
    for _ in range(2):
        signed, proposal = _propose(harness, parties["advertiser"])
        approvals = {name: w.decide(proposal, _entries(harness)) for name, w in witnesses.items()}
        assert "results" in harness.call("query", {**signed, "approvals": approvals})
    uploaded = harness.uploaded  # type: ignore[attr-defined]
    rolled_back = _loaded(policy_raw, parties, sealed=snapshot, replay=uploaded)
    _, stale = _propose(rolled_back, parties["advertiser"])
    again = Witness(harness.policy, parties["publisher"], harness.ready["sig_pub"],
                    tmp_path / "publisher.json")  # the witness restarted too: its file remembers
    with pytest.raises(WitnessRefused, match="rollback detected"):
        again.decide(stale, _entries(rolled_back))


def test_the_tally_counts_every_signed_proposal_and_stops_at_the_budget(
        policy_raw: bytes, parties: dict[str, PartyKeys], tmp_path: Path) -> None:
    harness = _loaded(policy_raw, parties)
    publisher = _witnesses(harness, parties, tmp_path)["publisher"]
    for _ in range(5):  # signed, never run: each is a token the holder could spend
        publisher.decide(_propose(harness, parties["advertiser"])[1], _entries(harness))
    with pytest.raises(WitnessRefused, match="would be overspent"):
        publisher.decide(_propose(harness, parties["advertiser"])[1], _entries(harness))


def test_the_same_proposal_gets_the_same_signature_and_is_counted_once(
        policy_raw: bytes, parties: dict[str, PartyKeys], tmp_path: Path) -> None:
    harness = _loaded(policy_raw, parties)
    publisher = _witnesses(harness, parties, tmp_path)["publisher"]
    _, proposal = _propose(harness, parties["advertiser"])
    assert publisher.decide(proposal, _entries(harness)) == publisher.decide(proposal, _entries(harness))
    assert publisher.tally()["impressions"]["spent"] == "1/5"


def test_a_charge_the_policy_does_not_set_is_refused(
        policy_raw: bytes, parties: dict[str, PartyKeys], tmp_path: Path) -> None:
    harness = _loaded(policy_raw, parties)
    publisher = _witnesses(harness, parties, tmp_path)["publisher"]
    _, proposal = _propose(harness, parties["advertiser"])
    cheap = pack_document("charge_proposal", {**proposal.body, "amount": "1/100"})
    with pytest.raises(WitnessRefused, match="not what the policy says"):
        publisher.decide(Proposal(proposal.query_id, cheap, unpack_document("charge_proposal", cheap)),
                         _entries(harness))
    forged = pack_document("charge_proposal", {**proposal.body, "request_signature": bytes(64)})
    with pytest.raises(WitnessRefused, match="not signed by its requester"):
        publisher.decide(Proposal(proposal.query_id, forged, unpack_document("charge_proposal", forged)),
                         _entries(harness))
