"""The noise sources the enclave runs with: exact discrete Laplace and Gaussian from ``secrets``,
or, for a witnessed query, from a stream seeded by its approved proposal.

Kept apart from ``enclave.engine.analyses`` so tests can pass a source with no noise, and compare a
query with a plaintext reference computed independently.
"""

from __future__ import annotations

import secrets
from fractions import Fraction

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from enclave.engine.noise import discrete_gaussian, discrete_laplace, noise_vector

__all__ = ["ExactNoise", "SeededNoise", "SeededRandomness"]


class ExactNoise:
    """``count`` independent exact draws per call, randomness from ``secrets.randbelow``."""

    mechanism = "exact CKS20 samplers, secrets.randbelow"

    def laplace(self, scale: Fraction, count: int) -> list[int]:
        """Discrete Laplace with scale t = ``scale`` (pure ε)."""
        return noise_vector(count, scale, discrete_laplace, secrets.randbelow)

    def gaussian(self, sigma2: Fraction, count: int) -> list[int]:
        """Discrete Gaussian with variance parameter σ² = ``sigma2`` (ρ-zCDP)."""
        return noise_vector(count, sigma2, discrete_gaussian, secrets.randbelow)




class SeededRandomness:
    """A deterministic stream of uniform bits: AES-256-CTR under a 32-byte seed, zero nonce.

    For a witnessed query (docs/witness.md) the enclave derives the seed from a sealed secret
    and the exact approved proposal, so a replay of that proposal after a rollback draws the
    same noise and releases nothing new, while any other proposal gets independent randomness.
    A seed is used for one query only, so the fixed nonce never repeats under one key.
    ``randbelow`` samples exactly uniformly by rejection (no modulo bias).
    """

    _BLOCK = 4096

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("the seed must be 32 bytes")
        self._stream = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
        self._buffer = b""

    def random_bytes(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._buffer += self._stream.update(bytes(max(self._BLOCK, n - len(self._buffer))))
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def randbelow(self, n: int) -> int:
        if n <= 0:
            raise ValueError("randbelow needs a positive bound")
        bits = n.bit_length()
        mask = (1 << bits) - 1
        while True:
            value = int.from_bytes(self.random_bytes((bits + 7) // 8), "little") & mask
            if value < n:
                return value


class SeededNoise:
    """The exact samplers of ``ExactNoise``, drawing from a ``SeededRandomness``."""

    mechanism = "exact CKS20 samplers, AES-256-CTR stream seeded per approved proposal"

    def __init__(self, randomness: SeededRandomness) -> None:
        self._randbelow = randomness.randbelow

    def laplace(self, scale: Fraction, count: int) -> list[int]:
        return noise_vector(count, scale, discrete_laplace, self._randbelow)

    def gaussian(self, sigma2: Fraction, count: int) -> list[int]:
        return noise_vector(count, sigma2, discrete_gaussian, self._randbelow)
