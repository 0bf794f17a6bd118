"""The validation report, the reject file, --skip-invalid counts, compressed CSV, progress."""

import csv
import gzip
import hashlib
import io

import numpy as np
import pytest

from cleanroom.tables import RefusedCell, open_table, read_all
from cleanroom.upload_progress import ProgressPrinter
from cleanroom.validation import validate
from protocol.errors import InvalidInput

BAD = ("email,campaign,age_band,region\n"
       " a@x.org,spring_sale,18-24,north\n"
       "nobody,Spring_Sale,18-24,north\n"
       "b@x.org,bogus,18-24,north\n"
       "\n"
       "b@x.org,bogus,18-24,north\n"
       "c@x.org,spring_sale,18-24,north\n"
       "c@x.org,spring_sale,18-24,north\n")


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_report_counts_every_problem_by_column(tmp_path, policy):
    report = validate(write(tmp_path, BAD), policy.dataset("impressions"))
    assert (report.rows_read, report.rows_valid, report.ok) == (6, 3, False)
    email, campaign = report.columns["email"], report.columns["campaign"]
    assert dict(email.refused) == {"an email must contain exactly one '@'": 1}
    assert campaign.undeclared.most_common() == [("bogus", 2), ("Spring_Sale", 1)]
    # Lines count the blank line, as the file's own editor would.
    assert [report.locations[p.row] for p in campaign.examples] == ["line 3", "line 4", "line 6"]
    assert report.distinct_ids == 2 and report.duplicate_rows == 1  # the two c@x.org rows
    # A row counts once, at its first refused cell in schema order (the id before campaign).
    assert report.skipped == {"id": 1, "campaign": 2}
    assert report.first_problem == ("data.csv: line 3, column 'email': an email must contain "
                                    "exactly one '@' (value 'nobody')")
    text = "\n".join(report.lines())
    assert "'bogus' x 2" in text and "e.g. line 4: 'bogus'" in text


def test_reject_file_lists_each_refused_cell(tmp_path, policy):
    rejects = tmp_path / "rejects.csv"
    validate(write(tmp_path, BAD), policy.dataset("impressions"), reject_file=rejects)
    rows = list(csv.reader(io.StringIO(rejects.read_text(encoding="utf-8"))))
    assert rows[0] == ["location", "column", "reason", "value"]
    assert rows[1:] == [
        ["line 3", "email", "an email must contain exactly one '@'", "nobody"],
        ["line 3", "campaign", "value is not one of the policy's declared values", "Spring_Sale"],
        ["line 4", "campaign", "value is not one of the policy's declared values", "bogus"],
        ["line 6", "campaign", "value is not one of the policy's declared values", "bogus"],
    ]


def test_metrics_outside_the_bounds_are_reported_as_clamped(tmp_path, policy):
    text = "email,value\na@x.org,-1\nb@x.org,600\nc@x.org,20\n"
    report = validate(write(tmp_path, text), policy.dataset("conversions"))
    value = report.columns["value"]
    assert report.ok and (value.below_min, value.above_max) == (1, 1)


def test_skip_invalid_leaves_out_exactly_the_refused_rows(tmp_path, policy):
    dataset = policy.dataset("impressions")
    with open_table(write(tmp_path, BAD), dataset, skip_invalid=True) as table:
        blocks = list(table.blocks(2))
        assert table.skipped == {"id": 1, "campaign": 2} and table.rows_uploaded == 3
    ids = np.concatenate([b["id"] for b in blocks])
    kept = (b"a@x.org", b"c@x.org", b"c@x.org")
    assert [bytes(r) for r in ids] == [hashlib.sha256(e).digest() for e in kept]
    with pytest.raises(RefusedCell, match="line 3, column 'email'"):
        read_all(write(tmp_path, BAD), dataset)


