"""Normalise identifiers and hash them with SHA-256, on the party's own machine.

Both parties must turn the same person into the same 32 bytes, so normalisation is fixed by the
policy's ``id_normalization``:

* ``email``: surrounding whitespace removed, lower-cased; exactly one ``@`` with text on both
  sides and no inner whitespace.
* ``phone``: E.164, ``+`` then 8 to 15 digits. Spaces, dots, dashes and brackets are dropped. A
  number must start with ``+`` or ``00`` unless a default country code is configured, in which
  case one national trunk ``0`` is dropped and the code prepended.
* ``exact``: the value's UTF-8 bytes as they are (only an empty value is refused).

Hashing is pseudonymisation, not anonymisation: anyone holding a list of candidate emails or
phone numbers can hash them and recognise a digest. The digests are therefore still personal data;
the client only ever sends them encrypted to the attested enclave, never in the clear.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from protocol.errors import InvalidInput

__all__ = ["DIGEST_SIZE", "NORMALIZATIONS", "hash_identifiers", "normalizer"]

DIGEST_SIZE = 32
NORMALIZATIONS = ("email", "phone", "exact")
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_COUNTRY_CODE = re.compile(r"^[1-9][0-9]{0,2}$")


def _email(value: str) -> str:
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if not at or "@" in domain:
        raise ValueError("an email must contain exactly one '@'")
    if not local or not domain:
        raise ValueError("an email needs text before and after '@'")
    if len(email.split(None, 1)) != 1:  # any whitespace inside, found in C rather than per char
        raise ValueError("an email must not contain whitespace")
    return email


def _phone(value: str, default_country_code: str | None) -> str:
    text = _PHONE_SEPARATORS.sub("", value.strip())
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]  # international call prefix, as dialled in most of the world
    elif default_country_code is not None:
        digits = default_country_code + (text[1:] if text.startswith("0") else text)
    else:
        raise ValueError("a phone number needs a leading '+' (or configure a default country code)")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("a phone number may contain only digits and separators")
    if not 8 <= len(digits) <= 15:
        raise ValueError("a phone number must have 8 to 15 digits in E.164 form")
    return "+" + digits


def _exact(value: str) -> str:
    if value == "":
        raise ValueError("the identifier is empty")
    return value


def normalizer(kind: str, *, default_country_code: str | None = None) -> Callable[[str], str]:
    """The normalising function for ``kind``; it raises ``ValueError`` naming the rule broken.

    The reason never contains the value itself, so callers can show it anywhere.
    """
    if kind == "email":
        return _email
    if kind == "phone":
        if default_country_code is not None:
            default_country_code = default_country_code.lstrip("+")
            if not _COUNTRY_CODE.match(default_country_code):
                raise InvalidInput("default country code must be 1 to 3 digits, e.g. 44 or +1")
        return lambda value: _phone(value, default_country_code)
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

    :raise InvalidInput: a value breaks the normalisation rule (the message gives its index,
        never the value).
    """
    if out.dtype != np.uint8 or out.shape != (len(values), DIGEST_SIZE):
        raise ValueError("out must be a (n, 32) uint8 array")
    normalise = normalizer(kind, default_country_code=default_country_code)
    digests = []
    for index, value in enumerate(values):
        try:
            digests.append(hashlib.sha256(normalise(value).encode("utf-8")).digest())
        except UnicodeEncodeError:  # its text would quote the offending character
            raise InvalidInput(f"identifier {index}: not valid Unicode text") from None
        except ValueError as exc:
            raise InvalidInput(f"identifier {index}: {exc}") from None
    if digests:
        out[:] = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, DIGEST_SIZE)
