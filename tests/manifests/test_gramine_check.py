"""manifests.check: the real template passes for both profiles; the CLI and -D values work.

Broken variants, one per finding id, are in test_broken_templates.py; the by-folder rules on
trusted files in test_trusted_files.py; the line count in test_tcb_size.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enclave.state import mount as state_mount
from manifests import check as cli
from manifests.gramine_check.checker import check
from manifests.gramine_check.layout import DEFAULT_TEMPLATE, PROFILES
from manifests.gramine_check.mounts import STATE_KEY_NAME
from manifests.gramine_check.render import default_variables, render
from tests.manifests.broken import variant

FIXTURES = Path(__file__).parent / "fixtures"


# --- the real template -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_real_template_passes(profile: str) -> None:
    report = check(profile)
    assert report.findings == []
    assert report.stats["project_files"] > 0


def test_key_names_come_from_the_enclave() -> None:
    assert STATE_KEY_NAME == {
        "sgx": state_mount.STATE_KEY_NAME_SGX,
        "direct": state_mount.STATE_KEY_NAME_DIRECT,
    }


def test_rendered_manifest_shape() -> None:
    text = render(DEFAULT_TEMPLATE, default_variables("sgx"))
    assert "file:attestation/" not in text
    assert "file:host/" not in text and "file:cleanroom/" not in text
    assert '"file:enclave/state/mount.py"' in text
    assert '"file:enclave/state/__pycache__/mount.cpython-311.pyc"' in text
    assert '"file:protocol/privacy/threshold.py"' in text
    assert "loader.env.CLEANROOM_ENCLAVE_CONNECT = { passthrough = true }" in text


def test_render_does_not_depend_on_the_callers_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gramine.mk runs gramine-manifest in the project root; the stand-in must do the same.
    here = render(DEFAULT_TEMPLATE, default_variables("sgx"))
    monkeypatch.chdir(tmp_path)
    assert render(DEFAULT_TEMPLATE, default_variables("sgx")) == here


# --- the command line --------------------------------------------------------------------------


def test_cli_json_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--profile", "direct", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["profile"] == "direct"


def test_cli_text_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--profile", "sgx"]) == 0
    out = capsys.readouterr().out
    assert "project:" in out and out.rstrip().endswith("OK")


def test_cli_reports_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = variant(tmp_path, ('sgx.enclave_size = "2G"', 'sgx.enclave_size = "3G"'))
    assert cli.main(["--template", str(broken)]) == 1
    assert "FINDING enclave-size:" in capsys.readouterr().out


def test_cli_define_values(capsys: pytest.CaptureFixture[str]) -> None:
    # -Dk=v as gramine-manifest takes it; a bare -Dflag means true.
    assert cli.main(["--json", "-Dlog_level=debug", "--define", "debug"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["variables"]["debug"] == "true"
    assert {"debug-enabled", "log-level"} <= {f["id"] for f in out["findings"]}


# --- profile-dependent findings driven by -D values, as the Makefile passes them ----------------


def test_sgx_key_rendered_for_direct_profile() -> None:
    report = check("direct", defines={"mode": "sgx"})
    assert "state-mount-key" in report.ids()


def test_ra_none_is_fine_for_direct_but_not_sgx() -> None:
    assert "remote-attestation" not in check("direct", defines={"ra_type": "none"}).ids()
    assert "remote-attestation" in check("sgx", defines={"ra_type": "none"}).ids()


def test_debug_switch_and_log_level() -> None:
    ids = check("sgx", defines={"debug": "true", "log_level": "debug"}).ids()
    assert {"debug-enabled", "log-level"} <= ids


def test_unknown_mode_is_a_render_error() -> None:
    assert "render-error" in check("sgx", defines={"mode": "simulation"}).ids()


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="profile"):
        check("simulation")


def test_legacy_manifest_names_are_all_reported() -> None:
    report = check("sgx", FIXTURES / "legacy-gramine-1.3.manifest.template")
    deprecated = " ".join(f.message for f in report.findings if f.id == "deprecated-key")
    for name in (
        "loader.entrypoint as a string",
        "loader.preload",
        "loader.pal_internal_mem_size",
        "fs.mount ",
        "fs.experimental__enable_sysfs_topology",
        "sgx.thread_num",
        "sgx.nonpie_binary",
        "sgx.require_avx ",
        "sgx.require_exinfo",
        "sgx.remote_attestation = True",
        "sgx.ra_client_spid",
        "sgx.ra_client_linkable",
        "sgx.protected_mrenclave_files",
        "sgx.trusted_files as a table",
    ):
        assert name in deprecated, name
