"""Bind a directory of parties' public key files into a policy file (``cleanroom policy bind-keys``).

Every ``DIR/<party>.pub.json`` whose party the policy names has its keys written into that
party's ``signing_key`` and ``result_key`` (``cleanroom.keys.bind_keys_into_policy``: only the hex
values change). The rewrite is then checked by re-parsing the new policy, so a key the
line-based edit could not place is an error rather than a silently unchanged policy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cleanroom.keys import PublicKeys, bind_keys_into_policy, load_public
from protocol.errors import InvalidInput
from protocol.policy import Policy, parse_policy

__all__ = ["BoundPolicy", "bind_key_files", "load_public_key_files", "write_policy"]


@dataclass(frozen=True)
class BoundPolicy:
    """The rewritten policy and what went into it."""

    data: bytes  # the new policy file's bytes
    policy: Policy  # ``data`` parsed
    bound: list[str]  # parties whose keys were written, in policy order
    ignored: list[str]  # parties with a key file that the policy does not name


def load_public_key_files(directory: str | os.PathLike[str]) -> dict[str, PublicKeys]:
    """Every ``<party>.pub.json`` in ``directory``, by party id.

    :raise InvalidInput: a file whose name disagrees with the party it names, or no such file.
    """
    directory = Path(directory)
    publics = {}
    for path in sorted(directory.glob("*.pub.json")):
        public = load_public(path)
        if path.name != f"{public.party_id}.pub.json":
            raise InvalidInput(f"{path}: names party {public.party_id!r}; the file name disagrees")
        publics[public.party_id] = public
    if not publics:
        raise InvalidInput(f"{directory}: no <party>.pub.json files")
    return publics


def bind_key_files(policy: bytes, directory: str | os.PathLike[str]) -> BoundPolicy:
    """Write the public keys found in ``directory`` into ``policy``; check the result.

    :raise InvalidInput: see ``load_public_key_files``; a party's keys could not be rewritten
        (not one-line strings); or no key file names a party of the policy.
    :raise PolicyInvalid: the policy (before or after) is not a valid policy.
    """
    publics = load_public_key_files(directory)
    new, bound = bind_keys_into_policy(policy, publics)
    parsed = parse_policy(new)
    for party_id in bound:
        party, public = parsed.party(party_id), publics[party_id]
        if party is None or (party.signing_key, party.result_key) != (public.signing_key,
                                                                      public.result_key):
            raise InvalidInput(f"could not rewrite the keys of party {party_id!r}: write its "
                               "signing_key and result_key as one-line strings")
    if not bound:
        raise InvalidInput("none of the key files names a party of this policy")
    return BoundPolicy(new, parsed, bound, sorted(set(publics) - set(bound)))


def write_policy(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
