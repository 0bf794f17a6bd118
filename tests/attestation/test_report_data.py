import hashlib

import pytest

from protocol.report_data import DOMAIN, ZERO_NONCE, policy_hash, report_data

ENC, SIG, PH = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32

# Pinned so that any change to the binding formula is a visible, reviewed change.
GOLDEN_ZERO_NONCE = (
    "bf73e28b308c8894715855774ddfc7d1afda08a7ee36e13deb0939eee00deb3f"
    "eae5f55f4f9103bdcef92c9f8f8d46f2351bb70ef7f24447512d4705c15e9dec"
)


def test_golden_vector():
    assert report_data(ENC, SIG, PH).hex() == GOLDEN_ZERO_NONCE


def test_formula_matches_design():
    nonce = b"\x04" * 32
    expected = hashlib.sha512(b"cleanroom/report-data/v1" + ENC + SIG + PH + nonce).digest()
    assert DOMAIN == b"cleanroom/report-data/v1"
    assert report_data(ENC, SIG, PH, nonce) == expected
    assert len(expected) == 64


def test_default_nonce_is_zero():
    assert report_data(ENC, SIG, PH) == report_data(ENC, SIG, PH, ZERO_NONCE)
    assert report_data(ENC, SIG, PH, b"\x00" * 31 + b"\x01") != report_data(ENC, SIG, PH)


def test_inputs_are_not_interchangeable():
    assert report_data(ENC, SIG, PH) != report_data(SIG, ENC, PH)


@pytest.mark.parametrize("position", range(4))
@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_lengths_are_rejected(position, size):
    args = [ENC, SIG, PH, ZERO_NONCE]
    args[position] = b"\x00" * size
    with pytest.raises(ValueError, match="must be 32 bytes"):
        report_data(*args)


def test_non_bytes_rejected():
    with pytest.raises(TypeError):
        report_data("00" * 32, SIG, PH)  # type: ignore[arg-type]


def test_policy_hash_is_sha256():
    doc = b'collaboration = "demo"\n'
    assert policy_hash(doc) == hashlib.sha256(doc).digest()
