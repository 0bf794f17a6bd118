"""Identifier normalisation vectors and hashing into a preallocated array."""

import hashlib

import numpy as np
import pytest

from cleanroom.identifiers import hash_identifiers, normalizer
from protocol.errors import InvalidInput


@pytest.mark.parametrize(("raw", "normalised"), [
    ("alice@example.com", "alice@example.com"),
    ("  Alice@Example.COM \t", "alice@example.com"),
    ("BOB.SMITH+ads@Mail.Example.org\n", "bob.smith+ads@mail.example.org"),
])
def test_email_vectors(raw, normalised):
    assert normalizer("email")(raw) == normalised


@pytest.mark.parametrize("raw", ["alice", "a@b@c.com", "@example.com", "alice@", "al ice@x.com", ""])
def test_email_rejects(raw):
    with pytest.raises(ValueError):
        normalizer("email")(raw)


@pytest.mark.parametrize(("raw", "country", "normalised"), [
    ("+44 20 7946 0958", None, "+442079460958"),
    ("0044 20 7946 0958", None, "+442079460958"),
    ("(020) 7946-0958", "44", "+442079460958"),
    ("020.7946.0958", "+44", "+442079460958"),
    ("+1 (555) 010-9999", None, "+15550109999"),
    ("555 010 9999", "1", "+15550109999"),
])
def test_phone_vectors(raw, country, normalised):
    assert normalizer("phone", default_country_code=country)(raw) == normalised


@pytest.mark.parametrize(("raw", "country"), [
    ("020 7946 0958", None),  # national form without a configured country code
    ("+1234567", None),  # 7 digits: too short for E.164
    ("+1234567890123456", None),  # 16 digits: too long
    ("+44 20 7946 0958 ext 12", None),
    ("+44 2O 7946 0958", None),  # letter O
])
def test_phone_rejects(raw, country):
    with pytest.raises(ValueError):
        normalizer("phone", default_country_code=country)(raw)


def test_bad_default_country_code():
    with pytest.raises(InvalidInput):
        normalizer("phone", default_country_code="4a")


def test_exact_keeps_the_value_as_is():
    assert normalizer("exact")(" Customer-17 ") == " Customer-17 "
    with pytest.raises(ValueError):
        normalizer("exact")("")


def test_unknown_normalisation():
    with pytest.raises(InvalidInput):
        normalizer("soundex")


def test_hash_identifiers_writes_sha256_of_the_normalised_value():
    values = [" A@X.org", "b@y.org"]
    out = np.zeros((2, 32), dtype=np.uint8)
    hash_identifiers(values, "email", out)
    assert out[0].tobytes() == hashlib.sha256(b"a@x.org").digest()
    assert out[1].tobytes() == hashlib.sha256(b"b@y.org").digest()


def test_hash_identifiers_error_names_the_index_not_the_value():
    out = np.zeros((2, 32), dtype=np.uint8)
    with pytest.raises(InvalidInput) as info:
        hash_identifiers(["a@x.org", "secret-person"], "email", out)
    assert "identifier 1" in info.value.message and "secret-person" not in info.value.message


def test_hash_identifiers_checks_the_output_array():
    with pytest.raises(ValueError):
        hash_identifiers(["a@x.org"], "email", np.zeros((2, 32), dtype=np.uint8))
