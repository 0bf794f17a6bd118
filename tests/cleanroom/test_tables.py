"""CSV and Parquet files -> the policy dataset's upload columns."""

import hashlib

import numpy as np
import pytest

from cleanroom.tables import open_table, parse_fixed_point, read_all
from protocol.errors import InvalidInput

IMPRESSIONS = """email,campaign,age_band,region,device
 Alice@Example.com,spring_sale,18-24,north,mobile
bob@example.com,loyalty,65+,central,"desk,top"
carol@example.com,summer_run,25-34,west,"multi
line"
"""


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sha(text):
    return np.frombuffer(hashlib.sha256(text.encode()).digest(), dtype=np.uint8)


def test_good_file_gives_the_policy_columns(tmp_path, policy):
    dataset = policy.dataset("impressions")
    columns = read_all(write(tmp_path, IMPRESSIONS), dataset)
    assert list(columns) == [name for name, _ in dataset.schema()]
    assert columns["id"].dtype == np.uint8 and columns["id"].shape == (3, 32)
    assert (columns["id"][0] == sha("alice@example.com")).all()
    assert (columns["id"][2] == sha("carol@example.com")).all()
    campaigns = dataset.dimension("campaign").values
    assert columns["campaign"].dtype == np.dtype("<u2")
    assert [campaigns[c] for c in columns["campaign"]] == ["spring_sale", "loyalty", "summer_run"]
    assert columns["age_band"].tolist() == [0, 5, 1]
    assert columns["region"].tolist() == [0, 4, 3]


def test_extra_columns_are_reported_and_never_read(tmp_path, policy):
    with open_table(write(tmp_path, IMPRESSIONS), policy.dataset("impressions")) as table:
        assert table.extra_columns == ("device",)
        blocks = list(table.blocks(10))
    assert set(blocks[0]) == {"id", "campaign", "age_band", "region"}


def test_blocks_are_bounded(tmp_path, policy):
    rows = "".join(f"p{i}@x.org,{i}.5\n" for i in range(5))
    with open_table(write(tmp_path, "email,value\n" + rows), policy.dataset("conversions")) as table:
        sizes = [len(block["id"]) for block in table.blocks(2)]
        assert sizes == [2, 2, 1] and table.rows_read == 5
        assert table.bytes_read == table.total_bytes


def test_metrics_are_exact_fixed_point(tmp_path, policy):
    text = "email,value\na@x.org,12.5\nb@x.org,0.01\nc@x.org,-3\nd@x.org, 700.10 \n"
    columns = read_all(write(tmp_path, text), policy.dataset("conversions"))
    assert columns["value"].dtype == np.dtype("<i8")
    assert columns["value"].tolist() == [1250, 1, -300, 70010]  # no clamping on the client


def test_missing_id_column(tmp_path, policy):
    path = write(tmp_path, "mail,value\na@x.org,1\n")
    with pytest.raises(InvalidInput) as info:
        read_all(path, policy.dataset("conversions"))
    assert info.value.message == (
        "column 'email' named by the policy for dataset 'conversions' is missing; "
        "found: 'mail', 'value'"
    )


def test_missing_dimension_and_metric_columns(tmp_path, policy):
    with pytest.raises(InvalidInput, match="dimension column 'region' of dataset 'impressions'"):
        read_all(write(tmp_path, "email,campaign,age_band\n"), policy.dataset("impressions"))
    with pytest.raises(InvalidInput, match="metric column 'value' of dataset 'conversions'"):
        read_all(write(tmp_path, "email,amount\n"), policy.dataset("conversions"))


def test_wrong_metric_type_names_line_and_column(tmp_path, policy):
    path = write(tmp_path, "email,value\na@x.org,1.00\nb@x.org,twelve\n")
    with pytest.raises(InvalidInput) as info:
        read_all(path, policy.dataset("conversions"))
    assert "line 3" in info.value.message and "'value'" in info.value.message
    assert "not a decimal number" in info.value.message
    assert "(value 'twelve')" in info.value.message  # the party's own machine: name the value


def test_unknown_dimension_value(tmp_path, policy):
    text = ("email,campaign,age_band,region\n"
            "a@x.org,spring_sale,18-24,north\nb@x.org,Spring_Sale,18-24,north\n")
    with pytest.raises(InvalidInput) as info:
        read_all(write(tmp_path, text), policy.dataset("impressions"))
    message = info.value.message
    assert "line 3" in message and "'campaign'" in message and "declared values" in message
    assert "(value 'Spring_Sale'); did you mean 'spring_sale'?" in message  # differs only in case


def test_too_many_decimals(tmp_path, policy):
    expected = r"line 2, column 'value': has more decimal places than the policy's scale \(2\)"
    with pytest.raises(InvalidInput, match=expected):
        read_all(write(tmp_path, "email,value\na@x.org,1.234\n"), policy.dataset("conversions"))


def test_bad_identifier_names_the_line(tmp_path, policy):
    with pytest.raises(InvalidInput, match="line 3, column 'email': an email must contain exactly one '@'"):
        read_all(write(tmp_path, "email,value\na@x.org,1\nnobody,2\n"), policy.dataset("conversions"))


