import itertools

import pytest

from attestation.verifier.quote_layout import (
    HEADER_SIZE,
    QUOTE_V3,
    REPORT_BODY_OFFSET,
    REPORT_BODY_SIZE,
    SIGNED_SIZE,
    body_field,
    field,
    parse_quote_fields,
)
from protocol.errors import QuoteInvalid


def test_table_has_no_overlaps_and_fits_its_regions():
    spans = sorted(QUOTE_V3.values())
    for (start, size), (next_start, _) in itertools.pairwise(spans):
        assert start + size <= next_start
    for name in ("version", "att_key_type", "tee_type", "qe_svn", "pce_svn", "user_data"):
        offset, size = QUOTE_V3[name]
        assert offset + size <= HEADER_SIZE
    assert QUOTE_V3["report_data"] == (368, 64)
    assert QUOTE_V3["report_data"][0] + 64 == SIGNED_SIZE == REPORT_BODY_OFFSET + REPORT_BODY_SIZE
    assert QUOTE_V3["qe_auth_data_len"] == (1012, 2)


def test_body_field_is_relative_to_the_report_body():
    assert body_field("mr_enclave") == slice(64, 96)
    assert body_field("report_data") == slice(320, 384)
    assert field("mr_enclave") == slice(112, 144)
    with pytest.raises(KeyError):
        body_field("version")


@pytest.mark.samples
def test_real_sample_fields_match_expected(real_sample):
    exp = real_sample.expected
    f = parse_quote_fields(real_sample.quote)
    assert f.version == exp["quote_version"]
    assert f.tee_type == exp["tee_type"]
    assert f.att_key_type == 2
    assert f.qe_svn == exp["qe_svn"]
    assert f.pce_svn == exp["pce_svn_header"]
    assert f.qe_vendor_id.hex() == "939a7233f79c4ca9940a0db3957f0607"
    assert f.cpu_svn.hex() == exp["cpu_svn"]
    assert f.misc_select == exp["misc_select"]
    assert f.attributes.hex() == exp["attributes"]
    assert f.debug is exp["debug"]
    assert f.mr_enclave.hex() == exp["mr_enclave"]
    assert f.mr_signer.hex() == exp["mr_signer"]
    assert f.isv_prod_id == exp["isv_prod_id"]
    assert f.isv_svn == exp["isv_svn"]
    assert f.report_data.hex() == exp["report_data"]


def _minimal_quote(version: int = 3, tee_type: int = 0) -> bytearray:
    quote = bytearray(SIGNED_SIZE)
    quote[field("version")] = version.to_bytes(2, "little")
    quote[field("tee_type")] = tee_type.to_bytes(4, "little")
    return quote


def test_debug_bit_and_little_endian_ids():
    quote = _minimal_quote()
    quote[96] = 0x07
    quote[field("isv_prod_id")] = (0x1234).to_bytes(2, "little")
    quote[field("isv_svn")] = (7).to_bytes(2, "little")
    f = parse_quote_fields(bytes(quote))
    assert f.debug is True
    assert (f.isv_prod_id, f.isv_svn) == (0x1234, 7)


@pytest.mark.parametrize("size", [0, 47, SIGNED_SIZE - 1])
def test_short_quote_is_invalid(size):
    with pytest.raises(QuoteInvalid, match="too short"):
        parse_quote_fields(bytes(_minimal_quote())[:size])


@pytest.mark.parametrize("version", [2, 4, 5])
def test_unsupported_version_is_invalid(version):
    with pytest.raises(QuoteInvalid, match="version"):
        parse_quote_fields(bytes(_minimal_quote(version=version)))


def test_tdx_quote_is_invalid():
    with pytest.raises(QuoteInvalid, match="not an SGX quote"):
        parse_quote_fields(bytes(_minimal_quote(tee_type=0x81)))