def test_compressed_csv_reads_like_plain(tmp_path, policy):
    text = "email,value\na@x.org,1.5\n\"b@x.org\",2\n"
    plain = read_all(write(tmp_path, text), policy.dataset("conversions"))
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    zst = tmp_path / "data.csv.zst"
    import pyarrow as pa

    with pa.CompressedOutputStream(str(zst), "zstd") as out:
        out.write(text.encode())
    for path in (gz, zst):
        columns = read_all(path, policy.dataset("conversions"))
        assert all((columns[k] == plain[k]).all() for k in plain)
        with open_table(path, policy.dataset("conversions")) as table:
            assert table.rows_estimate() == 2
            list(table.blocks(10))
            assert table.bytes_read == table.total_bytes == path.stat().st_size


def test_header_problems_suggest_the_fix(tmp_path, policy):
    with pytest.raises(InvalidInput, match="rename 'Email' to 'email'"):
        validate(write(tmp_path, "Email,value\na@x.org,1\n"), policy.dataset("conversions"))
    with pytest.raises(InvalidInput, match=r"separated by ';'.*--delimiter ';'"):
        validate(write(tmp_path, "email;value\na@x.org;1\n"), policy.dataset("conversions"))
    with open_table(write(tmp_path, "email;value\na@x.org;1\n"), policy.dataset("conversions"),
                    delimiter=";") as table:
        assert [b["value"].tolist() for b in table.blocks(10)] == [[100]]


def test_messages_name_value_and_suggest(tmp_path, policy):
    with pytest.raises(RefusedCell) as info:
        read_all(write(tmp_path, "email,value\na@x.org,\"1,50\"\n"), policy.dataset("conversions"))
    assert info.value.message == ("data.csv: line 2, column 'value': not a decimal number "
                                  "(value '1,50'); write decimals with '.', not ','")


def test_the_whole_file_is_read_even_past_a_bad_row(tmp_path, policy):
    rows = "".join(f"p{i}@x.org,{i}\n" for i in range(5000)) + "bad,1\n" + "q@x.org,1\n" * 10
    report = validate(write(tmp_path, "email,value\n" + rows), policy.dataset("conversions"),
                      block_rows=1000)
    assert report.rows_read == 5011 and report.rows_valid == 5010
    assert report.first_problem.startswith("data.csv: line 5002, column 'email'")


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_shows_rates_and_eta_only_when_asked():
    from types import SimpleNamespace

    quiet = io.StringIO()
    ProgressPrinter(stream=quiet)(SimpleNamespace(rows_done=1, bytes_done=1, bytes_total=2))
    assert quiet.getvalue() == ""  # not a terminal and no --progress: nothing
    out, clock = io.StringIO(), _Clock()
    printer = ProgressPrinter(enabled=True, stream=out, clock=clock)
    clock.now = 10.0
    printer(SimpleNamespace(rows_done=1_000_000, bytes_done=50_000_000, bytes_total=200_000_000))
    printer.done()
    line = out.getvalue().splitlines()[0]
    assert line == ("read 47.7 MiB of 190.7 MiB (25%), 1,000,000 rows, 100,000 rows/s, 5.0 MB/s, "
                    "elapsed 0:10, ETA 0:30")


def test_validate_command_prints_the_report_and_fails_on_a_refused_cell(tmp_path, policy_bytes, capsys):
    from cleanroom.cli import main

    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    rejects = tmp_path / "rejects.csv"
    argv = ["validate", "--policy", str(policy_file), "--dataset", "impressions",
            str(write(tmp_path, BAD)), "--reject-file", str(rejects)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # the report goes to stderr; no progress off a terminal
    assert "6 rows read, 3 valid" in captured.err and "'bogus' x 2" in captured.err
    assert rejects.exists()
    good = write(tmp_path, "email,campaign,age_band,region\na@x.org,loyalty,18-24,north\n", "good.csv")
    assert main(["validate", "--policy", str(policy_file), "--dataset", "impressions", str(good)]) == 0
