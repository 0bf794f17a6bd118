"""A party's long-lived key pair files: an Ed25519 signing key and an X25519 result key.

``<party>.key.json`` holds the private keys (created with mode 0600, never overwritten);
``<party>.pub.json`` holds the public halves that go into the collaboration policy
(``cleanroom policy bind-keys``). Both are small JSON documents with a format number.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from protocol.errors import InvalidInput

__all__ = ["KEY_FILE_FORMAT", "PartyKeys", "PublicKeys", "load_public"]

KEY_FILE_FORMAT = 1
_PARTY_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # the policy's name rule
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NO_ENC = serialization.NoEncryption()


def _check_party(party_id: str) -> str:
    if not isinstance(party_id, str) or not _PARTY_ID.match(party_id):
        raise InvalidInput("party id must be lower-case letters, digits and '_' (as in the policy)")
    return party_id


def _hex32(doc: dict, key: str, where: str) -> bytes:
    value = doc.get(key)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidInput(f"{where}: field {key!r} must be 64 hex digits")
    return raw


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{path}: not a JSON key file") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
        raise InvalidInput(f"{path}: not a format-{KEY_FILE_FORMAT} cleanroom key file")
    return doc


@dataclass(frozen=True)
class PublicKeys:
    """The public half of a party's keys, as the policy names them."""

    party_id: str
    signing_key: bytes  # Ed25519, 32 bytes
    result_key: bytes  # X25519, 32 bytes


def load_public(path: str | os.PathLike[str]) -> PublicKeys:
    """Read a ``<party>.pub.json`` file."""
    path = Path(path)
    doc = _read_json(path)
    party = _check_party(doc.get("party", ""))
    return PublicKeys(party, _hex32(doc, "signing_key", str(path)), _hex32(doc, "result_key", str(path)))


@dataclass(frozen=True)
class PartyKeys:
    """One party's private keys: Ed25519 signs its requests, X25519 opens its results."""

    party_id: str
    signing_key: ed25519.Ed25519PrivateKey
    result_key: x25519.X25519PrivateKey

    @classmethod
    def generate(cls, party_id: str) -> PartyKeys:
        return cls(_check_party(party_id), ed25519.Ed25519PrivateKey.generate(),
                   x25519.X25519PrivateKey.generate())

    @property
    def signing_public(self) -> bytes:
        return self.signing_key.public_key().public_bytes(_RAW, _RAW_PUB)

    @property
    def result_public(self) -> bytes:
        return self.result_key.public_key().public_bytes(_RAW, _RAW_PUB)

    def public(self) -> PublicKeys:
        return PublicKeys(self.party_id, self.signing_public, self.result_public)

    def public_hex(self) -> dict[str, str]:
        """The two public keys as the policy's ``signing_key`` / ``result_key`` hex strings."""
        return {"signing_key": self.signing_public.hex(), "result_key": self.result_public.hex()}

    def sign(self, label: bytes, message: bytes) -> bytes:
        """Ed25519 over ``label || message`` (labels keep signatures single-purpose)."""
        return self.signing_key.sign(label + message)

    def save(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<party>.key.json`` (mode 0600) and ``<party>.pub.json``; never overwrite.

        :raise FileExistsError: either file already exists (nothing is written then).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        private_path = directory / f"{self.party_id}.key.json"
        public_path = directory / f"{self.party_id}.pub.json"
        for path in (private_path, public_path):
            if path.exists():
                raise FileExistsError(f"{path} already exists; refusing to overwrite a key file")
        private_doc = {
            "format": KEY_FILE_FORMAT,
            "party": self.party_id,
            "signing_key": self.signing_key.private_bytes(_RAW, _RAW_PRIV, _NO_ENC).hex(),
            "result_key": self.result_key.private_bytes(_RAW, _RAW_PRIV, _NO_ENC).hex(),
            "public": self.public_hex(),
        }
        public_doc = {"format": KEY_FILE_FORMAT, "party": self.party_id, **self.public_hex()}
        _write_new(private_path, private_doc, 0o600)
        _write_new(public_path, public_doc, 0o644)
        return private_path, public_path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PartyKeys:
        """Read a ``<party>.key.json``; refuse one that others can read (like ssh does)."""
        path = Path(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidInput(f"{path}: private key file is accessible by other users; "
                               "run chmod 600 on it")
        doc = _read_json(path)
        party = _check_party(doc.get("party", ""))
        keys = cls(
            party,
            ed25519.Ed25519PrivateKey.from_private_bytes(_hex32(doc, "signing_key", str(path))),
            x25519.X25519PrivateKey.from_private_bytes(_hex32(doc, "result_key", str(path))),
        )
        public = doc.get("public")
        if public is not None and public != keys.public_hex():
            raise InvalidInput(f"{path}: stored public keys do not match the private keys")
        return keys


def _write_new(path: Path, doc: dict, mode: int) -> None:
    # O_EXCL: a concurrent keygen or an existing file makes this fail instead of clobbering it;
    # the mode is applied at creation, so the private key is never briefly world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


_TABLE_HEADER = re.compile(rb"^\s*\[")
_PARTIES_HEADER = re.compile(rb"^\s*\[\[\s*parties\s*\]\]\s*(#.*)?$")
_ID_LINE = re.compile(rb"""^\s*id\s*=\s*(["'])([^"'\r\n]*)\1""")
_KEY_LINE = re.compile(rb"""^(\s*(signing_key|result_key)\s*=\s*)(["'])([0-9A-Fa-f]*)\3""")


def bind_keys_into_policy(policy: bytes, keys: dict[str, PublicKeys]) -> tuple[bytes, list[str]]:
    """Rewrite the ``signing_key``/``result_key`` values of the ``[[parties]]`` in ``keys``.

    Only the hex strings change; comments, order, spacing and line endings stay byte for byte,
    so parties can diff the new policy against the old one. Returns the new bytes and the ids of
    the parties rewritten. The caller should re-parse the result (``protocol.policy``) and
    compare keys: a key written in a form this line-based edit does not recognise (inline
    table, multi-line string) is left untouched.
    """
    lines = policy.splitlines(keepends=True)
    blocks: list[tuple[int, int]] = []  # [start, end) line ranges of each [[parties]] table
    start: int | None = None
    for i, line in enumerate(lines):
        if _TABLE_HEADER.match(line):
            if start is not None:
                blocks.append((start, i))
            start = i if _PARTIES_HEADER.match(line.rstrip(b"\r\n")) else None
    if start is not None:
        blocks.append((start, len(lines)))
    bound = []
    for first, end in blocks:
        party = next((m.group(2).decode("utf-8", "replace") for line in lines[first:end]
                      if (m := _ID_LINE.match(line))), None)
        if party is None or party not in keys:
            continue
        public = keys[party]
        for i in range(first, end):
            match = _KEY_LINE.match(lines[i])
            if match is None:
                continue
            value = public.signing_key if match.group(2) == b"signing_key" else public.result_key
            lines[i] = (match.group(1) + match.group(3) + value.hex().encode() + match.group(3)
                        + lines[i][match.end():])
        bound.append(party)
    return b"".join(lines), bound
