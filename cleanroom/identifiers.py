"""Normalise identifiers and hash them with SHA-256, on the party's own machine.

Both parties must turn the same person into the same 32 bytes, so normalisation is fixed by the
policy's ``id_normalization``. The exact rules, byte for byte, with examples, are published in
``docs/normalisation.md`` and checked against ``tests/vectors/normalisation.json``:

* ``email``: Unicode NFKC, full case folding (``str.casefold``), NFKC again, then the Unicode
  whitespace around it trimmed; exactly one ``@`` with text on both sides, and no whitespace,
  control, format (invisible), surrogate or unassigned character. Pure-ASCII values take a fast
  path that gives byte-identical results (``tests/cleanroom/test_identifiers.py`` checks it).
* ``phone``: E.164 via ``phonenumbers`` (libphonenumber's metadata). ``tel:`` URIs (RFC 3966)
  are accepted; extensions are refused. A number without ``+`` needs a default country (a
  calling code such as ``44`` or a region such as ``GB``); without one, a leading ``00`` is
  read as ``+``.
* ``exact``: the value's UTF-8 bytes as they are (only an empty value is refused).

The SHA-256 input is the UTF-8 encoding of the normalised string, with no prefix or label.

A refusal raises ``IdentifierError`` (a ``ValueError``) whose message quotes the refused value,
so that the party can find and fix it; it is only ever shown on the party's own machine.

Hashing is pseudonymisation, not anonymisation: anyone holding a list of candidate emails or
phone numbers can hash them and recognise a digest. The digests are therefore still personal data;
the client only ever sends them encrypted to the attested enclave, never in the clear.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from protocol.errors import InvalidInput

__all__ = [
    "DEFAULT_COUNTRY_FLAG",
    "DIGEST_SIZE",
    "NORMALIZATIONS",
    "WHITESPACE",
    "IdentifierError",
    "default_region",
    "hash_identifiers",
    "normalizer",
]

DIGEST_SIZE = 32
NORMALIZATIONS = ("email", "phone", "exact")
DEFAULT_COUNTRY_FLAG = "--default-country-code"
_SHOWN_CHARS = 80  # a refused value is quoted up to this many characters

# Exactly the characters for which Python's str.isspace() is true: Unicode White_Space plus the
# four ASCII information separators U+001C..U+001F (what str.strip() has always removed).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_WHITESPACE = "".join(c for c in WHITESPACE if c.isascii())
_ASCII_BAD = re.compile(r"[\x00-\x20\x7f]")  # whitespace or a control character
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn"})


class IdentifierError(ValueError):
    """A value that the normalisation refuses: ``reason`` never quotes it, ``str()`` does."""

    def __init__(self, reason: str, value: str) -> None:
        self.reason = reason
        self.value = value
        shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "..."
        super().__init__(f"{reason} (value {shown!r})")


# --- email ---------------------------------------------------------------------------------------


def _bad_character(char: str) -> str:
    if char in WHITESPACE:
        return "an email must not contain whitespace"
    return f"an email must not contain the control or invisible character U+{ord(char):04X}"


def _check_email(email: str, value: str, first_bad: Callable[[str], str | None]) -> str:
    local, at, domain = email.partition("@")
    if not at or "@" in domain:
        raise IdentifierError("an email must contain exactly one '@'", value)
    if not local or not domain:
        raise IdentifierError("an email needs text before and after '@'", value)
    bad = first_bad(email)
    if bad is not None:
        raise IdentifierError(_bad_character(bad), value)
    return email


def _first_bad_ascii(email: str) -> str | None:
    match = _ASCII_BAD.search(email)
    return None if match is None else match.group()


def _first_bad_unicode(email: str) -> str | None:
    for char in email:
        if char in WHITESPACE or unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def _email_unicode(value: str) -> str:
    """The full rule, for any value (the reference the ASCII fast path must equal)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return _check_email(folded.strip(WHITESPACE), value, _first_bad_unicode)


