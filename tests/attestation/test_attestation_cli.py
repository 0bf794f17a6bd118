"""``cleanroom attestation verify-quote``, run through ``cleanroom.cli.main`` and through register()."""

import argparse
import json
from pathlib import Path

import pytest

from attestation.insecure_simulation.pki import SIM_MR_ENCLAVE
from attestation.verifier import collateral as collateral_module
from attestation.verifier.verify import VerificationReport
from cleanroom.cli import main
from cleanroom.commands.attestation import register
from cleanroom.commands.output import print_report
from protocol.errors import AttestationError

NOW = "1751328000"


@pytest.fixture
def real_files(real_sample, tmp_path):
    quote, col = tmp_path / "quote.bin", tmp_path / "collateral.json"
    quote.write_bytes(real_sample.quote)
    col.write_text(real_sample.collateral)
    return str(quote), str(col)


@pytest.fixture
def sim_files(sim_pki, now, tmp_path):
    quote, col, root = tmp_path / "sim.bin", tmp_path / "sim.json", tmp_path / "root.der"
    quote.write_bytes(sim_pki.issue_quote(bytes(64)))
    col.write_text(sim_pki.collateral_json(now))
    root.write_bytes(sim_pki.root_ca_der)
    return str(quote), str(col), str(root)


def run(capsys, argv):
    code = main(["attestation", "verify-quote", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.samples
def test_accepted_real_quote_json(capsys, real_files, real_sample):
    exp = real_sample.expected
    quote, col = real_files
    code, out, _ = run(
        capsys,
        [
            quote,
            "--collateral",
            col,
            "--now",
            NOW,
            "--mrenclave",
            exp["mr_enclave"],
            "--allow-status",
            exp["expect"]["status"],
            "--report-data",
            exp["report_data"],
            "--json",
        ],
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["accepted"] is True and doc["error"] is None
    assert doc["status"] == exp["expect"]["status"]
    assert doc["advisory_ids"] == exp["expect"]["advisory_ids"]
    for key in ("mr_enclave", "mr_signer", "isv_prod_id", "isv_svn", "debug", "report_data"):
        assert doc[key] == exp[key]


@pytest.mark.samples
def test_refused_real_quote_exits_1(capsys, real_files, real_sample):
    quote, col = real_files
    code, out, _ = run(
        capsys,
        [
            quote,
            "--collateral",
            col,
            "--now",
            NOW,
            "--mrenclave",
            real_sample.expected["mr_enclave"],
            "--json",
        ],
    )
    assert code == 1
    assert json.loads(out)["error"]["code"] == "tcb_status_not_allowed"


@pytest.mark.samples
def test_human_summary_and_mrsigner_flags(capsys, real_files, real_sample):
    exp = real_sample.expected
    quote, col = real_files
    code, out, _ = run(
        capsys,
        [
            quote,
            "--collateral",
            col,
            "--now",
            NOW,
            "--mrsigner",
            exp["mr_signer"],
            "--isv-prod-id",
            "0",
            "--min-isv-svn",
            "0",
            "--allow-status",
            exp["expect"]["status"],
        ],
    )
    assert code == 0
    assert "attestation: ACCEPTED" in out and exp["mr_signer"] in out


@pytest.mark.samples
def test_policy_file_with_flag_override(capsys, real_files, real_sample, tmp_path):
    exp = real_sample.expected
    quote, col = real_files
    (tmp_path / "agreed.toml").write_bytes(b"x = 1\n")
    policy = tmp_path / "verifier.toml"
    policy.write_text(
        f'mr_enclaves = ["{exp["mr_enclave"]}"]\n'
        'allowed_statuses = ["UpToDate"]\npolicy_file = "agreed.toml"\n'
    )
    argv = [quote, "--collateral", col, "--now", NOW, "--verifier-policy", str(policy)]
    assert run(capsys, argv)[0] == 1
    assert run(capsys, [*argv, "--allow-status", exp["expect"]["status"]])[0] == 0


def test_simulation_needs_the_insecure_flag(capsys, sim_files):
    quote, col, root = sim_files
    argv = [quote, "--collateral", col, "--now", NOW, "--simulation-root", root, "--json"]
    code, out, _ = run(capsys, argv)
    assert code == 1
    assert json.loads(out)["error"]["code"] == "simulation_not_allowed"
    code, out, err = run(capsys, [*argv, "--insecure-allow-simulation"])
    assert code == 0
    doc = json.loads(out)
    assert doc["simulated"] is True and doc["mr_enclave"] == SIM_MR_ENCLAVE.hex()
    assert "WARNING" in err


@pytest.mark.parametrize(
    "extra",
    [
        ["--report-data", "zz"],
        ["--report-data", "00" * 63],
        ["--mrenclave", "1234"],
        ["--mrsigner", "00" * 32],  # without --isv-prod-id and --min-isv-svn
        ["--allow-status", "Fine"],
        ["--now", "-5"],
        ["--verifier-policy", "/nonexistent/policy.toml"],
    ],
)
def test_usage_errors_exit_2(capsys, sim_files, extra):
    quote, col, _ = sim_files
    code, _, err = run(capsys, [quote, "--collateral", col, "--now", NOW, *extra])
    assert code == 2
    assert err.startswith("error")


def test_unknown_policy_key_is_a_usage_error(capsys, sim_files, tmp_path):
    quote, col, _ = sim_files
    policy = tmp_path / "verifier.toml"
    policy.write_text("allow_everything = true\n")
    code, _, err = run(capsys, [quote, "--collateral", col, "--verifier-policy", str(policy)])
    assert code == 2
    assert "allow_everything" in err


def test_missing_files_and_flags(capsys, sim_files, tmp_path):
    quote, col, _ = sim_files
    assert run(capsys, [str(tmp_path / "none.bin"), "--collateral", col])[0] == 2
    assert run(capsys, [quote, "--collateral", str(tmp_path / "none.json")])[0] == 2
    for argv in ([quote], [quote, "--collateral", col, "--pccs-url", "https://p"]):
        with pytest.raises(SystemExit) as info:
            main(["attestation", "verify-quote", *argv])  # exactly one collateral flag
        assert info.value.code == 2


def test_pccs_url_stands_in_for_the_collateral_file(capsys, monkeypatch, sim_pki, sim_files, now):
    quote, _, root = sim_files
    calls = []

    def fake_fetch(url, raw_quote):
        calls.append((url, raw_quote))
        return sim_pki.collateral_json(now)

    monkeypatch.setattr(collateral_module, "fetch_from_pccs", fake_fetch)
    argv = [quote, "--pccs-url", "https://pccs.example", "--now", NOW, "--simulation-root", root]
    code, out, _ = run(capsys, [*argv, "--insecure-allow-simulation", "--json"])
    assert code == 0 and json.loads(out)["accepted"] is True
    assert calls == [("https://pccs.example", Path(quote).read_bytes())]


def test_pccs_without_collateral_exits_1(capsys, monkeypatch, sim_files):
    def down(url, raw_quote):
        raise AttestationError("collateral could not be fetched from the PCCS")

    monkeypatch.setattr(collateral_module, "fetch_from_pccs", down)
    code, out, err = run(capsys, [sim_files[0], "--pccs-url", "https://pccs.example", "--now", NOW])
    assert code == 1 and out == ""
    assert "could not be fetched" in err


def test_register_on_a_host_parser(capsys, sim_files):
    quote, col, root = sim_files
    parser = argparse.ArgumentParser(prog="cleanroom")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "attestation",
            "verify-quote",
            quote,
            "--collateral",
            col,
            "--now",
            NOW,
            "--insecure-allow-simulation",
            "--simulation-root",
            root,
        ]
    )
    assert args.func(args) == 0
    assert "WARNING: SIMULATED" in capsys.readouterr().out


def test_print_report_formats(capsys):
    report = VerificationReport(
        accepted=False,
        simulated=False,
        status=None,
        advisory_ids=(),
        mr_enclave=None,
        mr_signer=None,
        isv_prod_id=None,
        isv_svn=None,
        debug=None,
        report_data=None,
        checks=(),
        error=("quote_invalid", "the quote is malformed"),
    )
    print_report(report, as_json=True)
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "quote_invalid"
    print_report(report, as_json=False)
    out = capsys.readouterr().out
    assert "REFUSED" in out and "quote_invalid" in out
