"""Saved SQL (kind "plan") results through ``cleanroom check`` (table, CSV, JSON) and ``report``.

The layout comes from the signed ``params.plan`` (its group keys are labels, whatever their
names) and ``privacy.column_statistics`` (which noisy vector each column is), so every noised
cell gets its ± and no label is mistaken for a count, e.g. a time bucket named ``users``.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from cleanroom.cli import main
from cleanroom.noise_intervals import laplace_half_width, mean_half_width
from cleanroom.result_cells import result_view
from tests.cleanroom.saved_results import write_saved_plan

SQL = ("SELECT i.campaign, DATE_TRUNC('week', c.ts) AS users, COUNT(DISTINCT person) AS converters, "
       "COUNT(c.*) AS conversions, SUM(c.value) AS revenue, AVG(c.value) AS aov "
       "FROM impressions i JOIN conversions c ON c.ts BETWEEN i.ts AND i.ts + INTERVAL '7' DAY "
       "GROUP BY i.campaign, users")
PLAN = {"v": 1, "datasets": ["impressions", "conversions"], "where": [],
        "group_by": ["impressions.campaign", {"column": "conversions.ts", "trunc": "week", "as": "users"}],
        "window": {"from": "impressions.ts", "to": "conversions.ts", "max_days": 7, "model": "last_touch"},
        "select": [{"fn": "count_distinct", "arg": "person", "as": "converters"},
                   {"fn": "count", "arg": "conversions", "as": "conversions"},
                   {"fn": "sum", "arg": "conversions.value", "as": "revenue"},
                   {"fn": "avg", "arg": "conversions.value", "as": "aov"}]}
COLUMNS = ["campaign", "users", "converters", "conversions", "revenue", "aov"]
ROWS = [["spring_sale", "2026-10-05", 400, 520, "26000.00", "50.00"],
        ["loyalty", "2026-10-12", 1200, 1500, "30000.50", "20.00"]]
STATISTICS = {"converters": ["persons"], "conversions": ["count:conversions"],
              "revenue": ["sum:conversions.value"], "aov": ["sum:conversions.value", "count:conversions"]}
SCALES = {"persons": "10", "count:conversions": "80", "sum:conversions.value": "4000000"}


def _privacy(statistics=STATISTICS) -> dict:
    return {"mechanism": "discrete_laplace", "accounting": "pure", "epsilon_charged": "2/5",
            "noise_scale": SCALES, "column_statistics": statistics, "min_persons": 50,
            "cohorts_total": 144, "suppressed_cohorts": 142, "fixed_point_scale": {"conversions.value": 2},
            "clamps": {"conversions.value": ["0", "500"]},
            "budget_remaining": {"impressions": "28/5", "conversions": "28/5"}, "delta_total": "0"}


@pytest.fixture
def saved(tmp_path, policy, policy_bytes, enclave, make_bundle, now):
    return write_saved_plan(tmp_path, policy, policy_bytes, enclave, make_bundle(enclave, policy_bytes), now,
                            sql=SQL, plan=PLAN, columns=COLUMNS, rows=ROWS, privacy=_privacy())


def _check(saved, now, *extra) -> int:
    path, policy_file = saved
    return main(["check", str(path), "--policy", str(policy_file), "--insecure-allow-simulation",
                 "--now", str(now), *extra])


H_PERSONS, H_COUNT, H_SUM_CENTS = (laplace_half_width(SCALES[s]) for s in SCALES)


def _mean_width(total: str, count: int) -> Decimal:
    mean = (Decimal(total) / count).quantize(Decimal("0.01"))
    width = mean_half_width(mean, count, Decimal(H_SUM_CENTS) / 100, H_COUNT)
    return width.quantize(Decimal("0.01"), rounding="ROUND_CEILING")


def test_table_labels_counts_amounts_and_means_each_with_their_interval(saved, now, capsys) -> None:
    assert _check(saved, now) == 0
    out = capsys.readouterr().out
    assert "SQL query (plan)" in out and "DATE_TRUNC('week', c.ts) AS users" in out
    line = next(line for line in out.splitlines() if line.startswith("spring_sale"))
    cells = line.split()
    assert cells[:2] == ["spring_sale", "2026-10-05"]  # the bucket called users is a label
    assert cells[2:4] == ["400", str(H_PERSONS)] and cells[4:6] == ["520", str(H_COUNT)]
    assert cells[6:8] == ["26,000.00", f"{Decimal(H_SUM_CENTS) / 100:,.2f}"]
    assert cells[8:10] == ["50.00", str(_mean_width("26000.00", 520))]
    assert "minimum cohort size 50" in out and "142 of 144" in out


def test_csv_and_json_carry_the_same_intervals(saved, now, capsys) -> None:
    assert _check(saved, now, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert "users_ci95" not in rows[0] and rows[1]["users"] == "2026-10-12"
    assert rows[1]["converters_ci95"] == str(H_PERSONS) and rows[1]["conversions_ci95"] == str(H_COUNT)
    assert rows[1]["revenue"] == "30000.50" and rows[1]["aov"] == "20.00"
    assert rows[1]["aov_ci95"] == str(_mean_width("30000.50", 1500))
    assert _check(saved, now, "--json") == 0
    doc = json.loads(capsys.readouterr().out)["result"]
    assert doc["params"]["plan"] == PLAN and doc["params"]["sql"] == SQL
    widths = doc["ci95_half_width"][0]
    assert widths[:4] == [None, None, H_PERSONS, H_COUNT]
    assert widths[4] == f"{Decimal(H_SUM_CENTS) / 100:.2f}"


def test_the_report_shows_the_sql_charts_and_every_cell(saved, tmp_path, now) -> None:
    path, policy_file = saved
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out), "--policy", str(policy_file),
                 "--insecure-allow-simulation", "--now", str(now)]) == 0
    text = out.read_text()
    assert "SQL query (plan)" in text and "INTERVAL &#x27;7&#x27; DAY" in text
    assert f"400 ± {H_PERSONS}" in text and f"1,500 ± {H_COUNT}" in text
    assert "spring_sale · 2026-10-05" in text  # a bar per cell, labelled by both keys
    assert text.count('<svg class="chart bars"') == 4 and "minimum cohort size 50" in text


def test_an_average_alone_gets_an_upper_bound_from_the_persons() -> None:
    """AVG without its COUNT selected: the ± is taken at the row's persons (≤ its count)."""
    plan = {**PLAN, "select": [PLAN["select"][3]]}
    body = {"kind": "plan", "params": {"plan": plan, "sql": "..."}, "columns": ["campaign", "users", "aov",
                                                                                "persons"],
            "rows": [["spring_sale", "2026-10-05", "50.00", 400]],
            "privacy": _privacy({"aov": ["sum:conversions.value", "count:conversions"],
                                 "persons": ["persons"]})}
    view = result_view(body)
    assert [c.kind for c in view.columns] == ["label", "label", "mean", "count"]
    assert view.rows[0][2] == Decimal("50.00")  # the signed value: nothing to recompute it from
    expected = mean_half_width(Decimal("50.00"), 400, Decimal(H_SUM_CENTS) / 100, H_COUNT)
    assert view.intervals[0][2] == expected.quantize(Decimal("0.01"), rounding="ROUND_CEILING")
    assert view.intervals[0][3] == H_PERSONS
    assert view.intervals[0][2] > _mean_width("20000.00", 400) / 2  # wider than at a larger count


def test_the_lift_columns_map_to_their_own_statistic() -> None:
    plan = {"v": 1, "datasets": ["impressions", "conversions"], "where": [], "group_by": ["impressions.arm"],
            "select": [{"fn": "count_distinct", "arg": "impressions.person", "as": "exposed"}]}
    body = {"kind": "plan", "params": {"plan": plan}, "columns": ["arm", "exposed", "persons"],
            "rows": [["test", 9000, 400]],
            "privacy": {**_privacy({"exposed": ["persons:impressions"], "persons": ["persons"]}),
                        "noise_scale": {"persons": "10", "persons:impressions": "40"}}}
    view = result_view(body)
    assert view.intervals[0] == [None, laplace_half_width("40"), laplace_half_width("10")]
