"""manifests.check: the real template passes; each broken variant trips its own finding id.

Broken templates are made from the real one by textual substitution (so they cannot rot), with
a guard that every substitution really changed the text.
"""

from __future__ import annotations

import compileall
import json
import py_compile
from pathlib import Path

import pytest

from enclave.state import mount as state_mount
from manifests import check

TEMPLATE = check.DEFAULT_TEMPLATE
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module", autouse=True)
def _project_pycs() -> None:
    """What `make enclave-pyc` does: the template trusts checked-hash byte-code of the project."""
    for package in check.TRUSTED_PACKAGES:
        assert compileall.compile_dir(
            check.PROJECT_ROOT / package,
            quiet=1,
            force=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )


def _ids(report: check.Report) -> set[str]:
    return {f.id for f in report.findings}


def _variant(tmp_path: Path, *substitutions: tuple[str, str]) -> Path:
    text = TEMPLATE.read_text()
    for old, new in substitutions:
        assert text.count(old) == 1, f"substitution target not found exactly once: {old!r}"
        changed = text.replace(old, new)
        assert changed != text
        text = changed
    path = tmp_path / "broken.manifest.template"
    path.write_text(text)
    return path


# --- the real template -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", check.PROFILES)
def test_real_template_passes(profile: str) -> None:
    report = check.check(profile)
    assert report.findings == []
    assert report.stats["project_files"] > 0


def test_key_names_come_from_the_enclave() -> None:
    assert check.STATE_KEY_NAME == {
        "sgx": state_mount.STATE_KEY_NAME_SGX,
        "direct": state_mount.STATE_KEY_NAME_DIRECT,
    }


def test_rendered_manifest_shape() -> None:
    text = check.render(TEMPLATE, check.default_variables("sgx"))
    assert '"file:attestation/verifier/verify.py"' not in text
    assert '"file:attestation/insecure_simulation/pki.py"' not in text
    assert "file:host/" not in text and "file:cleanroom/" not in text
    assert "loader.env.CLEANROOM_ENCLAVE_CONNECT = { passthrough = true }" in text


def test_tcb_files_are_exactly_trusted_sources() -> None:
    files = check.tcb_files()
    assert "enclave/__main__.py" in files
    assert "enclave/state/mount.py" in files
    assert all(f.endswith(".py") for f in files)
    assert not any(f.startswith(("host/", "cleanroom/", "tests/")) for f in files)
    assert not any(check.is_party_side(f) for f in files)
    assert {"attestation/verifier/verify.py", "attestation/insecure_simulation/pki.py"}.isdisjoint(files)


def test_cli_json_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--profile", "direct", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["profile"] == "direct"


def test_cli_tcb_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--tcb-size"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.endswith(" total") and int(last.split()[0]) > 0


def test_cli_reports_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = _variant(tmp_path, ('sgx.enclave_size = "2G"', 'sgx.enclave_size = "3G"'))
    assert check.main(["--template", str(broken)]) == 1
    assert "FINDING enclave-size:" in capsys.readouterr().out


# --- one broken variant per check --------------------------------------------------------------

