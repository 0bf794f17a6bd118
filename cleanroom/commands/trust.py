"""``cleanroom trust show | reset``: the enclave key and audit head this client remembers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cleanroom.commands.arguments import add_policy, command, read_policy

__all__ = ["register"]


def register(subparsers: Any) -> None:
    group = command(subparsers, "trust",
                    "Show or forget the enclave key and audit head this client remembers",
                    "For each collaboration the client remembers the enclave's signing key and the "
                    "newest audit head it has seen ($CLEANROOM_HOME/heads); that is what refuses a "
                    "replaced or rolled-back enclave (rollback_detected).")
    commands = group.add_subparsers(dest="trust_command", metavar="COMMAND", required=True)
    p = command(commands, "show", "List what this client remembers",
                "Every collaboration, or only the one of --policy.")
    p.add_argument("--policy", type=Path, metavar="FILE", help="only this policy's collaboration")
    p.set_defaults(func=_show)
    p = command(commands, "reset", "Forget the remembered enclave for one collaboration",
                "Start over deliberately with a new enclave for the same policy, when all parties "
                "agree. Prints what it gives up; changes nothing without --yes.")
    add_policy(p)
    p.add_argument("--yes", action="store_true", help="really forget it")
    p.set_defaults(func=_reset)


def _show(args: argparse.Namespace) -> int:
    from cleanroom.audit import default_head_store
    from cleanroom.trust import remembered

    store = default_head_store()
    collaboration = None if args.policy is None else read_policy(args.policy)[1].collaboration_id
    memories = remembered(store, collaboration)
    if not memories:
        print(f"nothing remembered in {store.directory}"
              + (f" for collaboration {collaboration!r}" if collaboration else ""))
        return 0
    for m in memories:
        print(f"{m.collaboration_id}: enclave sig_pub {m.sig_pub.hex()}, audit head entry "
              f"{m.head.seq} ({m.head.hash.hex()[:16]}...), in {m.file}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    from cleanroom.audit import default_head_store
    from cleanroom.trust import forget, remembered, reset_warning

    store = default_head_store()
    collaboration = read_policy(args.policy)[1].collaboration_id
    memories = remembered(store, collaboration)
    if not memories:
        print(f"nothing remembered for collaboration {collaboration!r} in {store.directory}; "
              "nothing to reset")
        return 0
    print(reset_warning(memories[0]), file=sys.stderr)
    if not args.yes:
        print("nothing was changed: run again with --yes to forget it", file=sys.stderr)
        return 1
    forget(collaboration, store)
    print(f"forgot the enclave key and audit head of collaboration {collaboration!r}; the next "
          "enclave verified for it will be remembered from scratch")
    return 0
