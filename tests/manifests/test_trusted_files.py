"""The trusted-file rules are by folder: all of enclave/ and protocol/, nothing else of the repo.

A new module under either folder is trusted without editing the template (it walks the
folders); a module the template misses, or any other project file it trusts, is a finding.
"""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest

from manifests.gramine_check.checker import check, trusted_sources
from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import PROJECT_ROOT, TCB_DIRS, tcb_folder, tcb_sources
from manifests.gramine_check.trusted_files import check_pycs, source_of
from tests.manifests.broken import trust_extra, variant

WALK = 'rglob("*.py") | sort %}'


def test_tcb_is_every_py_under_the_two_folders() -> None:
    expected = sorted(
        p.relative_to(PROJECT_ROOT).as_posix()
        for folder in ("enclave", "protocol")
        for p in (PROJECT_ROOT / folder).rglob("*.py")
    )
    assert TCB_DIRS == ("enclave", "protocol")
    assert tcb_sources() == expected
    assert {"enclave/state/mount.py", "protocol/report_data.py", "protocol/privacy/threshold.py",
            "enclave/requests/quote_provider.py"} <= set(expected)


def test_manifest_trusts_exactly_the_tcb() -> None:
    files = trusted_sources()
    assert files == tcb_sources()
    assert all(tcb_folder(f) in TCB_DIRS for f in files)
    untrusted = ("attestation/", "host/", "cleanroom/", "benchmarks/", "tests/", "manifests/")
    assert not any(f.startswith(untrusted) for f in files)


def test_untrusted_module_in_a_subpackage(tmp_path: Path) -> None:
    # The template skips protocol/privacy/: exactly those modules are reported, by name.
    broken = variant(tmp_path, (WALK, 'rglob("*.py") | sort if "privacy" not in source.parts %}'))
    report = check("sgx", broken)
    missing = {f.message.split()[0] for f in report.findings if f.id == "module-not-trusted"}
    assert missing == {f for f in tcb_sources() if f.startswith("protocol/privacy/")}
    assert "protocol/privacy/accounting.py" in missing


def test_untrusted_module_under_enclave(tmp_path: Path) -> None:
    broken = variant(tmp_path, (WALK, 'rglob("*.py") | sort if source.name != "mount.py" %}'))
    report = check("sgx", broken)
    assert [f.message.split()[0] for f in report.findings if f.id == "module-not-trusted"] == [
        "enclave/state/mount.py"
    ]


@pytest.mark.parametrize(
    ("uri", "finding_id"),
    [
        ("host/__init__.py", "trusted-outside-tcb"),
        ("cleanroom/__init__.py", "trusted-outside-tcb"),
        ("benchmarks/run.py", "trusted-outside-tcb"),
        ("manifests/check.py", "trusted-outside-tcb"),
        ("tests/enclave/test_state_mount.py", "trusted-outside-tcb"),
        ("README.md", "trusted-outside-tcb"),  # a file in the repository root
        # attestation/ is untrusted as a whole now, including what used to load in the enclave.
        ("attestation/__init__.py", "trusted-outside-tcb"),
        ("attestation/verifier/quote_layout.py", "trusted-outside-tcb"),
        ("attestation/verifier/verify.py", "trusted-outside-tcb"),
        ("attestation/verifier/__pycache__/verify.cpython-311.pyc", "trusted-outside-tcb"),
        # Keys and PKI material are refused anywhere, by name (they need not exist).
        ("attestation/insecure_simulation/pki.py", "trusted-forbidden"),
        ("demo-work/sim-pki/root-ca.key", "trusted-forbidden"),
        ("policies/enclave-signing.pem", "trusted-forbidden"),
        ("enclave/signing.pem", "trusted-forbidden"),
    ],
)
def test_refused_trusted_file(tmp_path: Path, uri: str, finding_id: str) -> None:
    report = check("sgx", variant(tmp_path, trust_extra(uri)))
    assert finding_id in report.ids(), [str(f) for f in report.findings]


def test_trusted_directory_covering_untrusted_code(tmp_path: Path) -> None:
    ids = check("sgx", variant(tmp_path, trust_extra("attestation/"))).ids()
    assert {"trusted-outside-tcb", "trusted-project-dir"} <= ids


def test_trusted_tcb_directory_is_listed_file_by_file(tmp_path: Path) -> None:
    # Even a TCB folder: trusted whole, it would measure whatever else lies there at signing.
    assert "trusted-project-dir" in check("sgx", variant(tmp_path, trust_extra("enclave/"))).ids()


def test_trusting_the_whole_repository(tmp_path: Path) -> None:
    assert "trusted-forbidden" in check("sgx", variant(tmp_path, trust_extra("./"))).ids()


def test_pyc_must_be_checked_hash_of_the_current_source(tmp_path: Path) -> None:
    pkg = tmp_path / "enclave"
    (pkg / "__pycache__").mkdir(parents=True)
    files = {name: f"enclave/__pycache__/{name}.cpython-311.pyc" for name in ("good", "stamp", "edited")}
    for name, rel in files.items():
        (pkg / f"{name}.py").write_text("X = 1\n")
        mode = py_compile.PycInvalidationMode
        invalidation = mode.TIMESTAMP if name == "stamp" else mode.CHECKED_HASH
        py_compile.compile(str(pkg / f"{name}.py"), str(tmp_path / rel), invalidation_mode=invalidation)
    (pkg / "edited.py").write_text("X = 2\n")
    orphan = "enclave/__pycache__/gone.cpython-311.pyc"
    (tmp_path / orphan).write_bytes((tmp_path / files["good"]).read_bytes())

    report = Report("sgx", "t", {})
    check_pycs([*files.values(), orphan, "enclave/good.py"], report, root=tmp_path)
    by_file = {f.message.split()[0]: f.message for f in report.findings if f.id == "pyc-stale"}
    assert set(by_file) == {files["stamp"], files["edited"], orphan}
    assert "not a checked-hash pyc" in by_file[files["stamp"]]
    assert "does not match enclave/edited.py" in by_file[files["edited"]]
    assert "has no source" in by_file[orphan]


def test_source_of_byte_code() -> None:
    assert source_of("enclave/state/__pycache__/mount.cpython-311.pyc") == "enclave/state/mount.py"
    assert source_of("protocol/wire.py") == "protocol/wire.py"


@pytest.mark.parametrize(
    ("rel", "folder"),
    [("enclave/state/mount.py", "enclave"), ("protocol/privacy/plan.py", "protocol"),
     ("attestation/verifier/verify.py", None), ("enclave", None), ("enclave.py", None)],
)
def test_tcb_folder(rel: str, folder: str | None) -> None:
    assert tcb_folder(rel) == folder
