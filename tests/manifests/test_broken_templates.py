"""One broken variant of the real template per finding id; each trips its own id.

test_every_finding_id_has_a_fixture keeps it that way: a new id in manifests/gramine_check/
without a broken variant here (or a named test elsewhere) fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from manifests.gramine_check.checker import check
from tests.manifests.broken import TRUSTED_ANCHOR, trust_extra, variant

TCB_DIRS_LINE = '{%- set tcb_dirs = ["enclave", "protocol"] %}'
TMPFS = '{"type": "tmpfs", "path": "/tmp"}'
MOUNT_ORDER = 'mounts | sort(attribute="path")'
PYC_LINE = '  "file:{{ module.parent.as_posix() }}/__pycache__/{{ module.stem }}.{{ pyc_tag }}.pyc",\n'

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
    "bad-value": [("sgx.isvsvn = 1", 'sgx.isvsvn = "1"')],
    "log-level": [
        ("loader.log_level = \"{{ log_level | default('error') }}\"", 'loader.log_level = "trace"'),
    ],
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
    "trusted-file-missing": [trust_extra("enclave/no_such_module.py")],
    "trusted-uri": [(TRUSTED_ANCHOR, f'{TRUSTED_ANCHOR}  "enclave/__init__.py",\n')],
    # The TCB is both folders: dropping one leaves its modules untrusted.
    "module-not-trusted": [(TCB_DIRS_LINE, '{%- set tcb_dirs = ["enclave"] %}')],
    "pyc-not-trusted": [(PYC_LINE, "")],
    # attestation/ was partly trusted before the layout change; now it never may be.
    "trusted-outside-tcb": [(TCB_DIRS_LINE, '{%- set tcb_dirs = ["enclave", "protocol", "attestation"] %}')],
    "trusted-forbidden": [trust_extra("policies/enclave-signing.pem")],
    "trusted-project-dir": [trust_extra("protocol/")],
    "state-mount-key": [('"key_name": state_key', '"key_name": "default"')],
    "state-mount-path": [
        ('loader.env.CLEANROOM_STATE_DIR = "/state"', 'loader.env.CLEANROOM_STATE_DIR = "/data"'),
    ],
    "state-mount-missing": [
        (
            '  {"type": "encrypted", "path": "/state", "uri": "file:" ~ state_dir ~ "/", '
            '"key_name": state_key},\n',
            "",
        ),
    ],
    "tmp-not-tmpfs": [(TMPFS, '{"path": "/tmp", "uri": "file:/tmp"}')],
    "mount-path": [(TMPFS, '{"type": "tmpfs", "path": "tmp"}')],
    # Reversed, Gramine's runtime at /lib comes after (and hides) /lib/<arch>.
    "mount-shadowed": [(MOUNT_ORDER, "mounts | reverse")],
    "trusted-under-tmpfs": [trust_extra("/tmp/cleanroom-fixture.py")],
    "trusted-unreachable": [trust_extra("/etc/hostname")],
    "trusted-system-dir": [trust_extra("{{ arch_libdir }}/")],
    "trusted-duplicate": [trust_extra("{{ entrypoint }}")],
    "env-passthrough": [
        (
            'loader.env.CLEANROOM_STATE_DIR = "/state"',
            'loader.env.CLEANROOM_STATE_DIR = "/state"\nloader.env.HOME = { passthrough = true }',
        ),
    ],
    "runtimedir": [('(["/lib"] + extra_lib_dirs', "(extra_lib_dirs")],
    "entrypoint-untrusted": [('  "file:{{ entrypoint }}",\n', "")],
    "toml-error": [("sgx.max_threads = 8", "sgx.max_threads = ")],
    "render-error": [("{{ ra_type }}", "{{ no_such_variable }}")],
}
# Ids whose broken input is not a template variant; the test that covers each is named.
TESTED_ELSEWHERE = {
    "pyc-stale": "test_trusted_files.py::test_pyc_must_be_checked_hash_of_the_current_source",
    "library-dependency-untrusted": "test_libraries.py::test_template_rule_of_the_failed_run_is_caught",
    "library-shadowed": "test_libraries.py::test_shadowed_library",
}


@pytest.mark.parametrize("finding_id", sorted(BROKEN))
def test_broken_template(tmp_path: Path, finding_id: str) -> None:
    report = check("sgx", variant(tmp_path, *BROKEN[finding_id]))
    assert finding_id in report.ids(), [str(f) for f in report.findings]


def test_every_finding_id_has_a_fixture() -> None:
    package = Path(__file__).resolve().parents[2] / "manifests" / "gramine_check"
    source = "\n".join(p.read_text() for p in package.glob("*.py"))
    ids = set(re.findall(r'report\.add\(\s*"([a-z-]+)"', source))
    ids |= set(re.findall(r'return "([a-z-]+)", ', source))
    assert ids, "no finding ids found: the pattern is out of date"
    assert ids == set(BROKEN) | set(TESTED_ELSEWHERE)
