"""The enclave's long-lived keys: X25519 to receive uploads, Ed25519 to sign outputs, the
AES-256 join key that re-keys identifiers before they are joined (``enclave/engine/join.py``), and
the release-seed key from which a witnessed query's randomness is derived
(``enclave/requests/approvals.py``), so a replay after a rollback releases nothing new."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.errors import StateError

__all__ = ["EnclaveKeys"]

_JOIN_KEY_BYTES = 32


@dataclass(frozen=True)
class EnclaveKeys:
    encryption: X25519PrivateKey
    signing: Ed25519PrivateKey
    join: bytes  # per-collaboration secret (32 bytes); never leaves the enclave except sealed
    release_seed: bytes  # per-collaboration secret (32 bytes) for witnessed queries' randomness

    @classmethod
    def generate(cls) -> EnclaveKeys:
        return cls(X25519PrivateKey.generate(), Ed25519PrivateKey.generate(),
                   secrets.token_bytes(_JOIN_KEY_BYTES), secrets.token_bytes(_JOIN_KEY_BYTES))

    @property
    def enc_pub(self) -> bytes:
        return self.encryption.public_key().public_bytes_raw()

    @property
    def sig_pub(self) -> bytes:
        return self.signing.public_key().public_bytes_raw()

    def sign(self, label: bytes, body: bytes) -> bytes:
        return self.signing.sign(label + body)

    def to_sealable(self) -> dict[str, bytes]:
        """Raw private keys, only ever written through ``enclave.state.sealing``."""
        return {"encryption": self.encryption.private_bytes_raw(),
                "signing": self.signing.private_bytes_raw(), "join": self.join,
                "release_seed": self.release_seed}

    @classmethod
    def from_sealed(cls, data: dict[str, bytes]) -> EnclaveKeys:
        """Fails closed: a sealed state without a join key never runs an unkeyed join."""
        join, seed = data.get("join"), data.get("release_seed")
        if not isinstance(join, bytes) or len(join) != _JOIN_KEY_BYTES:
            raise StateError("the sealed state has no valid join key (an older version wrote it)")
        if not isinstance(seed, bytes) or len(seed) != _JOIN_KEY_BYTES:
            raise StateError("the sealed state has no valid release-seed key (an older version wrote it)")
        return cls(
            X25519PrivateKey.from_private_bytes(data["encryption"]),
            Ed25519PrivateKey.from_private_bytes(data["signing"]),
            join, seed,
        )
