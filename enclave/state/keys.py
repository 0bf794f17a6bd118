"""The enclave's long-lived key pairs: X25519 to receive uploads, Ed25519 to sign outputs."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

__all__ = ["EnclaveKeys"]


@dataclass(frozen=True)
class EnclaveKeys:
    encryption: X25519PrivateKey
    signing: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> EnclaveKeys:
        return cls(X25519PrivateKey.generate(), Ed25519PrivateKey.generate())

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
        return {"encryption": self.encryption.private_bytes_raw(), "signing": self.signing.private_bytes_raw()}

    @classmethod
    def from_sealed(cls, data: dict[str, bytes]) -> EnclaveKeys:
        return cls(
            X25519PrivateKey.from_private_bytes(data["encryption"]),
            Ed25519PrivateKey.from_private_bytes(data["signing"]),
        )