def _email_ascii(value: str) -> str:
    """The same result for a pure-ASCII value: NFKC is the identity and casefold is lower()."""
    email = value.strip(_ASCII_WHITESPACE).lower()
    local, _, domain = email.partition("@")
    if local and domain and "@" not in domain and email.isprintable() and " " not in email:
        return email  # the common case, checked with C-speed string methods only
    return _check_email(email, value, _first_bad_ascii)  # the same checks, naming the reason


def _email(value: str) -> str:
    return _email_ascii(value) if value.isascii() else _email_unicode(value)


# --- phone ---------------------------------------------------------------------------------------

# After NFKC: digits, one leading '+', and the separators people write (Unicode dashes included).
_PHONE_CHARS = re.compile(r"\+?[0-9\s().\[\]/~\-\u2010-\u2015\u2212]+")
_EXTENSION = re.compile(r"(?i)(?:e?xt?\.?|extension|#)\s*[0-9]+\s*$")
_REGION = re.compile(r"^[A-Za-z]{2}$")
_COUNTRY_CODE = re.compile(r"^\+?[1-9][0-9]{0,2}$")


def _phonenumbers() -> Any:
    try:
        import phonenumbers
    except ImportError:
        raise InvalidInput("phone identifiers need the phonenumbers package: "
                           "pip install 'enclave-cleanroom[client]' (or pip install phonenumbers)") from None
    return phonenumbers


def default_region(default_country_code: str | None) -> str | None:
    """The libphonenumber region for a calling code (``44``, ``+1``) or a region (``GB``)."""
    if default_country_code is None:
        return None
    pn = _phonenumbers()
    code = default_country_code.strip()
    if _REGION.match(code):
        region = code.upper()
        if region not in pn.SUPPORTED_REGIONS:
            raise InvalidInput(f"default country {code!r} is not a region libphonenumber knows "
                               "(use an ISO 3166 alpha-2 code such as GB, or a calling code such as 44)")
        return str(region)
    if not _COUNTRY_CODE.match(code):
        raise InvalidInput("default country code must be 1 to 3 digits (e.g. 44 or +1) "
                           "or an ISO 3166 alpha-2 region (e.g. GB)")
    region = pn.region_code_for_country_code(int(code.lstrip("+")))
    if region == pn.UNKNOWN_REGION:
        raise InvalidInput(f"default country code {code!r} is not an assigned calling code")
    return str(region)


def _tel_uri(text: str, value: str) -> str:
    """The number of a ``tel:`` URI (RFC 3966); ``phone-context=+...`` prefixes a local number."""
    number, *params = text[4:].split(";")
    context = None
    for param in params:
        name, _, pvalue = param.partition("=")
        name = name.strip().lower()
        if name in ("ext", "isub"):
            raise IdentifierError(f"a phone number must not have an extension ({name}=): remove it "
                                  "yourself if every extension is the same person", value)
        if name == "phone-context":
            context = pvalue.strip()
    if context is not None and not number.lstrip().startswith("+"):
        if not context.startswith("+"):
            raise IdentifierError("a tel: URI's phone-context must be a global number (+...), "
                                  "not a domain name", value)
        number = context + number
    return number


