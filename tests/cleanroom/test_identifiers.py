"""Identifier normalisation vectors and hashing into a preallocated array."""

import hashlib
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanroom.identifiers import (
    WHITESPACE,
    IdentifierError,
    _email_ascii,
    _email_unicode,
    hash_identifiers,
    normalizer,
)
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


def test_hash_identifiers_error_names_the_index_and_the_value():
    # Shown only on the party's own machine, so the party can find and fix the row.
    out = np.zeros((2, 32), dtype=np.uint8)
    with pytest.raises(InvalidInput) as info:
        hash_identifiers(["a@x.org", "secret-person"], "email", out)
    assert "identifier 1" in info.value.message and "'secret-person'" in info.value.message


def test_refusal_reason_itself_never_quotes_the_value():
    with pytest.raises(IdentifierError) as info:
        normalizer("email")("secret-person")
    assert "secret-person" not in info.value.reason and info.value.value == "secret-person"


def test_hash_identifiers_checks_the_output_array():
    with pytest.raises(ValueError):
        hash_identifiers(["a@x.org"], "email", np.zeros((2, 32), dtype=np.uint8))


# --- issue 11, point 9: normalisation missed real matches --------------------------------------


def test_email_nfc_and_nfd_are_the_same_person():
    nfc, nfd = "jos\u00e9@x.com", "jose\u0301@x.com"
    assert nfc != nfd
    assert normalizer("email")(nfc) == normalizer("email")(nfd) == "jos\u00e9@x.com"


def test_email_full_width_letters_are_folded():
    assert normalizer("email")("\uff2a\uff4f\uff53\uff45\uff20\uff38.com") == "jose@x.com"


def test_email_uses_unicode_case_folding_not_lower():
    assert normalizer("email")("STRASSE@x.de") == normalizer("email")("Stra\u00dfe@x.de") == "strasse@x.de"


def test_email_refusal_names_the_value():
    with pytest.raises(ValueError, match="nobody"):
        normalizer("email")("nobody")


def test_phone_national_trunk_prefix_in_brackets():
    assert normalizer("phone")("+44 (0)20 7946 0958") == "+442079460958"


def test_phone_country_code_already_present_without_plus():
    assert normalizer("phone", default_country_code="44")("447700900123") == "+447700900123"


def test_phone_foreign_national_number_is_refused_not_misattributed():
    with pytest.raises(ValueError, match="GB"):
        normalizer("phone", default_country_code="44")("415.555.2671")


def test_phone_tel_uri():
    assert normalizer("phone")("tel:+44-20-7946-0958") == "+442079460958"


def test_phone_without_plus_names_the_flag():
    with pytest.raises(ValueError, match="--default-country-code"):
        normalizer("phone")("020 7946 0958")


# --- the rest of the rules (docs/normalisation.md) ---------------------------------------------


def test_email_trims_all_unicode_whitespace():
    assert normalizer("email")("\u00a0\u3000alice@example.com\u2009\u2028") == "alice@example.com"


def test_whitespace_set_is_exactly_str_isspace():
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


@pytest.mark.parametrize(("raw", "reason"), [
    ("al\u00a0ice@x.com", "whitespace"),  # NFKC turns the no-break space into a space
    ("ali\u200bce@x.com", "U+200B"),  # zero-width space: invisible, would never match
    ("alice@x.com\u00ad", "U+00AD"),  # soft hyphen
    ("ali\x00ce@x.com", "U+0000"),
    ("ali\ud800ce@x.com", "U+D800"),  # a lone surrogate (undecodable input)
    ("ali\U000e0080ce@x.com", "U+E0080"),  # unassigned: its folding could change later
    ("alice\uff20x\uff20com", "exactly one '@'"),  # full-width '@' counts as '@'
])
def test_email_refuses_invisible_and_inner_characters(raw, reason):
    with pytest.raises(IdentifierError, match=re.escape(reason)):
        normalizer("email")(raw)


def test_long_refused_value_is_shortened():
    with pytest.raises(IdentifierError) as info:
        normalizer("email")("x" * 500)
    assert len(str(info.value)) < 200 and "..." in str(info.value)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=30))
@settings(max_examples=3000, deadline=None)
def test_ascii_fast_path_equals_the_unicode_path(text):
    assert _outcome(_email_ascii, text) == _outcome(_email_unicode, text)


@given(st.text(alphabet=st.sampled_from("aZ@. \t\x00\x1f\x7f\x0b"), max_size=12))
@settings(max_examples=3000, deadline=None)
def test_ascii_fast_path_equals_the_unicode_path_on_tricky_characters(text):
    assert _outcome(_email_ascii, text) == _outcome(_email_unicode, text)


def test_dispatch_uses_the_unicode_path_for_non_ascii():
    raw = " JOS\u00c9@X.COM "
    assert normalizer("email")(raw) == _email_unicode(raw) == "jos\u00e9@x.com"


def _outcome(function, text):
    try:
        return ("ok", function(text).encode("utf-8"))
    except IdentifierError as exc:
        return ("refused", exc.reason)


@pytest.mark.parametrize(("raw", "country", "normalised"), [
    ("(020) 7946-0958", "GB", "+442079460958"),
    ("(020) 7946-0958", "gb", "+442079460958"),
    ("07700 900123", "44", "+447700900123"),
    ("tel:+1-201-555-0123", None, "+12015550123"),
    ("TEL:+44-20-7946-0958", None, "+442079460958"),
    ("tel:7946-0958;phone-context=+44-20", None, "+442079460958"),
    ("\uff0b\uff14\uff14 \uff12\uff10 \uff17\uff19\uff14\uff16 \uff10\uff19\uff15\uff18", None,
     "+442079460958"),  # full-width digits and plus
    ("+44\u201320\u20137946\u20130958", None, "+442079460958"),  # en dashes
    ("(201) 555-0123", "US", "+12015550123"),
])
def test_more_phone_vectors(raw, country, normalised):
    assert normalizer("phone", default_country_code=country)(raw) == normalised


@pytest.mark.parametrize(("raw", "country", "reason"), [
    ("tel:+44-20-7946-0958;ext=12", None, "extension"),
    ("+44 20 7946 0958 x12", None, "extension"),
    ("tel:7946-0958;phone-context=example.com", None, "phone-context"),
    ("1-800-FLOWERS", "US", "only digits"),
    ("+999 1234 5678", None, "not a phone number"),
    ("+44 20 7946", None, "possible"),
    ("020 7946 0958", None, "--default-country-code"),
])
def test_more_phone_refusals(raw, country, reason):
    with pytest.raises(IdentifierError, match=re.escape(reason)):
        normalizer("phone", default_country_code=country)(raw)


@pytest.mark.parametrize("country", ["999", "ZZ", "XX", "G", "+", "1234"])
def test_bad_default_countries(country):
    with pytest.raises(InvalidInput):
        normalizer("phone", default_country_code=country)
