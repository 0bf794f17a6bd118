"""Mistakes in a query, a dataset name or an input file are caught before the attestation round
trip, with what would have been valid and the closest match."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleanroom.cli import main
from cleanroom.preflight import check_input_file, check_own_dataset, check_query
from protocol.errors import InvalidInput, PolicyViolation

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: reaching the network fails differently


def test_a_misspelt_analysis_names_the_closest_and_lists_the_valid_ones(policy):
    with pytest.raises(PolicyViolation) as caught:
        check_query(policy, "advertiser", "overlpa", {"group_by": []})
    message = caught.value.message
    assert "no analysis 'overlpa'" in message and "did you mean 'overlap'?" in message
    assert "overlap, conversions_by_segment, reach, campaign_attribution, activate_converters" in message


@pytest.mark.parametrize(("party", "analysis", "params", "expected"), [
    ("publisher", "campaign_attribution", {"group_by": ["impressions.campaign"],
                                           "metric": "conversions.value"},
     "may not run analysis 'campaign_attribution'; its requesters are: advertiser"),
    ("advertiser", "overlap", {"group_by": ["impressions.campaing"]},
     "cannot group by 'impressions.campaing'; did you mean 'impressions.campaign'?"),
    ("advertiser", "conversions_by_segment", {"group_by": ["impressions.region"]},
     "needs --metric, one of: conversions.value"),
    ("advertiser", "conversions_by_segment", {"group_by": [], "metric": "conversions.value"},
     "needs at least one --group-by"),
    ("advertiser", "conversions_by_segment",
     {"group_by": ["impressions.campaign", "impressions.region", "impressions.age_band"],
      "metric": "conversions.value"}, "at most 2 column(s); 3 were given"),
    ("advertiser", "overlap", {"group_by": [], "metric": "conversions.value"}, "takes no --metric"),
    ("advertiser", "activate_converters", {"group_by": [], "cohort": {"impressions.campaign": "Spring_Sale"}},
     "'Spring_Sale' is not a declared value of impressions.campaign; did you mean 'spring_sale'?"),
    ("advertiser", "overlap", {"group_by": [], "cohort": {"impressions.campaign": "spring_sale"}},
     "only cohort_activation analyses take --cohort"),
])
def test_query_parameters_are_checked_against_the_policy(policy, party, analysis, params, expected):
    with pytest.raises(PolicyViolation) as caught:
        check_query(policy, party, analysis, params)
    assert expected in caught.value.message


def test_valid_queries_pass(policy):
    check_query(policy, "advertiser", "overlap", {"group_by": ["impressions.campaign"]})
    check_query(policy, "advertiser", "activate_converters",
                {"group_by": [], "cohort": {"impressions.campaign": "spring_sale"}})
    check_own_dataset(policy, "advertiser", "conversions")


def test_datasets_and_files(policy, tmp_path):
    with pytest.raises(PolicyViolation, match="no dataset 'conversion'; did you mean 'conversions'"):
        check_own_dataset(policy, "advertiser", "conversion")
    with pytest.raises(PolicyViolation, match="belongs to 'publisher'"):
        check_own_dataset(policy, "advertiser", "impressions")
    with pytest.raises(InvalidInput, match="does not exist"):
        check_input_file(tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="not a regular file"):
        check_input_file(tmp_path)


@pytest.fixture
def party_files(tmp_path, policy_bytes, parties):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_bytes(policy_bytes)
    key_file, _ = parties["advertiser"].save(tmp_path / "keys")
    return ["--host", UNREACHABLE, "--policy", str(policy_file), "--keys", str(key_file),
            "--insecure-allow-simulation"]


@pytest.mark.parametrize(("argv", "code", "expected"), [
    (["query", "overlpa"], "policy_denied", "did you mean 'overlap'?"),
    (["query", "conversions_by_segment", "--group-by", "impressions.regoin", "--metric",
      "conversions.value"], "policy_denied",
     "did you mean 'impressions.region'?"),
    (["upload", "--dataset", "conversions", "missing.csv"], "invalid_input", "missing.csv does not exist"),
    (["upload", "--dataset", "impressions", "missing.csv"], "policy_denied", "belongs to 'publisher'"),
    (["delete", "conversoins"], "policy_denied", "did you mean 'conversions'?"),
], ids=["analysis", "group-by", "input file", "upload dataset", "delete dataset"])
def test_the_cli_refuses_before_the_network(party_files, argv, code, expected, capsys):
    assert main([argv[0], *party_files, *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert f"error [{code}]" in err and expected in err
    assert "enclave_unavailable" not in err  # the unreachable host was never contacted


def test_a_valid_query_does_reach_for_the_network(party_files, capsys):
    assert main(["query", *party_files, "overlap", "--group-by", "impressions.campaign"]) == 1
    assert "error [enclave_unavailable]" in capsys.readouterr().err


EVENTS = Path(__file__).resolve().parents[2] / "policies" / "advertiser-publisher-events.toml"


@pytest.fixture
def events_files(tmp_path, parties):
    from cleanroom.keys import bind_keys_into_policy

    raw, _ = bind_keys_into_policy(EVENTS.read_bytes(), {p: k.public() for p, k in parties.items()})
    policy_file = tmp_path / "events.toml"
    policy_file.write_bytes(raw)
    key_file, _ = parties["advertiser"].save(tmp_path / "keys")
    return ["--host", UNREACHABLE, "--policy", str(policy_file), "--keys", str(key_file),
            "--insecure-allow-simulation"]


@pytest.mark.parametrize("flags", [
    ["--group-by", "impressions.campaign"],
    ["--group-by", "impressions.region", "--group-by", "impressions.campaign"],
    ["--param", "by=impressions.region,impressions.campaign"],
    ["--param", "by="],  # no column: one row of everyone
], ids=["group-by", "two group-by", "param", "no columns"])
def test_a_templates_group_parameter_from_group_by_or_param(events_files, flags, capsys):
    assert main(["query", *events_files, "conversions_by_segment", *flags]) == 1
    assert "error [enclave_unavailable]" in capsys.readouterr().err  # past every local check


@pytest.mark.parametrize(("template", "flags", "expected"), [
    ("conversions_by_segment", ["--group-by", "impressions.regoin"],
     "cannot group by 'impressions.regoin' (by); did you mean 'impressions.region'? The columns by "
     "chooses from are: impressions.campaign, impressions.age_band, impressions.region"),
    ("conversions_by_segment", ["--param", "by=impressions.region,impressions.campaign,impressions.age_band"],
     "by takes at most 2 of impressions.campaign, impressions.age_band, impressions.region; 3 were given"),
    ("conversions_by_segment", ["--param", "by=impressions.region,impressions.region"],
     "a column appears twice in by"),
    ("overlap", ["--group-by", "conversions.value"], "The columns by chooses from are: impressions.campaign"),
    ("overlap", [], "needs its GROUP BY parameter by: up to 1 of impressions.campaign"),
], ids=["misspelt", "too many", "twice", "not listed", "missing"])
def test_group_parameter_mistakes_are_refused_before_the_network(events_files, template, flags, expected,
                                                                  capsys):
    assert main(["query", *events_files, template, *flags]) == 1
    err = capsys.readouterr().err
    assert "error [policy_denied]" in err and expected in err, err
    assert "enclave_unavailable" not in err


@pytest.mark.parametrize(("template", "flags", "expected"), [
    ("weekly_revenue", ["--group-by", "impressions.campaign"],
     "--group-by stands for a template's one GROUP BY parameter; weekly_revenue has 0"),
    ("overlap", ["--group-by", "impressions.campaign", "--param", "by=impressions.campaign"],
     "--group-by and --param by= both give overlap's GROUP BY parameter"),
    ("overlap", ["--metric", "conversions.value"], "a template takes --param NAME=VALUE"),
])
def test_group_by_flag_misuse_on_templates_is_a_usage_error(events_files, template, flags, expected, capsys):
    assert main(["query", *events_files, template, *flags]) == 2
    assert expected in capsys.readouterr().err