def test_bad_identifier_quotes_the_value_for_the_party(tmp_path, policy):
    # Identifier refusals are the one message that quotes the cell: only the party sees it.
    with pytest.raises(InvalidInput) as info:
        read_all(write(tmp_path, "email,value\na@x.org,1\nnobody,2\n"), policy.dataset("conversions"))
    assert info.value.message == ("data.csv: line 3, column 'email': an email must contain exactly "
                                  "one '@' (value 'nobody')")


def test_unicode_forms_of_one_email_give_one_digest(tmp_path, policy):
    text = "email,value\njos\u00e9@x.com,1\njose\u0301@x.com,1\nJOS\u00c9@X.COM\u00a0,1\n"
    ids = read_all(write(tmp_path, text), policy.dataset("conversions"))["id"]
    assert (ids == sha("jos\u00e9@x.com")).all()


def test_phone_identifiers_use_the_default_country(tmp_path, policy_bytes):
    from protocol.policy import parse_policy

    phones = parse_policy(policy_bytes.replace(b'id_normalization = "email"', b'id_normalization = "phone"'))
    path = write(tmp_path, "email,value\n+44 (0)20 7946 0958,1\n447700900123,1\ntel:+442079460958,1\n")
    ids = read_all(path, phones.dataset("conversions"), default_country_code="44")["id"]
    assert [bytes(row) for row in ids] == [hashlib.sha256(n.encode()).digest()
                                           for n in ("+442079460958", "+447700900123", "+442079460958")]
    with pytest.raises(InvalidInput, match=r"line 2, column 'email': .*--default-country-code"):
        read_all(write(tmp_path, "email,value\n020 7946 0958,1\n"), phones.dataset("conversions"))


def test_empty_file_and_header_only(tmp_path, policy):
    with pytest.raises(InvalidInput, match="empty"):
        read_all(write(tmp_path, ""), policy.dataset("conversions"))
    with pytest.raises(InvalidInput, match="no rows"):
        read_all(write(tmp_path, "email,value\n"), policy.dataset("conversions"))


def test_ragged_row(tmp_path, policy):
    with pytest.raises(InvalidInput, match="line 2: expected 2 fields, found 3"):
        read_all(write(tmp_path, "email,value\na@x.org,1,extra\n"), policy.dataset("conversions"))


def test_max_rows_is_enforced_early(tmp_path, policy_bytes):
    from protocol.policy import parse_policy

    small = parse_policy(policy_bytes.replace(b"max_rows = 3_000_000", b"max_rows = 2"))
    with pytest.raises(InvalidInput, match="at most 2 rows"):
        read_all(write(tmp_path, "email,value\na@x.org,1\nb@x.org,1\nc@x.org,1\n"),
                 small.dataset("conversions"))


def test_utf8_bom_is_accepted(tmp_path, policy):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,value\na@x.org,1\n")
    assert read_all(path, policy.dataset("conversions"))["value"].tolist() == [100]


@pytest.mark.parametrize(("text", "scale", "value"), [
    ("12.5", 2, 1250), ("-0.01", 2, -1), ("1e2", 2, 10000), ("1.230", 2, 123), ("0", 0, 0),
    ("9223372036854775807", 0, 2**63 - 1),
])
def test_parse_fixed_point(text, scale, value):
    assert parse_fixed_point(text, scale) == value


@pytest.mark.parametrize(("text", "scale"), [
    ("1.2345", 2), ("NaN", 2), ("Infinity", 2), ("1,000", 2), ("", 2), ("9223372036854775808", 0),
    ("1e400", 2), ("1.0000000000000000000000000001", 2),  # beyond Decimal's default precision
])
def test_parse_fixed_point_rejects(text, scale):
    with pytest.raises(ValueError):
        parse_fixed_point(text, scale)


def test_parquet_matches_csv(tmp_path, policy):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "email": [" Alice@Example.com", "bob@example.com"],
        "value": [12.5, 0.1],  # floats mean their shortest decimal repr
        "note": ["x", "y"],
    })
    path = tmp_path / "conv.parquet"
    pq.write_table(table, path)
    dataset = policy.dataset("conversions")
    from_parquet = read_all(path, dataset)
    from_csv = read_all(write(tmp_path, "email,value\n Alice@Example.com,12.5\nbob@example.com,0.1\n"),
                        dataset)
    for name in from_csv:
        assert (from_parquet[name] == from_csv[name]).all()
    with open_table(path, dataset) as opened:
        assert opened.extra_columns == ("note",)


def test_parquet_errors_name_the_row(tmp_path, policy):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "conv.parquet"
    pq.write_table(pa.table({"email": ["a@x.org", "b@x.org"], "value": [1.0, None]}), path)
    with pytest.raises(InvalidInput, match="row 2, column 'value': value is missing"):
        read_all(path, policy.dataset("conversions"))


def test_unsupported_extension(tmp_path, policy):
    with pytest.raises(InvalidInput, match="unsupported file type"):
        open_table(write(tmp_path, "x", name="data.xlsx"), policy.dataset("conversions"))
