"""``cleanroom policy lint`` on the datasets' analysis rules (``cleanroom/policy_rules_lint.py``)."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

from cleanroom.cli import main
from cleanroom.policy_lint import lint_policy, render_text
from protocol.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "policies" / "advertiser-publisher.toml").read_text()


def _rules_block(text: str, index: int) -> tuple[str, str, str]:
    """(before, the index-th [datasets.rules] table, after)."""
    starts = [m.start() for m in re.finditer(r"^\[datasets\.rules\]", text, re.M)]
    start = starts[index]
    end = text.index("\n[", start + 1)
    return text[:start], text[start:end], text[end:]


def _edit_rules(text: str, index: int, old: str, new: str) -> str:
    before, block, after = _rules_block(text, index)
    assert old in block, old
    return before + block.replace(old, new, 1) + after


def test_the_example_rules_are_listed_per_dataset() -> None:
    report = lint_policy(EXAMPLE.encode())
    rules = report.to_json()["rules"]
    assert set(rules) == {"impressions", "conversions"}
    impressions, conversions = rules["impressions"], rules["conversions"]
    assert impressions["owner"] == "publisher" and conversions["owner"] == "advertiser"
    assert impressions["group_by"] == ["campaign", "age_band", "region"]
    assert conversions["metrics"] == {"value": ["sum", "avg"]} and conversions["count_rows"] is True
    assert impressions["join_with"] == ["conversions"]
    cost = impressions["charge_per_query"]["epsilon"]
    budget = parse_policy(EXAMPLE.encode()).privacy.budget["impressions"]
    assert impressions["queries_until_exhausted"] == int(budget // Fraction(cost))
    text = render_text(report)
    assert "free-form query rules" in text and "metrics value (sum/avg)" in text
    assert not [w for w in report.warnings if "rules" in w]


def test_risky_rule_settings_are_warned_about() -> None:
    text = _edit_rules(EXAMPLE, 0, "min_persons = 50", "min_persons = 10")
    text = re.sub(r'\njoin_with = \["impressions"\][^\n]*', "", text)
    report = lint_policy(text.encode())
    assert report.valid
    low = [w for w in report.warnings if "min_persons" in w]
    assert low and "below privacy.min_cohort_size 50" in low[0] and "impressions" in low[0]
    assert any(w.startswith("datasets.conversions.rules.join_with: empty") for w in report.warnings)
    assert report.to_json()["rules"]["impressions"]["effective_min_persons"] == 50


def test_a_joined_dataset_without_rules_makes_free_form_queries_impossible(capsys, tmp_path) -> None:
    before, _block, after = _rules_block(EXAMPLE, 1)
    policy = tmp_path / "policy.toml"
    policy.write_text(before + after.lstrip("\n"))
    assert main(["policy", "lint", str(policy), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rules"]["conversions"] is None
    assert any("datasets.conversions: has no rules" in w for w in report["warnings"])


def test_a_requester_the_combined_recipients_exclude() -> None:
    text = _edit_rules(EXAMPLE, 1, 'recipients = ["advertiser", "publisher"]', 'recipients = ["advertiser"]')
    text = _edit_rules(text, 0, 'recipients = ["advertiser", "publisher"]', 'recipients = ["publisher"]')
    report = lint_policy(text.encode())
    warned = [w for w in report.warnings if "combined recipients exclude it" in w]
    assert len(warned) == 2 and "'advertiser'" in warned[0] and "'publisher'" in warned[1]


def test_private_cohort_keys_show_the_lowest_threshold() -> None:
    from protocol.privacy.accounting import Statistic, calibrate
    from protocol.privacy.threshold import release_threshold

    text = _edit_rules(EXAMPLE, 1, "count_rows = true", 'count_rows = true\ncohort_keys = "private"')
    report = lint_policy(text.encode())
    assert report.valid
    rules = report.to_json()["rules"]
    assert rules["conversions"]["cohort_keys"] == "private"
    assert rules["impressions"]["cohort_keys"] == "public"
    assert rules["impressions"]["lowest_threshold"] is None
    # The cheapest query: COUNT(DISTINCT person) alone by one impressions column, whose every
    # column has more values than L0, so a person is in L0 cells of one vector carrying the charge.
    policy = parse_policy(text.encode())
    privacy = policy.privacy
    l0, cost = privacy.max_cohorts_per_user, max(d.rules.cost for d in policy.datasets if d.rules)
    persons = calibrate([Statistic("persons", 8, l0, 1)], privacy.mode, cost)[0]
    tau = release_threshold(persons.mechanism, persons.scale, l0, privacy.delta)
    assert rules["conversions"]["lowest_threshold"] == tau > privacy.min_cohort_size
    assert f"cohort_keys = private: a row also needs its noisy persons to reach tau (at least {tau}" in \
        render_text(report)
    assert "cohort_keys" not in render_text(lint_policy(EXAMPLE.encode())).split("free-form query rules")[1]
