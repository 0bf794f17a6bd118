"""The lint compiles each template's SQL and says when it is not exactly the template's plan."""

from __future__ import annotations

from pathlib import Path

from cleanroom.policy_lint import lint_policy, render_text

EVENTS = Path(__file__).resolve().parents[2] / "policies" / "advertiser-publisher-events.toml"


def test_the_example_template_compiles_to_its_plan() -> None:
    report = lint_policy(EVENTS.read_bytes())
    section = report.summary["templates"]["weekly_revenue"]
    assert section["sql_matches_plan"] is True and section["params"] == {"campaigns": "impressions.campaign"}
    assert not any("MISMATCH" in w for w in report.warnings)
    assert "weekly_revenue: epsilon 0.3 per query" in render_text(report)


def test_a_template_whose_sql_says_something_else_is_flagged() -> None:
    # The plan groups by week; the SQL a reviewer reads says day.
    text = EVENTS.read_text().replace("SELECT DATE_TRUNC('week', c.ts) AS week",
                                      "SELECT DATE_TRUNC('day', c.ts) AS week")
    report = lint_policy(text.encode())
    assert report.valid  # the enclave would accept it: only the lint can see the discrepancy
    assert report.summary["templates"]["weekly_revenue"]["sql_matches_plan"] is False
    assert any(w.startswith("templates.weekly_revenue: MISMATCH: its sql compiles to another plan")
               for w in report.warnings)


def test_a_template_whose_sql_does_not_compile_is_flagged() -> None:
    text = EVENTS.read_text().replace("GROUP BY week\"\"\"", "GROUP BY week HAVING 1\"\"\"")
    report = lint_policy(text.encode())
    assert any("MISMATCH: its sql does not compile" in w for w in report.warnings)
