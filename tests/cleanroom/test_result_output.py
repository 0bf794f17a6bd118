"""A verified result for people and tools: ± per noised cell, number and time formats, notes,
CSV and JSON exports (``result_cells``, ``result_display``, ``result_export``, ``formatting``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from decimal import Decimal

import pytest

from cleanroom.formatting import amount_text, fraction_decimal, iso_utc, number_text
from cleanroom.noise_intervals import (
    gaussian_half_width,
    laplace_difference_half_width,
    laplace_half_width,
)
from cleanroom.result_cells import result_view
from cleanroom.result_display import render_table
from cleanroom.result_export import result_csv, result_json
from cleanroom.result_open import Result

QUERY_ID = hashlib.sha256(b"a request").digest()


def _result(kind, columns, rows, *, group_by=("impressions.campaign",), metric=None, privacy=None):
    params = {"group_by": list(group_by)}
    if metric is not None:
        params["metric"] = metric
    return Result({
        "collaboration_id": "room", "policy_hash": bytes(32), "query_id": QUERY_ID,
        "analysis": f"my_{kind}", "kind": kind, "requested_by": "advertiser",
        "recipients": ["advertiser", "publisher"], "params": params, "simulated": True,
        "created_at": 1_790_000_000, "columns": columns, "rows": rows,
        "privacy": {"mechanism": "discrete_laplace", "epsilon_charged": "3/5",
                    "budget_remaining": {"impressions": "27/5"}, "suppressed_cohorts": 0,
                    "cohorts_total": len(rows), "min_cohort_size": 50, **(privacy or {})},
        "audit_head": {"seq": 1, "hash": bytes(32)},
    }, b"")


def _aggregate(rows, scale=2, noise=True):
    privacy = {"fixed_point_scale": {"conversions.value": scale},
               "clamps": {"conversions.value": ["0", "500"]}}
    if noise:
        privacy["noise_scale"] = {"users": "20", "rows": "160", "sum": "8000000"}
    return _result("aggregate", ["campaign", "users", "rows", "value_sum", "value_mean_per_user"], rows,
                   metric="conversions.value", privacy=privacy)


def test_every_noised_cell_of_an_aggregate_gets_its_interval():
    view = result_view(_aggregate([["spring_sale", 2000, 4000, "1234567.89", "617.28"]]).body)
    users, rows, total, mean = view.intervals[0][1:]
    assert view.intervals[0][0] is None  # a label carries no noise
    assert users == laplace_half_width("20") and rows == laplace_half_width("160")
    # The sum's scale is in cents: 8,000,000 units of 0.01, rounded up to the cent.
    assert total == Decimal(laplace_half_width("8000000")) / 100
    expected = ((total / 2000) ** 2 + (Decimal("617.283945") * users / 2000) ** 2).sqrt()
    assert abs(mean - expected) <= Decimal("0.01")


def test_a_whole_number_metric_s_mean_is_not_rounded_to_an_integer():
    view = result_view(_aggregate([["spring_sale", 3, 3, "10", "3"]], scale=0).body)
    assert view.rows[0][4] == Decimal("3.33")  # 10 / 3, where the enclave's text says "3"


def test_table_shows_plus_minus_columns_and_consistent_numbers():
    text = render_table(_aggregate([["spring_sale", 2858, 2398, "1234567.89", "431.97"],
                                    ["summer_run", 1200, 2600, "98765.40", "82.30"]]))
    lines = text.splitlines()
    assert lines[0] == f"my_aggregate (aggregate), query {QUERY_ID.hex()}"
    assert lines[1] == "created 2026-09-21T14:13:20Z, requested by advertiser"
    assert lines[2].split() == ["campaign", "users", "±", "rows", "±", "value_sum", "±",
                                "value_mean_per_user", "±"]
    first = lines[4].split()
    assert first[:6] == ["spring_sale", "2,858", "60", "2,398", "479", "1,234,567.89"]
    assert first[6] == "239,658.58"  # sums get separators too
    assert "users > rows in 1 row" in text  # noise made users exceed rows once
    assert text.count("note:") == 1
    assert "± is the 95% interval" in text and "budget remaining impressions 5.4" in text


def test_no_note_when_the_cells_agree():
    text = render_table(_aggregate([["spring_sale", 100, 400, "1000.00", "10.00"]]))
    assert "note:" not in text


@pytest.mark.parametrize(("kind", "columns", "row", "expected"), [
    ("overlap", ["campaign", "matched_users"], ["loyalty", 500], "users"),
    ("reach_frequency", ["campaign", "reach", "frequency_1", "frequency_2_plus"],
     ["loyalty", 500, 300, 700], "frequency"),
])
def test_counts_of_each_kind_map_to_their_statistic(kind, columns, row, expected):
    privacy = {"noise_scale": {"users": "20", "reach": "10", "frequency": "40"}}
    result = _result(kind, columns, [row], privacy=privacy)
    view = result_view(result.body)
    widths = view.intervals[0]
    if kind == "overlap":
        assert widths == [None, laplace_half_width("20")]
    else:
        assert widths == [None, laplace_half_width("10"), laplace_half_width("40"),
                          laplace_half_width("40")]
        assert "a frequency bucket > reach in 1 row" in render_table(result)


def test_attribution_unexposed_cells_carry_the_noise_of_a_difference():
    columns = ["campaign", "exposed_converters", "exposed_conversions", "exposed_value_sum",
               "unexposed_converters", "unexposed_conversions", "unexposed_value_sum"]
    result = _result("attribution", columns, [["loyalty", 300, 280, "100.00", 700, 900, "400.00"]],
                     metric="conversions.value",
                     privacy={"noise_scale": {"converters": "10", "conversions": "80", "value": "400"},
                              "fixed_point_scale": {"conversions.value": 2}})
    widths = result_view(result.body).intervals[0]
    assert widths[1] == laplace_half_width("10") and widths[4] == laplace_difference_half_width("10")
    assert widths[6] == Decimal(laplace_difference_half_width("400")) / 100
    assert "exposed_converters > exposed_conversions in 1 row" in render_table(result)


def test_zcdp_results_use_the_gaussian_parameter():
    result = _result("overlap", ["campaign", "matched_users"], [["loyalty", 500]],
                     privacy={"mechanism": "discrete_gaussian", "noise_sigma2": {"users": "200"},
                              "rho_charged": "1/50", "epsilon_charged": "0.9", "epsilon_at_delta": "1/10**9"})
    assert result_view(result.body).intervals[0][1] == gaussian_half_width("200")


def test_csv_has_an_interval_column_after_each_noised_column():
    text = result_csv(_aggregate([["spring_sale", 2858, 2398, "1234567.89", "431.97"]]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["campaign", "users", "users_ci95", "rows", "rows_ci95", "value_sum",
                       "value_sum_ci95", "value_mean_per_user", "value_mean_per_user_ci95"]
    assert rows[1][:7] == ["spring_sale", "2858", "60", "2398", "479", "1234567.89", "239658.58"]


def test_json_keeps_the_signed_shape_and_adds_intervals_alongside():
    result = _aggregate([["spring_sale", 3, 3, "10", "3"]], scale=0)
    doc = json.loads(json.dumps(result_json(result)))
    assert doc["columns"] == result.columns and doc["rows"] == result.rows  # as signed
    assert doc["ci95_half_width"][0][:3] == [None, 60, 479]
    assert doc["mean_per_user"] == ["3.33"]
    assert doc["query_id"] == QUERY_ID.hex() and doc["created_at_utc"] == "2026-09-21T14:13:20Z"


def test_without_a_noise_parameter_nothing_is_invented():
    result = _aggregate([["spring_sale", 100, 400, "1000.00", "10.00"]], noise=False)
    assert not result_view(result.body).has_intervals
    assert result_csv(result).splitlines()[0] == "campaign,users,rows,value_sum,value_mean_per_user"


def test_activation_digests_stay_off_the_table_and_go_to_the_csv():
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    result = _result("cohort_activation", ["id_sha256"], [[d] for d in digests], group_by=(),
                     privacy={"noisy_cohort_size": 57, "noise_scale": {"cohort_size": "10"}})
    table = render_table(result)
    assert not any(d.hex() in table for d in digests)
    assert "3 identifiers released" in table and "--output" in table and "match-back" in table
    assert result_csv(result).splitlines() == ["id_sha256", *(d.hex() for d in digests)]


def test_number_and_time_formats():
    assert iso_utc(0) == "1970-01-01T00:00:00Z" and iso_utc("?") == "?"
    assert number_text(1234567) == "1,234,567" and number_text("1234567.50") == "1,234,567.50"
    assert number_text("spring_sale") == "spring_sale" and number_text("1e5") == "1e5"
    assert amount_text(Decimal("-1234.5"), 2) == "-1,234.50"
    assert fraction_decimal("29/5") == "5.8" and fraction_decimal("6") == "6"
    assert fraction_decimal("1/3") == "0.333333" and fraction_decimal("1/3", up=True) == "0.333334"
    assert fraction_decimal("1/1000000000") == "1e-9"  # a tiny δ is not shown as 0
    assert fraction_decimal("1/3000000000") == "3.33e-10"
    assert fraction_decimal("1/3000000000", up=True) == "3.34e-10"


def test_a_label_that_looks_like_a_number_is_shown_as_written():
    result = _result("overlap", ["year", "matched_users"], [["2024", 1500]], group_by=("d.year",),
                     privacy={"noise_scale": {"users": "20"}})
    assert render_table(result).splitlines()[4].split()[:2] == ["2024", "1,500"]


def test_clamps_as_fractions_and_odd_cells_do_not_break_the_table():
    result = _aggregate([["spring_sale", 100, 400, "-1.50", "x"]])
    result.body["privacy"]["clamps"] = {"conversions.value": ["1/2", "500"]}
    text = render_table(result)
    assert "a negative sum of non-negative values in 1 row" in text
    result.body["privacy"]["clamps"] = {"conversions.value": ["-5/2", "500"]}
    assert "negative sum" not in render_table(result)
    assert result_csv(result).splitlines()[1].startswith("spring_sale,100,60,400,479,-1.50,")
