"""``cleanroom policy lint``: validation errors that name the field, and a data-free preview."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cleanroom.cli import main
from cleanroom.commands.policy import LINT_INVALID, LINT_OK, LINT_UNREADABLE, register
from cleanroom.policy_lint import lint_policy, render_text

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "advertiser-publisher.toml"
ZCDP = [('mode = "pure" ', 'mode = "zcdp" '), ('epsilon_per_query_max = "1.0"', 'rho_per_query_max = "0.05"'),
        ('epsilon = "0.2"', 'rho = "0.01"'), ('epsilon = "0.6"', 'rho = "0.03"'),
        ('epsilon = "0.4"', 'rho = "0.02"'), ('epsilon = "0.1"', 'rho = "0.005"'),
        ('impressions = "6.0"', 'impressions = "0.5"'), ('conversions = "6.0"', 'conversions = "0.5"')]


def _entry(report, analysis_id: str) -> dict:
    return next(a for a in report.analyses if a["id"] == analysis_id)


def test_example_policy_preview() -> None:
    report = lint_policy(EXAMPLE.read_bytes())
    assert report.valid and not report.errors
    assert report.summary["mode"] == "pure" and report.summary["budget_unit"] == "epsilon"
    overlap = _entry(report, "overlap")
    assert overlap["queries_until_exhausted"] == 30  # 6 / 0.2
    assert overlap["charge_per_query"] == {"epsilon": "1/5", "delta": "0", "delta_total": "0",
                                           "datasets": ["impressions", "conversions"]}
    assert overlap["statistics"][0]["sensitivity"] == 4 and overlap["statistics"][0]["noise_scale"] == "20"
    segment = _entry(report, "conversions_by_segment")
    assert segment["queries_until_exhausted"] == 10
    assert [s["noise_scale"] for s in segment["statistics"]] == ["20", "160", "8000000"]
    assert segment["statistics"][2]["noise_std"] == pytest.approx(113137.085, rel=1e-6)  # √2·t cents
    reach = _entry(report, "reach")
    assert reach["threshold"] == 430 and reach["charge_per_query"]["delta"] == "1/1000000000"
    assert _entry(report, "campaign_attribution")["statistics"][0]["sensitivity"] == 5
    assert _entry(report, "activate_converters")["queries_until_exhausted"] == 60
    assert any("not protected by differential privacy" in w for w in report.warnings)
    text = render_text(report)
    assert "threshold tau 430" in text and "30 queries until exhausted" in text


def test_zcdp_preview_reports_epsilon_at_delta() -> None:
    text = EXAMPLE.read_text()
    for old, new in ZCDP:
        text = text.replace(old, new)
    report = lint_policy(text.encode())
    assert report.valid and report.summary["budget_unit"] == "rho"
    # 0.5 + 2·√(0.5·ln 1e9) = 6.93790..., rounded up
    # δ_total = δ of the conversion + budget · max(δ_selection / ρ per query) = 1e-9 + 0.5·(1e-9/0.02)
    assert report.summary["budgets"]["impressions"] == {"rho": "1/2", "epsilon_at_delta": "6.9379",
                                                        "delta_total": "13/500000000"}
    segment = _entry(report, "conversions_by_segment")
    assert segment["charge_per_query"]["epsilon_at_delta"] == "1.60696"
    assert segment["statistics"][0]["sensitivity_l2_squared"] == 4
    assert segment["statistics"][0]["noise_sigma2"] == "200"
    assert _entry(report, "reach")["threshold"] == 90
    # A private-cohort query is (ε_BS(ρ, δ), δ + δ_selection): both δs, summed.
    assert _entry(report, "reach")["charge_per_query"]["delta_total"] == "1/500000000"
    assert segment["charge_per_query"]["delta_total"] == "1/1000000000"


def test_budget_delta_total_counts_every_private_cohort_selection() -> None:
    # Issue 11.3: the budget-level figure used to leave out the accumulated δ_selection.
    report = lint_policy(EXAMPLE.read_bytes())
    # pure ε: no conversion δ; reach (ε 0.4, δ 1e-9 per query) can run 15 times on a budget of 6
    assert report.summary["budgets"]["conversions"]["delta_total"] == "3/200000000"
    assert "total delta at most 1.5e-08" in render_text(report)


def test_lint_states_the_privacy_unit_and_the_activation_oracle() -> None:
    report = lint_policy(EXAMPLE.read_bytes())
    assert "one normalised identifier, not one person" in report.summary["privacy_unit"]
    oracle = [w for w in report.warnings if "activate_converters" in w]
    assert oracle and "membership oracle" in oracle[0] and "any identifiers" in oracle[0]
    assert "privacy unit: one normalised identifier" in render_text(report)


def test_invalid_policy_names_the_field() -> None:
    bad = EXAMPLE.read_text().replace("max_frequency = 5", "max_frequency = 50")
    report = lint_policy(bad.encode())
    assert not report.valid
    assert report.errors[0]["field"] == "analyses[2].max_frequency"
    assert "analyses[2].max_frequency" in render_text(report)


def test_cli_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "lint", str(EXAMPLE), "--json"]) == LINT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] and len(out["analyses"]) == 5
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('mode = "pure"', 'mode = "yolo"'))
    assert main(["policy", "lint", str(bad)]) == LINT_INVALID
    assert "privacy.mode" in capsys.readouterr().err
    assert main(["policy", "lint", str(tmp_path / "missing.toml")]) == LINT_UNREADABLE


def test_register_adds_the_policy_group_with_lint() -> None:
    parser = argparse.ArgumentParser(prog="cleanroom")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["policy", "lint", str(EXAMPLE)])
    assert args.func(args) == LINT_OK
