"""Identifier normalisation vectors (``normalisation.json``, rules in ``docs/normalisation.md``).

Each case is an input, its ``kind`` (the policy's ``id_normalization``), the default country
for phone numbers written without ``+`` (or null), and either the normalised string and
SHA-256 of its UTF-8 bytes, or ``refused`` with the reason. A client in another language checks
itself with the first two fields and the digest alone; reasons are informative.

The file is written by this module (``python -m tests.vectors.test_normalisation``) and the test
below fails when the code would now write something else: review such a diff like a change of
wire bytes, since it means two parties on different versions would stop matching.
"""

from __future__ import annotations

import hashlib
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from cleanroom.identifiers import IdentifierError, normalizer

PATH = Path(__file__).with_name("normalisation.json")

# (input, kind, default country)
INPUTS: list[tuple[str, str, str | None]] = [
    # email: ASCII, unchanged since the first release
    ("alice@example.com", "email", None),
    ("  Alice@Example.COM \t", "email", None),
    ("BOB.SMITH+ads@Mail.Example.org\n", "email", None),
    # email: Unicode forms of one address
    ("jos\u00e9@x.com", "email", None),  # NFC
    ("jose\u0301@x.com", "email", None),  # NFD
    ("JOS\u00c9@X.COM", "email", None),
    ("\uff2a\uff4f\uff53\uff45\uff20\uff38.com", "email", None),  # full-width letters and '@'
    ("Stra\u00dfe@x.de", "email", None),  # full case folding: ß -> ss
    ("STRASSE@X.DE", "email", None),
    ("\u039f\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2@x.gr", "email", None),  # final sigma
    ("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3@x.gr", "email", None),
    ("\ufb01nance@x.com", "email", None),  # ligature fi
    ("\u212aelvin@x.com", "email", None),  # KELVIN SIGN
    ("\u212bngstr\u00f6m@x.se", "email", None),  # ANGSTROM SIGN
    ("\u0130stanbul@x.tr", "email", None),  # dotted capital I: no Turkish special case
    ("\u00a0alice@example.com\u3000", "email", None),  # Unicode whitespace around
    ("\u2003alice@example.com\u2028\u0085", "email", None),
    ("jos\u00e9@ex\u00e4mple.de", "email", None),  # Unicode domain kept as Unicode (no IDNA)
    # email: refused
    ("nobody", "email", None),
    ("", "email", None),
    ("a@b@c.com", "email", None),
    ("@example.com", "email", None),
    ("alice@", "email", None),
    ("al ice@x.com", "email", None),
    ("al\u00a0ice@x.com", "email", None),
    ("ali\u200bce@x.com", "email", None),
    ("alice@x.com\u00ad", "email", None),
    ("ali\x00ce@x.com", "email", None),
    ("alice\uff20x\uff20com", "email", None),
    # phone
    ("+44 20 7946 0958", "phone", None),
    ("+44 (0)20 7946 0958", "phone", None),  # national trunk prefix in brackets
    ("0044 20 7946 0958", "phone", None),
    ("(020) 7946-0958", "phone", "44"),
    ("020.7946.0958", "phone", "+44"),
    ("020 7946 0958", "phone", "GB"),
    ("447700900123", "phone", "44"),  # country code written without '+'
    ("07700 900123", "phone", "44"),
    ("tel:+44-20-7946-0958", "phone", None),
    ("tel:7946-0958;phone-context=+44-20", "phone", None),
    ("\uff0b\uff14\uff14 \uff12\uff10 \uff17\uff19\uff14\uff16 \uff10\uff19\uff15\uff18", "phone", None),
    ("+44\u201320\u20137946\u20130958", "phone", None),  # en dashes
    ("+1 (555) 010-9999", "phone", None),
    ("555 010 9999", "phone", "1"),
    ("(201) 555-0123", "phone", "US"),
    ("tel:+1-201-555-0123", "phone", None),
    ("+39 06 6988 0000", "phone", None),  # Italy: the leading 0 is part of the number
    ("+800 1234 5678", "phone", None),  # a non-geographic calling code
    # phone: refused
    ("415.555.2671", "phone", "44"),  # a US number in a GB file: never +444155552671
    ("020 7946 0958", "phone", None),  # national, no default country
    ("+1234567", "phone", None),
    ("+44 20 7946", "phone", None),
    ("+999 1234 5678", "phone", None),
    ("+44 20 7946 0958 ext 12", "phone", None),
    ("tel:+44-20-7946-0958;ext=12", "phone", None),
    ("tel:7946-0958;phone-context=example.com", "phone", None),
    ("+44 2O 7946 0958", "phone", None),  # letter O
    ("1-800-FLOWERS", "phone", "US"),
    # exact
    (" Customer-17 ", "exact", None),
    ("", "exact", None),
]


