"""A LEFT JOIN result's nil row (the unexposed) in every output: table, CSV, JSON, report, intervals.

The enclave releases the kept dataset's persons with no row of the other dataset last, with every
group key nil (tests/enclave/test_plan_left_join.py). Tables and the report show ``(none)``, CSV
an empty field, JSON null; its noised cells get their ± like any other row's.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pytest

from cleanroom.cli import main
from cleanroom.noise_intervals import laplace_half_width
from cleanroom.result_cells import NIL_LABEL, result_view
from tests.cleanroom.saved_results import write_saved_plan

SQL = ("SELECT i.campaign, COUNT(DISTINCT person) AS converters, COUNT(c.*) AS conversions, "
       "SUM(c.value) AS revenue FROM conversions c LEFT JOIN impressions i GROUP BY i.campaign")
PLAN = {"v": 1, "datasets": ["conversions", "impressions"], "join": "left", "where": [],
        "group_by": ["impressions.campaign"],
        "select": [{"fn": "count_distinct", "arg": "person", "as": "converters"},
                   {"fn": "count", "arg": "conversions", "as": "conversions"},
                   {"fn": "sum", "arg": "conversions.value", "as": "revenue"}]}
COLUMNS = ["campaign", "converters", "conversions", "revenue"]
ROWS = [["spring_sale", 1204, 1690, "98311.20"], ["loyalty", 800, 1010, "50000.00"],
        [None, 9877, 13020, "761002.35"]]
STATISTICS = {"converters": ["persons"], "conversions": ["count:conversions"],
              "revenue": ["sum:conversions.value"]}
SCALES = {"persons": "12", "count:conversions": "96", "sum:conversions.value": "4800000"}
PRIVACY = {"mechanism": "discrete_laplace", "accounting": "pure", "epsilon_charged": "3/5",
           "noise_scale": SCALES, "column_statistics": STATISTICS, "min_persons": 50,
           "cohorts_total": 9, "suppressed_cohorts": 6, "fixed_point_scale": {"conversions.value": 2},
           "clamps": {"conversions.value": ["0", "500"]},
           "budget_remaining": {"impressions": "27/5", "conversions": "27/5"}, "delta_total": "0"}
H_PERSONS, H_COUNT = laplace_half_width(SCALES["persons"]), laplace_half_width(SCALES["count:conversions"])


@pytest.fixture
def saved(tmp_path, policy, policy_bytes, enclave, make_bundle, now):
    return write_saved_plan(tmp_path, policy, policy_bytes, enclave, make_bundle(enclave, policy_bytes), now,
                            sql=SQL, plan=PLAN, columns=COLUMNS, rows=ROWS, privacy=PRIVACY)


def _check(saved, now, *extra) -> int:
    path, policy_file = saved
    return main(["check", str(path), "--policy", str(policy_file), "--insecure-allow-simulation",
                 "--now", str(now), *extra])


def test_the_table_shows_the_nil_row_as_none_with_its_intervals(saved, now, capsys) -> None:
    assert _check(saved, now) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("campaign"))
    table = lines[header + 2: header + 5]
    assert [line.split()[0] for line in table] == ["spring_sale", "loyalty", NIL_LABEL]  # last, as released
    assert table[2].split()[1:5] == ["9,877", str(H_PERSONS), "13,020", str(H_COUNT)]
    assert "None" not in out
    assert f"{NIL_LABEL}: the persons of conversions with no impressions row" in out


def test_csv_leaves_the_nil_key_empty_and_json_null(saved, now, capsys) -> None:
    assert _check(saved, now, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["campaign"] for r in rows] == ["spring_sale", "loyalty", ""]
    assert rows[2]["converters"] == "9877" and rows[2]["converters_ci95"] == str(H_PERSONS)
    assert _check(saved, now, "--json") == 0
    doc = json.loads(capsys.readouterr().out)["result"]
    assert doc["rows"][2][0] is None and doc["rows"][2][1] == 9877
    assert doc["ci95_half_width"][2][:3] == [None, H_PERSONS, H_COUNT]
    assert any(note.startswith(NIL_LABEL) for note in doc["notes"])


def test_the_report_labels_the_nil_row_in_cells_and_charts(saved, tmp_path, now) -> None:
    path, policy_file = saved
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out), "--policy", str(policy_file),
                 "--insecure-allow-simulation", "--now", str(now)]) == 0
    text = out.read_text()
    assert f'<td class="text">{NIL_LABEL}</td>' in text
    assert re.search(rf'<text class="label" [^>]*>{re.escape(NIL_LABEL)}</text>', text)  # a bar's label
    assert f"9,877 ± {H_PERSONS}" in text and ">None<" not in text and "None ·" not in text


def test_an_average_of_the_other_dataset_gets_no_persons_bound_in_a_left_join() -> None:
    """AVG(i.m) without COUNT(i.*): the nil row has no impressions rows, so persons bound nothing."""
    plan = {**PLAN, "select": [{"fn": "avg", "arg": "impressions.cost", "as": "cpm"}]}
    body = {"kind": "plan", "params": {"plan": plan}, "columns": ["campaign", "cpm", "persons"],
            "rows": [["spring_sale", "2.50", 1204], [None, "0.00", 9877]],
            "privacy": {**PRIVACY, "column_statistics": {"cpm": ["sum:impressions.cost", "count:impressions"],
                                                         "persons": ["persons"]},
                        "noise_scale": {"persons": "12", "count:impressions": "96",
                                        "sum:impressions.cost": "4800"},
                        "fixed_point_scale": {"impressions.cost": 2}}}
    view = result_view(body)
    assert [w[1] for w in view.intervals] == [None, None] and view.intervals[1][2] == H_PERSONS
    assert view.rows[1][1] == Decimal("0.00")
    inner = result_view({**body, "params": {"plan": {**plan, "join": None}}})  # an inner join: bounded
    assert all(isinstance(w[1], Decimal) for w in inner.intervals)


def test_an_ungrouped_left_join_counts_every_kept_person() -> None:
    from cleanroom.report_charts import cohort_label

    body = {"kind": "plan", "params": {"plan": {**PLAN, "group_by": []}}, "columns": COLUMNS[1:],
            "rows": [ROWS[2][1:]], "privacy": PRIVACY}
    view = result_view(body)
    assert cohort_label(view, view.rows[0]) == "all persons of conversions" and view.notes == []
    inner = result_view({**body, "params": {"plan": {**PLAN, "group_by": [], "join": None}}})
    assert cohort_label(inner, inner.rows[0]) == "all matched people"
