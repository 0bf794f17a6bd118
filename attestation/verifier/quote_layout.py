"""The SGX ECDSA quote v3 byte layout, declared once.

Offsets are from the start of the quote; integers are little-endian. Sources: Intel's
"SGX ECDSA Quote Library API" (quote format v3) and Gramine's ``sgx-quote.py``; the table
below is the only place in the project that spells these numbers. The parser is pure stdlib
because the enclave, the host's simulation PKI and the party's verifier all use it.

Layout after the fixed part (variable length, so not in the table)::

    1012  u16  qe_auth_data length n
    1014  n    qe_auth_data
    1014+n u16 certification data type (5 = PEM PCK chain)
    1016+n u32 certification data size
    1020+n ...  certification data
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocol.errors import QuoteInvalid

__all__ = [
    "ATTRIBUTE_DEBUG",
    "HEADER_SIZE",
    "INTEL_QE_VENDOR_ID",
    "QUOTE_V3",
    "REPORT_BODY_OFFSET",
    "REPORT_BODY_SIZE",
    "SIGNED_SIZE",
    "QuoteFields",
    "body_field",
    "field",
    "parse_quote_fields",
]

# name -> (offset, size). Header (0..48), ISV enclave report body (48..432), then the fixed
# part of the signature data. A QE report body uses the same body layout at offset 564.
QUOTE_V3: dict[str, tuple[int, int]] = {
    # header
    "version": (0, 2),
    "att_key_type": (2, 2),
    "tee_type": (4, 4),
    "qe_svn": (8, 2),
    "pce_svn": (10, 2),
    "qe_vendor_id": (12, 16),
    "user_data": (28, 20),
    # ISV enclave report body (sgx_report_body_t)
    "cpu_svn": (48, 16),
    "misc_select": (64, 4),
    "isv_ext_prod_id": (80, 16),
    "attributes": (96, 16),  # flags u64 then xfrm u64; DEBUG is bit 1 of the first byte
    "mr_enclave": (112, 32),
    "mr_signer": (176, 32),
    "config_id": (240, 64),
    "isv_prod_id": (304, 2),
    "isv_svn": (306, 2),
    "config_svn": (308, 2),
    "isv_family_id": (352, 16),
    "report_data": (368, 64),
    # signature data, fixed part
    "signature_data_len": (432, 4),
    "isv_signature": (436, 64),  # ECDSA-P256 raw r||s over bytes 0..432
    "attestation_key": (500, 64),  # raw x||y
    "qe_report": (564, 384),
    "qe_report_signature": (948, 64),  # by the PCK leaf key, raw r||s
    "qe_auth_data_len": (1012, 2),
}

HEADER_SIZE = 48
REPORT_BODY_OFFSET = 48
REPORT_BODY_SIZE = 384
SIGNED_SIZE = HEADER_SIZE + REPORT_BODY_SIZE  # the ISV signature covers quote[0:432]
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
ATTRIBUTE_DEBUG = 0x02
_SUPPORTED_VERSION = 3
_TEE_SGX = 0


def field(name: str) -> slice:
    """The slice of a quote that holds ``name``."""
    offset, size = QUOTE_V3[name]
    return slice(offset, offset + size)


def body_field(name: str) -> slice:
    """The slice of a bare 384-byte report body (ISV or QE report) that holds ``name``."""
    offset, size = QUOTE_V3[name]
    start = offset - REPORT_BODY_OFFSET
    if not 0 <= start < REPORT_BODY_SIZE:
        raise KeyError(name)
    return slice(start, start + size)


@dataclass(frozen=True)
class QuoteFields:
    """Header and ISV report body fields of a quote. Parsing checks no signature."""

    version: int
    att_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    debug: bool
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes


def _uint(quote: bytes, name: str) -> int:
    return int.from_bytes(quote[field(name)], "little")


def parse_quote_fields(quote: bytes) -> QuoteFields:
    """Read the header and report body of an SGX quote v3.

    :raise QuoteInvalid: the quote is too short, not version 3, or not an SGX quote.
    """
    if not isinstance(quote, bytes | bytearray | memoryview):
        raise TypeError("quote must be bytes")
    quote = bytes(quote)
    if len(quote) < SIGNED_SIZE:
        raise QuoteInvalid("quote is too short")
    version, tee_type = struct.unpack_from("<H2xI", quote, 0)
    if version != _SUPPORTED_VERSION:
        raise QuoteInvalid("unsupported quote version")
    if tee_type != _TEE_SGX:
        raise QuoteInvalid("not an SGX quote")
    attributes = quote[field("attributes")]
    return QuoteFields(
        version=version,
        att_key_type=_uint(quote, "att_key_type"),
        tee_type=tee_type,
        qe_svn=_uint(quote, "qe_svn"),
        pce_svn=_uint(quote, "pce_svn"),
        qe_vendor_id=quote[field("qe_vendor_id")],
        cpu_svn=quote[field("cpu_svn")],
        misc_select=_uint(quote, "misc_select"),
        attributes=attributes,
        debug=bool(attributes[0] & ATTRIBUTE_DEBUG),
        mr_enclave=quote[field("mr_enclave")],
        mr_signer=quote[field("mr_signer")],
        isv_prod_id=_uint(quote, "isv_prod_id"),
        isv_svn=_uint(quote, "isv_svn"),
        report_data=quote[field("report_data")],
    )
