"""Event times on the party's side: ISO 8601, Unix seconds and Arrow times, to Unix seconds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleanroom.tables import open_table, read_all
from cleanroom.time_values import unix_seconds
from protocol.errors import InvalidInput
from protocol.policy import parse_policy
from tests.conftest import EXAMPLE_POLICY

NOON = int(dt.datetime(2026, 10, 5, 12, tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize("cells", [
    ["2026-10-05T12:00:00Z"] * 3,                          # one zoned block: Arrow's cast
    ["2026-10-05 12:00:00"] * 3,                           # naive: read as UTC
    ["2026-10-05T14:00:00+02:00", "2026-10-05T12:00:00.75Z", str(NOON)],  # mixed: one by one
])
def test_iso_and_epoch_text(cells: list[str]) -> None:
    seconds, bad = unix_seconds(pa.array(cells))
    assert bad == [] and seconds.tolist() == [NOON] * 3


def test_dates_integers_and_arrow_timestamps() -> None:
    assert unix_seconds(pa.array(["2026-10-05"]))[0].tolist() == [NOON - 12 * 3600]
    assert unix_seconds(pa.array([NOON, NOON + 1]))[0].tolist() == [NOON, NOON + 1]
    stamp = pa.array([dt.datetime(2026, 10, 5, 12)], pa.timestamp("ms", tz="UTC"))
    assert unix_seconds(stamp)[0].tolist() == [NOON]
    assert unix_seconds(pa.array([dt.date(2026, 10, 5)]))[0].tolist() == [NOON - 12 * 3600]


def test_refusals_name_the_row_and_never_guess() -> None:
    _, bad = unix_seconds(pa.array(["2026-10-05", "next tuesday", None, str(NOON * 1000)]))
    assert [row for row, _ in bad] == [1, 2, 3]
    assert "milliseconds" in bad[2][1] and "missing" in bad[1][1]


def _policy() -> object:
    text = EXAMPLE_POLICY.read_text().replace(
        'max = "500"                    # each row is clamped to [0, 500] before summing\n',
        'max = "500"\n\n[[datasets.timestamps]]\nname = "ts"\nmin = "2026-09-01"\n'
        'max = "2026-12-31"\nresolution = "hour"\n')
    return parse_policy(text.encode())


def test_a_csv_and_a_parquet_file_carry_timestamps_floored_to_the_resolution(tmp_path: Path) -> None:
    dataset = _policy().dataset("conversions")  # type: ignore[attr-defined]
    assert dataset.schema()[-1] == ("ts", "timestamp")
    csv = tmp_path / "c.csv"
    csv.write_text("email,value,ts\na@x.com,1.50,2026-10-05T12:34:56Z\nb@x.com,2,2026-10-05T13:00:00+01:00\n")
    columns = read_all(csv, dataset)
    assert columns["ts"].tolist() == [NOON, NOON]  # 12:34:56 floored to the hour; 13:00+01 is 12:00Z
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.table({"email": ["a@x.com"], "value": [1.5],
                             "ts": pa.array([dt.datetime(2026, 10, 5, 12, 59)], pa.timestamp("s"))}), parquet)
    assert read_all(parquet, dataset)["ts"].tolist() == [NOON]


def test_a_bad_time_stops_the_upload_naming_column_line_and_value(tmp_path: Path) -> None:
    dataset = _policy().dataset("conversions")  # type: ignore[attr-defined]
    csv = tmp_path / "c.csv"
    csv.write_text("email,value,ts\na@x.com,1.50,2026-10-05\nb@x.com,2,05/10/2026\n")
    with pytest.raises(InvalidInput) as refused, open_table(csv, dataset) as table:
        list(table.blocks(1000))
    message = refused.value.message
    assert "ts" in message and "05/10/2026" in message and "line 3" in message
