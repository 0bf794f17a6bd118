"""Party-side audit checks: chain verification and rollback detection by the head store."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cleanroom.audit import AuditHead, HeadStore, verify_audit_log
from enclave.state.audit import AuditLog
from protocol.errors import AuthenticationFailed, RollbackDetected

COLLAB = "collab-1"


def _chain(n: int, key: Ed25519PrivateKey | None = None, start: AuditLog | None = None):
    key = key or Ed25519PrivateKey.generate()
    log = start or AuditLog(COLLAB, lambda label, body: key.sign(label + body))
    entries = [log.append("query_run", 1000 + i, {"i": i}) for i in range(n)]
    return key, log, entries


def _pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_a_whole_log_verifies_and_yields_its_head() -> None:
    key, log, entries = _chain(5)
    head, bodies = verify_audit_log(entries, _pub(key), COLLAB)
    assert head.seq == 5 and head.hash == log.head.hash
    assert [b["seq"] for b in bodies] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("tamper", ["drop", "reorder", "forge", "other_collaboration"])
def test_tampered_logs_are_refused(tamper: str) -> None:
    key, _, entries = _chain(4)
    if tamper == "drop":
        entries = entries[:1] + entries[2:]
    elif tamper == "reorder":
        entries[1], entries[2] = entries[2], entries[1]
    elif tamper == "forge":
        _, _, forged = _chain(4)  # same shape, another key
        entries[2] = forged[2]
    else:
        other = AuditLog("collab-2", lambda label, body: key.sign(label + body))
        entries = [other.append("query_run", 1, {})]
    with pytest.raises(AuthenticationFailed):
        verify_audit_log(entries, _pub(key), COLLAB)


def test_head_store_accepts_progress_and_refuses_regression_fork_and_key_change(tmp_path) -> None:
    store = HeadStore(tmp_path)
    key, log, entries = _chain(3)
    sig_pub = _pub(key)
    store.observe(COLLAB, sig_pub, log.head)
    store.observe(COLLAB, sig_pub, log.head)  # the same head again is fine

    more = [log.append("upload_accepted", 2000, {}) for _ in range(2)]
    store.observe(COLLAB, sig_pub, log.head, entries_after=lambda seq: (entries + more)[seq:])
    assert store.load(COLLAB)[1].seq == 5

    old = verify_audit_log(entries, sig_pub, COLLAB)[0]
    with pytest.raises(RollbackDetected, match="went back"):
        store.observe(COLLAB, sig_pub, old)
    with pytest.raises(RollbackDetected, match="forked at entry 5"):
        store.observe(COLLAB, sig_pub, AuditHead(5, bytes(32)))
    with pytest.raises(RollbackDetected, match="signing key changed"):
        store.observe(COLLAB, _pub(Ed25519PrivateKey.generate()), log.head)


def test_rolling_back_and_running_forward_past_the_seen_head_is_a_fork(tmp_path) -> None:
    store = HeadStore(tmp_path)
    key, log, entries = _chain(3)
    sig_pub = _pub(key)
    store.observe(COLLAB, sig_pub, log.head)
    # The host restores the state of entry 1 and lets the enclave run forward to entry 6.
    rewound = AuditLog(COLLAB, lambda label, body: key.sign(label + body))
    rewound_entries = [rewound.append("query_run", 1000, {"i": 0})]
    assert rewound_entries == entries[:1]
    rewound_entries += [rewound.append("budget_charged", 3000 + i, {}) for i in range(5)]
    with pytest.raises(RollbackDetected):
        store.observe(COLLAB, sig_pub, rewound.head, entries_after=lambda seq: rewound_entries[seq:])
    assert store.load(COLLAB)[1] == log.head  # nothing from the fork was remembered


def test_a_corrupt_head_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / f"{COLLAB}.json").write_text("{not json")
    with pytest.raises(Exception, match="not a valid audit head file"):
        HeadStore(tmp_path).load(COLLAB)


def test_an_overtaken_reply_with_an_older_head_on_the_chain_is_fine(tmp_path) -> None:
    store = HeadStore(tmp_path)
    key, log, entries = _chain(3)
    sig_pub = _pub(key)
    older = verify_audit_log(entries[:2], sig_pub, COLLAB)[0]
    store.observe(COLLAB, sig_pub, log.head)
    store.observe(COLLAB, sig_pub, older, entries_after=lambda seq: entries[seq:])
    assert store.load(COLLAB)[1] == log.head  # still the newest


def test_concurrent_observers_sharing_a_store_never_corrupt_it(tmp_path) -> None:
    import threading

    key, log, entries = _chain(1)
    sig_pub = _pub(key)
    heads = [log.head]
    for i in range(40):
        entries.append(log.append("query_run", 5000 + i, {}))
        heads.append(log.head)
    store = HeadStore(tmp_path)
    errors: list[BaseException] = []

    def observe(head) -> None:
        try:
            store.observe(COLLAB, sig_pub, head, entries_after=lambda seq: entries[seq:])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=observe, args=(h,)) for h in heads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.load(COLLAB)[1] == heads[-1]


def test_a_complete_log_must_reach_the_head_this_party_saw() -> None:
    from cleanroom.audit import verify_complete_log

    key, _, entries = _chain(4)
    seen = AuditHead(3, verify_audit_log(entries[:3], _pub(key), COLLAB)[0].hash)
    head, bodies = verify_complete_log(entries, _pub(key), COLLAB, seen)
    assert head.seq == 4 and len(bodies) == 4
    assert verify_complete_log(entries, _pub(key), COLLAB, None)[0] == head  # nothing to compare
    with pytest.raises(RollbackDetected, match="cut off"):
        verify_complete_log(entries[:2], _pub(key), COLLAB, seen)
    with pytest.raises(RollbackDetected):  # a head of another chain is not in this log
        verify_complete_log(entries, _pub(key), COLLAB, AuditHead(3, bytes(32)))
