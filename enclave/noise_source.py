"""The noise source the enclave runs with: exact discrete Laplace from ``secrets``.

Kept apart from ``enclave.analyses`` so tests can pass a source with no noise, and compare a
query with a plaintext reference computed independently.
"""

from __future__ import annotations

import secrets
from fractions import Fraction

from enclave.noise import discrete_laplace, noise_vector

__all__ = ["ExactLaplaceNoise"]


class ExactLaplaceNoise:
    mechanism = "discrete_laplace"

    def laplace(self, scale: Fraction, count: int) -> list[int]:
        return noise_vector(count, scale, discrete_laplace, secrets.randbelow)