def build() -> dict[str, Any]:
    import phonenumbers

    cases = []
    for raw, kind, country in INPUTS:
        case: dict[str, Any] = {"input": raw, "kind": kind, "default_country": country}
        try:
            normalised = normalizer(kind, default_country_code=country)(raw)
        except IdentifierError as exc:
            case["refused"] = exc.reason
        else:
            case["normalised"] = normalised
            case["sha256"] = hashlib.sha256(normalised.encode("utf-8")).hexdigest()
        cases.append(case)
    return {
        "description": "Identifier normalisation (docs/normalisation.md): input -> normalised string "
                       "-> SHA-256 of its UTF-8 bytes, or the refusal reason.",
        "unicode_version": unicodedata.unidata_version,
        "phonenumbers_version": phonenumbers.__version__,
        "cases": cases,
    }


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return json.loads(PATH.read_text(encoding="utf-8"))


def test_enough_cases_of_each_kind(vectors):
    cases = vectors["cases"]
    assert len(cases) >= 30
    for kind in ("email", "phone"):
        assert sum(1 for c in cases if c["kind"] == kind and "sha256" in c) >= 10
        assert sum(1 for c in cases if c["kind"] == kind and "refused" in c) >= 8


def test_digest_is_sha256_of_the_utf8_of_the_normalised_string(vectors):
    # What another implementation checks: nothing but the string's UTF-8 bytes is hashed.
    for case in vectors["cases"]:
        if "sha256" in case:
            assert hashlib.sha256(case["normalised"].encode("utf-8")).hexdigest() == case["sha256"]


def test_code_normalises_each_input_as_the_file_says(vectors):
    for case in vectors["cases"]:
        normalise = normalizer(case["kind"], default_country_code=case["default_country"])
        if "refused" in case:
            with pytest.raises(IdentifierError) as info:
                normalise(case["input"])
            assert info.value.reason == case["refused"], case["input"]
        else:
            assert normalise(case["input"]) == case["normalised"], case["input"]


def test_problem_statement_examples(vectors):
    by_input = {(c["input"], c["kind"], c["default_country"]): c for c in vectors["cases"]}
    assert by_input[("jos\u00e9@x.com", "email", None)]["sha256"] == \
        by_input[("jose\u0301@x.com", "email", None)]["sha256"]
    assert by_input[("+44 (0)20 7946 0958", "phone", None)]["normalised"] == "+442079460958"
    assert by_input[("447700900123", "phone", "44")]["normalised"] == "+447700900123"
    assert "refused" in by_input[("415.555.2671", "phone", "44")]
    assert by_input[("tel:+44-20-7946-0958", "phone", None)]["normalised"] == "+442079460958"
    assert "--default-country-code" in by_input[("020 7946 0958", "phone", None)]["refused"]


def test_ascii_emails_hash_as_before(vectors):
    # The bytes of already-normal ASCII emails did not change: trimmed and lower-cased.
    for case in vectors["cases"]:
        if case["kind"] == "email" and case["input"].isascii() and "normalised" in case:
            assert case["normalised"] == case["input"].strip().lower()


def test_file_is_what_the_code_writes():
    assert PATH.read_text(encoding="utf-8") == dump(build()), (
        "normalisation.json is stale: run python -m tests.vectors.test_normalisation and review the diff")


if __name__ == "__main__":
    PATH.write_text(dump(build()), encoding="utf-8")
    sys.stdout.write(f"wrote {PATH}\n")