def _phone(value: str, region: str | None) -> str:
    pn = _phonenumbers()
    text = unicodedata.normalize("NFKC", value).strip(WHITESPACE)
    if text[:4].lower() == "tel:":
        text = _tel_uri(text, value).strip(WHITESPACE)
    if _EXTENSION.search(text):
        raise IdentifierError("a phone number must not have an extension: remove it yourself if "
                              "every extension is the same person", value)
    if not _PHONE_CHARS.fullmatch(text):
        raise IdentifierError("a phone number may contain only digits, one leading '+' and "
                              "separators (spaces, dots, dashes, brackets, '/')", value)
    international = text.startswith("+")
    if not international and region is None:
        if not text.startswith("00"):
            raise IdentifierError("a phone number needs a leading '+' and its country code, or "
                                  f"pass {DEFAULT_COUNTRY_FLAG} (e.g. 44 or GB) for national "
                                  "numbers", value)
        text = "+" + text[2:]  # international call prefix, as dialled in most of the world
    try:
        number = pn.parse(text, None if text.startswith("+") else region)
    except pn.NumberParseException as exc:
        raise IdentifierError(f"not a phone number ({_parse_reason(pn, exc)})", value) from None
    possible = pn.is_possible_number_with_reason(number)
    if possible != pn.ValidationResult.IS_POSSIBLE:
        raise IdentifierError(f"not a possible phone number: {_possible_reason(pn, possible)}", value)
    national = pn.national_significant_number(number)
    regions = pn.region_codes_for_country_code(number.country_code)
    shapes = [pn.PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, r)
              for r in regions]
    if not any(m is not None and m.general_desc.national_number_pattern is not None
               and re.fullmatch(m.general_desc.national_number_pattern, national) for m in shapes):
        where = f"+{number.country_code}"
        if not international and region is not None:
            where += f" (the default country {region}); if it is a foreign number, write it with '+'"
        raise IdentifierError(f"not a number of the shape used in {where}", value)
    return str(pn.format_number(number, pn.PhoneNumberFormat.E164))


def _parse_reason(pn: Any, exc: Any) -> str:
    return {
        pn.NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
        pn.NumberParseException.NOT_A_NUMBER: "no number found",
        pn.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
        pn.NumberParseException.TOO_SHORT_NSN: "too short",
        pn.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "unparseable")


def _possible_reason(pn: Any, result: int) -> str:
    return {
        pn.ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
        pn.ValidationResult.TOO_SHORT: "too short for its country",
        pn.ValidationResult.TOO_LONG: "too long for its country",
        pn.ValidationResult.INVALID_LENGTH: "a length its country never uses",
        pn.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number without its area code",
    }.get(result, "impossible length")


# --- exact and dispatch --------------------------------------------------------------------------


def _exact(value: str) -> str:
    if value == "":
        raise IdentifierError("the identifier is empty", value)
    return value


def normalizer(kind: str, *, default_country_code: str | None = None) -> Callable[[str], str]:
    """The normalising function for ``kind``; it raises ``IdentifierError`` (a ``ValueError``).

    ``default_country_code`` (phone only) is a calling code (``44``, ``+1``) or an ISO 3166
    alpha-2 region (``GB``) for numbers written without ``+``. The error's ``reason`` never
    contains the value; its message does (for the party's own eyes).
    """
    if kind == "email":
        return _email
    if kind == "phone":
        region = default_region(default_country_code)
        return lambda value: _phone(value, region)
    if kind == "exact":
        return _exact
    raise InvalidInput(f"unknown identifier normalisation {kind!r}; expected one of {NORMALIZATIONS}")


def hash_identifiers(
    values: Sequence[str],
    kind: str,
    out: np.ndarray,
    *,
    default_country_code: str | None = None,
) -> None:
    """Normalise each value and write its SHA-256 digest into row ``i`` of ``out``.

    ``out`` is a preallocated ``(len(values), 32)`` uint8 array.

    :raise InvalidInput: a value breaks the normalisation rule (the message gives its index and
        quotes the value: show it only to the party that owns the data).
    """
    if out.dtype != np.uint8 or out.shape != (len(values), DIGEST_SIZE):
        raise ValueError("out must be a (n, 32) uint8 array")
    normalise = normalizer(kind, default_country_code=default_country_code)
    digests = []
    for index, value in enumerate(values):
        try:
            digests.append(hashlib.sha256(normalise(value).encode("utf-8")).digest())
        except UnicodeEncodeError:  # a lone surrogate (exact); its text would quote the character
            raise InvalidInput(f"identifier {index}: not valid Unicode text") from None
        except ValueError as exc:
            raise InvalidInput(f"identifier {index}: {exc}") from None
    if digests:
        out[:] = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, DIGEST_SIZE)
