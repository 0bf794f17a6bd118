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


def test_group_parameters_match_their_declaration_and_are_shown() -> None:
    report = lint_policy(EVENTS.read_bytes())
    templates = report.summary["templates"]
    segments = templates["conversions_by_segment"]
    assert segments["sql_matches_plan"] is True and segments["params"] == {}
    assert segments["group_params"] == {"by": {"group_by": ["impressions.campaign", "impressions.age_band",
                                                            "impressions.region"], "max": 2}}
    text = render_text(report)
    assert ("parameters :by (GROUP BY up to 2 of impressions.campaign, impressions.age_band, "
            "impressions.region); its sql compiles to exactly its plan") in text
    assert "FROM conversions LEFT JOIN impressions: every person of conversions counts" in text
    assert templates["campaign_attribution"]["left_join"] == ["conversions", "impressions"]
    assert segments["left_join"] is None and segments["threshold"] is None


def test_a_group_parameter_the_sql_does_not_have_is_flagged() -> None:
    # The SQL a reviewer reads groups by a fixed column; the plan lets the request choose.
    overlap = 'sql = """SELECT :by, COUNT(DISTINCT person) AS matched_users\nFROM impressions i JOIN ' \
              'conversions c\nGROUP BY :by"""'
    text = EVENTS.read_text()
    assert text.count(overlap) == 1
    report = lint_policy(text.replace(overlap, overlap.replace(":by", "i.campaign")).encode())
    assert report.valid
    assert report.summary["templates"]["overlap"]["sql_matches_plan"] is False
    assert any(w.startswith("templates.overlap: MISMATCH: its sql compiles to another plan")
               for w in report.warnings)


def test_private_cohort_keys_show_tau_over_the_choices() -> None:
    from protocol.policy import parse_policy
    from protocol.privacy.accounting import calibrate
    from protocol.privacy.threshold import release_threshold

    report = lint_policy(EVENTS.read_bytes())
    reach = report.summary["templates"]["reach"]
    assert reach["cohort_keys"] == "private"
    # reach: persons and a histogram share the charge; every choice has more values than L0,
    # so a person is in L0 cells of each: τ of the persons vector at that scale.
    policy = parse_policy(EVENTS.read_bytes())
    template = policy.template("reach")
    assert template is not None
    from protocol.query_plan import check_plan, parse_plan
    from protocol.templates import instantiate

    check = check_plan(policy, parse_plan(instantiate(template, {"by": ["impressions.age_band"]})),
                       "publisher", template=template)
    persons = calibrate(list(check.statistics), policy.privacy.mode, template.cost)[0]
    l0 = policy.privacy.max_cohorts_per_user
    assert persons.statistic.cells_per_unit == l0 and len(check.statistics) == 2
    tau = release_threshold(persons.mechanism, persons.scale, l0, policy.privacy.delta)
    assert reach["threshold"] == {"min": tau, "max": tau}
    text = render_text(report)
    assert f"cohort_keys = private: a row also needs its noisy persons to reach tau {tau}" in text
    assert "cohort_keys = private" not in render_text(report).split("  campaign_attribution:")[1]
