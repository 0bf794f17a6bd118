"""``cleanroom query --sql ... --explain`` and the CLI's SQL flags, with no network at all.

The host URL given is a loopback port nobody listens on, and ``Client`` is replaced by one that
fails the test if it is ever built: explaining a query must neither connect nor spend.
"""

from __future__ import annotations

import json
import math
import socket
from fractions import Fraction
from pathlib import Path

import pytest

import cleanroom.commands.query as query_command
from cleanroom.cli import main
from cleanroom.keys import PartyKeys
from protocol.policy import parse_policy
from protocol.privacy.accounting import Statistic
from tests.support.sql_policy import sql_policy_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies" / "advertiser-publisher.toml"
SQL = ("SELECT i.campaign, COUNT(DISTINCT person) AS users, COUNT(c.*) AS conversions, "
       "SUM(c.value) AS revenue, AVG(c.value) AS order_value "
       "FROM impressions i JOIN conversions c WHERE i.region IN ('north') GROUP BY i.campaign")


def _refused_url() -> str:
    with socket.socket() as s:  # bound then closed: connecting to it is refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    policy = tmp_path / "policy.toml"
    policy.write_text(sql_policy_text(EXAMPLE.read_text()))
    keys, _public = PartyKeys.generate("advertiser").save(tmp_path / "keys")

    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("--explain must not build a client")

    monkeypatch.setattr(query_command, "Client", no_client)
    base = ["query", "--host", _refused_url(), "--policy", str(policy), "--keys", str(keys)]
    return {"base": base, "policy": parse_policy(policy.read_bytes()), "tmp": tmp_path}


def _discrete_laplace_std(t: Fraction) -> float:
    q = math.exp(-1 / float(t))
    return math.sqrt(2 * q) / (1 - q)