BROKEN = {
    "debug-enabled": [('sgx.debug = {{ "true" if debug_on else "false" }}', "sgx.debug = true")],
    "insecure-key": [
        (
            "sys.disallow_subprocesses = true",
            "sys.disallow_subprocesses = true\nsys.insecure__allow_eventfd = true",
        ),
    ],
    "deprecated-key": [("sgx.max_threads = 8", "sgx.thread_num = 8")],
    "unknown-key": [('sys.stack.size = "2M"', 'sys.stack.size = "2M"\nsys.stack.guard = "4K"')],
    "enclave-size": [('sgx.enclave_size = "2G"', 'sgx.enclave_size = "3G"')],
    "max-threads": [("sgx.max_threads = 8", "sgx.max_threads = 4")],
    "blas-unpinned": [('loader.env.OPENBLAS_NUM_THREADS = "1"\n', "")],
    "argv-from-host": [
        ('loader.argv = ["{{ entrypoint }}", "-m", "enclave"]', "loader.insecure__use_cmdline_argv = true"),
    ],
    "argv": [
        (
            'loader.argv = ["{{ entrypoint }}", "-m", "enclave"]',
            'loader.argv = ["{{ entrypoint }}", "-c", "import enclave"]',
        )
    ],
    "subprocesses-allowed": [
        ("sys.disallow_subprocesses = true", "sys.disallow_subprocesses = false"),
    ],
    "remote-attestation": [
        ('sgx.remote_attestation = "{{ ra_type }}"', 'sgx.remote_attestation = "none"'),
    ],
    "file-check-policy": [
        ('sgx.file_check_policy = "strict"', 'sgx.file_check_policy = "allow_all_but_log"'),
    ],
    "allowed-files": [
        (
            'sgx.file_check_policy = "strict"',
            'sgx.file_check_policy = "strict"\nsgx.allowed_files = ["file:/etc/hosts"]',
        ),
    ],
    "trusted-file-missing": [
        (
            '  "file:{{ venv_dir }}/pyvenv.cfg",\n',
            '  "file:{{ venv_dir }}/pyvenv.cfg",\n  "file:enclave/no_such_module.py",\n',
        ),
    ],
    "module-not-trusted": [('"session", "state_mount"]', '"session"]')],
    "state-mount-key": [('key_name = "{{ state_key }}"', 'key_name = "default"')],
    "state-mount-path": [
        ('loader.env.CLEANROOM_STATE_DIR = "/state"', 'loader.env.CLEANROOM_STATE_DIR = "/data"'),
    ],
    "state-mount-missing": [
        (
            '  { type = "encrypted", path = "/state", uri = "file:{{ state_dir }}/", '
            'key_name = "{{ state_key }}" },\n',
            "",
        ),
    ],
    "tmp-not-tmpfs": [('{ type = "tmpfs", path = "/tmp" }', '{ path = "/tmp", uri = "file:/tmp" }')],
    "env-passthrough": [
        (
            'loader.env.CLEANROOM_STATE_DIR = "/state"',
            'loader.env.CLEANROOM_STATE_DIR = "/state"\nloader.env.HOME = { passthrough = true }',
        ),
    ],
    "runtimedir": [('loader.env.LD_LIBRARY_PATH = "/lib:', 'loader.env.LD_LIBRARY_PATH = "')],
    "entrypoint-untrusted": [('  "file:{{ entrypoint }}",\n', "")],
    "trusted-project-dir": [
        (
            '  "file:{{ venv_dir }}/pyvenv.cfg",\n',
            '  "file:{{ venv_dir }}/pyvenv.cfg",\n  "file:protocol/",\n',
        ),
    ],
    "toml-error": [("sgx.max_threads = 8", "sgx.max_threads = ")],
    "render-error": [("{{ ra_type }}", "{{ no_such_variable }}")],
}


@pytest.mark.parametrize("finding_id", sorted(BROKEN))
def test_broken_template(tmp_path: Path, finding_id: str) -> None:
    report = check.check("sgx", _variant(tmp_path, *BROKEN[finding_id]))
    assert finding_id in _ids(report), [str(f) for f in report.findings]


@pytest.mark.parametrize(
    "uri",
    [
        "host/__init__.py",
        "cleanroom/__init__.py",
        "tests/enclave/test_state_mount.py",
        "attestation/verifier/verify.py",
        "attestation/insecure_simulation/pki.py",
        "attestation/__pycache__/verify.cpython-311.pyc",
        "demo-work/sim-pki/root-ca.key",  # need not exist: a key is refused by its name
        "policies/enclave-signing.pem",
    ],
)
def test_forbidden_trusted_file(tmp_path: Path, uri: str) -> None:
    broken = _variant(
        tmp_path,
        (
            '  "file:{{ venv_dir }}/pyvenv.cfg",\n',
            f'  "file:{{{{ venv_dir }}}}/pyvenv.cfg",\n  "file:{uri}",\n',
        ),
    )
    assert "trusted-forbidden" in _ids(check.check("sgx", broken))


def test_trusted_directory_covering_party_code(tmp_path: Path) -> None:
    broken = _variant(
        tmp_path,
        (
            '  "file:{{ venv_dir }}/pyvenv.cfg",\n',
            '  "file:{{ venv_dir }}/pyvenv.cfg",\n  "file:attestation/",\n',
        ),
    )
    ids = _ids(check.check("sgx", broken))
    assert {"trusted-forbidden", "trusted-project-dir"} <= ids


def test_trusting_the_whole_repository(tmp_path: Path) -> None:
    broken = _variant(
        tmp_path,
        ('  "file:{{ venv_dir }}/pyvenv.cfg",\n', '  "file:{{ venv_dir }}/pyvenv.cfg",\n  "file:./",\n'),
    )
    assert "trusted-forbidden" in _ids(check.check("sgx", broken))


# --- profile-dependent findings driven by -D values, as the Makefile passes them ----------------


def test_sgx_key_rendered_for_direct_profile() -> None:
    report = check.check("direct", defines={"mode": "sgx"})
    assert "state-mount-key" in _ids(report)


def test_ra_none_is_fine_for_direct_but_not_sgx() -> None:
    assert "remote-attestation" not in _ids(check.check("direct", defines={"ra_type": "none"}))
    assert "remote-attestation" in _ids(check.check("sgx", defines={"ra_type": "none"}))


def test_debug_switch_and_log_level() -> None:
    ids = _ids(check.check("sgx", defines={"debug": "true", "log_level": "debug"}))
    assert {"debug-enabled", "log-level"} <= ids


def test_unknown_mode_is_a_render_error() -> None:
    assert "render-error" in _ids(check.check("sgx", defines={"mode": "simulation"}))


def test_legacy_manifest_names_are_all_reported() -> None:
    report = check.check("sgx", FIXTURES / "legacy-gramine-1.3.manifest.template")
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
