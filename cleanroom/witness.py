"""A data owner's witness: co-signs each charge to its datasets, and never forgets (docs/witness.md).

The enclave's sealed state can be copied and restored by the host, and a host colluding with
one party could so hand that party a fresh budget. The witness is the party that remembers.
It co-signs a ``charge_proposal`` only when

1. the enclave signed it (the caller checks that against the attested key) and the request in it
   is signed by its requester, is for this collaboration and policy, and charges exactly what the
   policy says the analysis costs, to exactly the joined datasets;
2. its ``prev_head`` extends the last head this witness signed: same head, or a later one on the
   same signed chain (checked with the published audit log). An older head, or a different one,
   means the enclave's state was rolled back or forked, and the witness refuses;
3. its own tally of everything it has co-signed, plus this charge, fits in each of its
   datasets' budgets (and the requester's share, where the policy splits them). Every distinct
   proposal it signs counts, executed or not: a signed proposal can always be spent by whoever
   holds it, so the tally is the bound, not the enclave's ledger.

The state file is written (and fsynced) before the signature leaves, so a crash can lose an
approval but never forget one. An identical proposal is answered with the stored signature: the
enclave derives a query's randomness from the proposal, so replaying it releases nothing new.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleanroom.approvals_client import Proposal
from cleanroom.audit import check_on_chain
from cleanroom.keys import PartyKeys
from protocol.audit import AuditHead
from protocol.crypto import APPROVAL_LABEL, QUERY_LABEL
from protocol.errors import RollbackDetected, StateError, WitnessRefused
from protocol.policy import Policy
from protocol.wire import unpack_document

__all__ = ["Witness", "default_witness_path"]

AuditEntries = Callable[[int], list[bytes]]


def default_witness_path(collaboration_id: str, party: str) -> Path:
    """``$CLEANROOM_HOME/witness/<collaboration>-<party>.json``."""
    home = os.environ.get("CLEANROOM_HOME") or Path.home() / ".cleanroom"
    return Path(home) / "witness" / f"{collaboration_id}-{party}.json"


class Witness:
    """One party's witness for one collaboration, its memory in ``state_path``."""

    def __init__(self, policy: Policy, keys: PartyKeys, sig_pub: bytes,
                 state_path: str | os.PathLike[str], *, approve_activations: bool = False) -> None:
        self.policy, self.keys, self.sig_pub = policy, keys, sig_pub
        self.path = Path(state_path)
        self.approve_activations = approve_activations
        self.owned = [d.name for d in policy.datasets if d.owner == keys.party_id]

    def decide(self, proposal: Proposal, audit_entries: AuditEntries, *,
               activation_ok: bool = False) -> bytes:
        """The approval signature for ``proposal``, or ``WitnessRefused`` saying why not."""
        digest = hashlib.sha256(proposal.raw).hexdigest()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one decision at a time, across processes
            state = self._load()
            if digest in state["signed"]:
                return bytes.fromhex(state["signed"][digest]["signature"])
            reasons = self._check_request(proposal)
            if "activation" in reasons and not (self.approve_activations or activation_ok):
                raise WitnessRefused("this activation needs your explicit approval: "
                                     f"cleanroom witness --approve {proposal.query_id.hex()}")
            prev = AuditHead.from_wire(proposal.body["prev_head"])
            self._check_extends(state, prev, audit_entries)
            charged = self._charge(state, proposal.body) if "witness" in reasons else []
            signature = self.keys.sign(APPROVAL_LABEL, proposal.raw)
            state["signed"][digest] = {"signature": signature.hex(), "query_id": proposal.query_id.hex(),
                                       "prev_seq": prev.seq, "charged": charged}
            if state["last_head"] is None or prev.seq >= state["last_head"]["seq"]:
                state["last_head"] = {"seq": prev.seq, "hash": prev.hash.hex()}
            self._save(state)  # durable before the signature leaves
            return signature

    def summary(self) -> dict[str, Any]:
        """How many proposals it co-signed, the last head it signed (seq), and its tally."""
        state = self._load()
        last = state["last_head"]
        return {"signed": len(state["signed"]), "last_head": None if last is None else last["seq"],
                "spent": state["spent"]}

    def tally(self) -> dict[str, Any]:
        """What this witness has co-signed per dataset: ``{dataset: {spent, delta, by_requester}}``."""
        return self._load()["spent"]

    # checks

    def _check_request(self, proposal: Proposal) -> list[str]:
        body, policy, me = proposal.body, self.policy, self.keys.party_id
        reasons = body["approvers"].get(me)
        if not isinstance(reasons, list) or not reasons:
            raise WitnessRefused("this party is not an approver of the proposal")
        request = unpack_document("query_request", body["request"])
        requester = policy.party(request["party"])
        if requester is None or request["party"] != body["requested_by"]:
            raise WitnessRefused("the proposal's requester is not a party of the policy")
        try:
            Ed25519PublicKey.from_public_bytes(requester.signing_key).verify(
                body["request_signature"], QUERY_LABEL + body["request"])
        except InvalidSignature:
            raise WitnessRefused("the request in the proposal is not signed by its requester") from None
        if not hashlib.sha256(body["request"]).digest() == proposal.query_id == body["query_id"]:
            raise WitnessRefused("the proposal's query id is not the hash of its request")
        if request["collaboration_id"] != policy.collaboration_id or request["policy_hash"] != policy.hash:
            raise WitnessRefused("the request was made for another collaboration or policy")
        analysis = policy.analysis(request["analysis"])
        if analysis is None or request["party"] not in analysis.requesters:
            raise WitnessRefused("the policy does not let this party run this analysis")
        allowed_delta = {"0", str(policy.privacy.delta)}
        if (body["unit"] != policy.privacy.unit or Fraction(body["amount"]) != analysis.cost
                or body["delta"] not in allowed_delta or list(body["datasets"]) != list(policy.join)):
            raise WitnessRefused("the proposed charge is not what the policy says this analysis costs")
        return reasons

    def _check_extends(self, state: dict[str, Any], prev: AuditHead, audit_entries: AuditEntries) -> None:
        last = state["last_head"]
        if last is None:
            return
        signed = AuditHead(last["seq"], bytes.fromhex(last["hash"]))
        if prev.seq < signed.seq:
            raise WitnessRefused(f"rollback detected: the enclave proposes a charge on audit entry "
                                 f"{prev.seq}, but this witness already co-signed one on entry "
                                 f"{signed.seq}; the host restored an older sealed state")
        if prev.seq == signed.seq:
            if prev.hash != signed.hash:
                raise WitnessRefused(f"fork detected: two different audit entries {prev.seq}")
            return
        try:
            check_on_chain(audit_entries(max(signed.seq - 1, 0)), self.sig_pub,
                           self.policy.collaboration_id, signed, prev)
        except RollbackDetected as exc:
            raise WitnessRefused(f"fork detected: {exc.message}") from None

    def _charge(self, state: dict[str, Any], body: dict[str, Any]) -> list[str]:
        """Add the charge to this witness's tally of its own datasets, or refuse if it overspends."""
        amount, delta, requester = Fraction(body["amount"]), Fraction(body["delta"]), body["requested_by"]
        privacy = self.policy.privacy
        mine = [name for name in body["datasets"] if name in self.owned]
        for name in mine:
            entry = state["spent"].get(name, {"spent": "0", "delta": "0", "by_requester": {}})
            if Fraction(entry["spent"]) + amount > privacy.budget[name]:
                raise WitnessRefused(f"the budget of dataset {name!r} would be overspent "
                                     f"(co-signed so far: {Fraction(entry['spent'])})")
            shares = privacy.budget_shares.get(name)
            if shares is not None:
                used = Fraction(entry["by_requester"].get(requester, "0"))
                if used + amount > shares.get(requester, Fraction(0)):
                    raise WitnessRefused(f"party {requester!r}'s share of dataset {name!r} "
                                         "would be overspent")
            if privacy.delta_total_max is not None and (
                    Fraction(entry["delta"]) + delta + privacy.conversion_delta > privacy.delta_total_max):
                raise WitnessRefused(f"the delta budget of dataset {name!r} would be overspent")
        for name in mine:
            entry = state["spent"].setdefault(name, {"spent": "0", "delta": "0", "by_requester": {}})
            entry["spent"] = str(Fraction(entry["spent"]) + amount)
            entry["delta"] = str(Fraction(entry["delta"]) + delta)
            by_requester = entry["by_requester"]
            by_requester[requester] = str(Fraction(by_requester.get(requester, "0")) + amount)
        return mine

    # the state file

    def _load(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {"collaboration_id": self.policy.collaboration_id, "policy_hash": self.policy.hash.hex(),
                    "party": self.keys.party_id, "last_head": None, "signed": {}, "spent": {}}
        except ValueError:
            raise StateError(f"the witness state {self.path} is not valid JSON; refusing to "
                             "co-sign anything until it is restored from a backup") from None
        if state.get("policy_hash") != self.policy.hash.hex() or state.get("party") != self.keys.party_id:
            raise StateError(f"the witness state {self.path} belongs to another policy or party")
        return dict(state)

    def _save(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, sort_keys=True, indent=1).encode()
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".witness-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