def test_explain_prints_plan_rules_charge_and_noise(setup, capsys) -> None:
    assert main([*setup["base"], "--sql", SQL, "--explain", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    policy, privacy = setup["policy"], setup["policy"].privacy
    assert report["plan"]["group_by"] == ["impressions.campaign"]
    assert report["columns"] == ["campaign", "users", "conversions", "revenue", "order_value"]
    rule = policy.dataset("impressions").rules
    assert report["charge"]["impressions"]["epsilon"] == str(rule.cost)
    assert report["charge"]["conversions"]["queries_until_exhausted"] == int(
        privacy.budget["conversions"] // rule.cost)
    assert any("filter_by" in line and "impressions.region" in line
               for line in report["rules"]["impressions"])
    assert any("metrics.value" in line for line in report["rules"]["conversions"])
    # Independently: persons, count:conversions and sum:conversions.value share the charge; a
    # person is in at most min(L0, 8 campaigns) cohorts, with at most Linf rows of each dataset.
    share = rule.cost / 3
    k, linf = min(privacy.max_cohorts_per_user, 8), privacy.max_rows_per_user
    clamp = 500 * 100  # conversions.value's max, in cents
    std = {c["column"]: c for c in report["output"]}
    assert std["campaign"]["noise_std"] is None
    assert std["users"]["noise_std"] == pytest.approx(_discrete_laplace_std(k / share))
    assert std["conversions"]["noise_std"] == pytest.approx(_discrete_laplace_std(k * linf / share))
    assert std["revenue"]["noise_std"] == pytest.approx(_discrete_laplace_std(k * linf * clamp / share) / 100)
    assert std["order_value"]["noise_std_at_min_persons"] > 0


def test_explain_text_and_the_appended_persons_column(setup, capsys) -> None:
    sql = "SELECT COUNT(c.*) AS conversions FROM impressions JOIN conversions c"
    assert main([*setup["base"], "--sql", sql, "--explain"]) == 0
    out = capsys.readouterr().out
    assert '"fn": "count"' in out and "rules passed:" in out and "nothing is spent" in out
    assert "persons          persons: std" in out
    assert "conversions      count:conversions: std" in out


def test_sql_file_is_read(setup, capsys) -> None:
    path = setup["tmp"] / "q.sql"
    path.write_text(SQL + "\n")
    assert main([*setup["base"], "--sql-file", str(path), "--explain", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sql"] == SQL + "\n"


def test_refusals_are_one_line_errors_before_any_connection(setup, capsys) -> None:
    refused = SQL.replace("GROUP BY i.campaign", "GROUP BY i.campaign ORDER BY users")
    assert main([*setup["base"], "--sql", refused]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error [invalid_input]: ORDER BY at line 1, column") and "Traceback" not in err
    out_of_rules = SQL.replace("'north'", "'mars'")
    assert main([*setup["base"], "--sql", out_of_rules, "--explain"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error [policy_denied]: WHERE impressions.region: 'mars' is not a declared value"


@pytest.mark.parametrize(("extra", "message"), [
    (["overlap", "--sql", SQL], "not allowed with"),
    (["--explain", "overlap"], "--explain explains a --sql"),
    (["--sql", SQL, "--group-by", "impressions.campaign"], "belong to named analyses"),
    (["--sql-file", "/nonexistent/q.sql"], "cannot read it"),
])
def test_flag_mistakes_are_usage_errors(setup, capsys, extra, message) -> None:
    try:
        code = main([*setup["base"], *extra])
    except SystemExit as exit_info:  # argparse's own refusals
        code = exit_info.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_explain_needs_no_host_and_party_may_replace_the_keys(setup, capsys, monkeypatch) -> None:
    """--explain never connects, so it must not ask for a host; --party names the requester."""
    monkeypatch.delenv("CLEANROOM_HOST", raising=False)
    monkeypatch.setenv("CLEANROOM_PROFILE", str(setup["tmp"] / "no-profile.toml"))
    base = setup["base"]
    no_host = [arg for i, arg in enumerate(base) if arg != "--host" and base[i - 1] != "--host"]
    assert main([*no_host, "--sql", SQL, "--explain", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requester"] == "advertiser"
    policy = no_host[no_host.index("--policy") + 1]
    assert main(["query", "--policy", policy, "--party", "publisher", "--sql", SQL, "--explain",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requester"] == "publisher"
    # Sending still needs both: the usual usage errors, before anything is built.
    assert main([*no_host, "--sql", SQL]) == 2
    assert "--host URL is required" in capsys.readouterr().err
    assert main(["query", "--policy", policy, "--party", "publisher", "--sql", SQL]) == 2
    assert "--party is for --explain" in capsys.readouterr().err
    assert main(["query", "--policy", policy, "--sql", SQL, "--explain"]) == 2
    assert "--keys KEYFILE is required" in capsys.readouterr().err


def test_a_wrong_lift_is_refused_before_anything_is_sent(setup, capsys) -> None:
    lift_sql = ("SELECT i.campaign, COUNT(DISTINCT i.person) AS exposed FROM impressions i "
                "JOIN conversions c GROUP BY i.campaign")
    assert main([*setup["base"], "--sql", lift_sql, "--lift", "loyalty:mars"]) == 1
    assert "'mars' is not a value of impressions.campaign" in capsys.readouterr().err
    assert main([*setup["base"], "--sql", SQL, "--lift", "loyalty:clearance"]) == 1
    assert "COUNT(DISTINCT impressions.person)" in capsys.readouterr().err
    assert main([*setup["base"], "--sql", lift_sql, "--lift", "loyalty"]) == 2
    assert "TEST:CONTROL" in capsys.readouterr().err


LEFT_SQL = ("SELECT i.campaign, COUNT(DISTINCT person) AS converters, COUNT(c.*) AS conversions "
            "FROM conversions c LEFT JOIN impressions i WHERE i.region IN ('north') GROUP BY i.campaign")


def test_explain_a_left_join_its_nil_row_and_sensitivities(setup, capsys) -> None:
    assert main([*setup["base"], "--sql", LEFT_SQL, "--explain", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    privacy = setup["policy"].privacy
    assert report["join"] == "left" and report["plan"]["join"] == "left"
    assert report["rows"] == 8 + 1  # the campaigns, and the converters with no north impression
    assert "persons of conversions with no impressions row passing the WHERE" in report["nil_row"]
    # Removing a person's impressions moves it from min(L0, 8) campaign rows into the nil row.
    k = min(privacy.max_cohorts_per_user, 8) + 1
    cells = {s["statistic"]: s for s in report["statistics"]}
    assert cells["persons"]["cells_per_person"] == k and cells["persons"]["cells"] == 9
    assert cells["count:conversions"]["per_cell"] == privacy.max_rows_per_user
    share = Fraction(report["statistics"][0]["epsilon"])
    std = {c["column"]: c["noise_std"] for c in report["output"]}
    assert std["converters"] == pytest.approx(_discrete_laplace_std(k / share))
    assert report["cohort_keys"] == "public" and report["threshold"] is None and report["delta"] == "0"
    assert any("LEFT JOIN counts every person of conversions" in line
               for line in report["rules"]["conversions"])
    assert main([*setup["base"], "--sql", LEFT_SQL, "--explain"]) == 0
    out = capsys.readouterr().out
    assert "rows: 9 (every combination of declared values, and the LEFT JOIN's nil row;" in out
    assert "LEFT JOIN: the last row, every group key nil" in out
    assert f"persons                  9 cells, a person in at most {k}, by at most 1 each" in out


def test_explain_private_cohort_keys_gives_tau_and_delta(setup, capsys) -> None:
    from protocol.policy import parse_policy as parse
    from protocol.privacy.accounting import calibrate
    from protocol.privacy.threshold import release_threshold

    text = sql_policy_text(EXAMPLE.read_text()).replace(
        "[datasets.rules]", '[datasets.rules]\ncohort_keys = "private"', 1)
    path = setup["tmp"] / "private.toml"
    path.write_text(text)
    base = [*setup["base"]]
    base[base.index("--policy") + 1] = str(path)
    assert main([*base, "--sql", SQL, "--explain", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    policy = parse(text.encode())
    # persons: one of 3 shared vectors (AVG reuses the sum and count), a person in min(L0, 8) cells
    cost = policy.dataset("impressions").rules.cost  # type: ignore[union-attr]
    k = min(policy.privacy.max_cohorts_per_user, 8)
    persons = calibrate([Statistic("persons", 8, k, 1), Statistic("c", 8, k, 8), Statistic("s", 8, k, 1)],
                        policy.privacy.mode, cost)[0]
    tau = release_threshold(persons.mechanism, persons.scale, k, policy.privacy.delta)
    assert report["cohort_keys"] == "private" and report["threshold"] == tau
    assert report["delta"] == str(policy.privacy.delta)
    assert any(line == f"cohort_keys private: a row also needs tau = {tau} noisy persons"
               for line in report["rules"]["impressions"])
    assert main([*base, "--sql", SQL, "--explain"]) == 0
    assert f"reach 50 and tau = {tau} (private cohort keys; the query is also charged delta 1e-09)" in \
        capsys.readouterr().out
