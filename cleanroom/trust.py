"""What this party's client remembers about each collaboration's enclave, and starting over.

The client remembers, per collaboration, the enclave's signing key and the newest audit head it
has seen (``cleanroom.audit.HeadStore``, in ``$CLEANROOM_HOME/heads``). That memory is what
refuses a replaced or rolled-back enclave (``rollback_detected``). When all parties agree to
start over with a new enclave for the same policy, ``forget`` drops it deliberately; the texts
here say what that gives up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cleanroom.audit import AuditHead, HeadStore, default_head_store

__all__ = ["Remembered", "forget", "remembered", "reset_warning", "rollback_hint"]


@dataclass(frozen=True)
class Remembered:
    collaboration_id: str
    sig_pub: bytes
    head: AuditHead
    file: Path


def remembered(store: HeadStore | None = None,
               collaboration_id: str | None = None) -> list[Remembered]:
    """Every collaboration the client remembers (or just ``collaboration_id``), sorted by id.

    :raise StateError: a head file is unreadable.
    """
    store = default_head_store() if store is None else store
    if collaboration_id is not None:
        ids = [collaboration_id]
    elif store.directory.is_dir():
        ids = sorted(p.stem for p in store.directory.glob("*.json"))
    else:
        ids = []
    out = []
    for cid in ids:
        seen = store.load(cid)
        if seen is not None:
            out.append(Remembered(cid, seen[0], seen[1], store.path(cid)))
    return out


def forget(collaboration_id: str, store: HeadStore | None = None) -> Remembered | None:
    """Forget the enclave key and audit head remembered for ``collaboration_id``."""
    store = default_head_store() if store is None else store
    seen = store.forget(collaboration_id)
    if seen is None:
        return None
    return Remembered(collaboration_id, seen[0], seen[1], store.path(collaboration_id))


def reset_warning(memory: Remembered) -> str:
    return "\n".join([
        f"This forgets what this client remembers for collaboration {memory.collaboration_id!r}:",
        f"  enclave signing key  {memory.sig_pub.hex()}",
        f"  newest audit head    entry {memory.head.seq} ({memory.head.hash.hex()[:16]}...)",
        f"  file                 {memory.file}",
        "What you give up: the next enclave this client verifies for this collaboration is",
        "accepted as if it were the first. If the host replaced or restored the enclave's sealed",
        "state (which resets the privacy budget and forgets deletions), nothing will tell you.",
        "Once you use the new enclave, `cleanroom check` and `cleanroom audit verify` refuse",
        "results and logs signed by the old one. Do this only when all parties have agreed to",
        "start over with a new enclave for this policy.",
    ])


def rollback_hint(policy: os.PathLike[str] | str | None = None) -> str:
    """What to tell a party whose client refused an enclave with ``rollback_detected``."""
    directory = default_head_store().directory
    policy_flag = f" --policy {policy}" if policy is not None else " --policy FILE"
    return (f"This client remembers each collaboration's enclave key and newest audit head in "
            f"{directory}. If the host's enclave changed without an agreement, do not proceed: its "
            f"state may have been replaced or rolled back (which resets the privacy budget). If "
            f"all parties agreed to start over with a new enclave for this policy, run "
            f"`cleanroom trust reset{policy_flag}` (it explains what that gives up).")
