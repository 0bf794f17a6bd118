"""The randomness of an approved query: a pure function of its seed, and exactly uniform."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from enclave.engine.noise_source import SeededNoise, SeededRandomness
from enclave.requests.approvals import seeded_randomness


def test_the_same_seed_gives_the_same_stream_and_noise() -> None:
    a, b = SeededRandomness(bytes(32)), SeededRandomness(bytes(32))
    assert a.random_bytes(10_000) == b.random_bytes(10_000)
    assert SeededNoise(a).laplace(Fraction(5), 50) == SeededNoise(b).laplace(Fraction(5), 50)


def test_a_different_proposal_gives_independent_randomness() -> None:
    noise_a, bytes_a = seeded_randomness(b"k" * 32, b"proposal one")
    _, bytes_b = seeded_randomness(b"k" * 32, b"proposal two")
    assert bytes_a.random_bytes(64) != bytes_b.random_bytes(64)
    noise_c, _ = seeded_randomness(b"other key".ljust(32, b"\0"), b"proposal one")
    assert noise_a.laplace(Fraction(100), 20) != noise_c.laplace(Fraction(100), 20)


def test_randbelow_is_uniform_without_modulo_bias() -> None:
    # n = 3 on 2-bit draws: a modulo reduction would give 0 twice the weight of 1 and 2.
    stream = SeededRandomness(b"\x07" * 32)
    counts = Counter(stream.randbelow(3) for _ in range(30_000))
    assert set(counts) == {0, 1, 2}
    assert all(abs(c - 10_000) < 600 for c in counts.values()), counts  # > 7 sigma from biased 15,000
