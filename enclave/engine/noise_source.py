"""The noise source the enclave runs with: exact discrete Laplace and Gaussian from ``secrets``.

Kept apart from ``enclave.engine.analyses`` so tests can pass a source with no noise, and compare a
query with a plaintext reference computed independently.
"""

from __future__ import annotations

import secrets
from fractions import Fraction

from enclave.engine.noise import discrete_gaussian, discrete_laplace, noise_vector

__all__ = ["ExactNoise"]


class ExactNoise:
    """``count`` independent exact draws per call, randomness from ``secrets.randbelow``."""

    mechanism = "exact CKS20 samplers, secrets.randbelow"

    def laplace(self, scale: Fraction, count: int) -> list[int]:
        """Discrete Laplace with scale t = ``scale`` (pure ε)."""
        return noise_vector(count, scale, discrete_laplace, secrets.randbelow)

    def gaussian(self, sigma2: Fraction, count: int) -> list[int]:
        """Discrete Gaussian with variance parameter σ² = ``sigma2`` (ρ-zCDP)."""
        return noise_vector(count, sigma2, discrete_gaussian, secrets.randbelow)


