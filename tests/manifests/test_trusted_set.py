"""The trusted set is an explicit file list, and the mounts expose it, also from a /tmp checkout.

A checkout under /tmp used to break: the tmpfs at /tmp was the last mount and hid the venv's
mounts below it. Here the template is rendered for a fake checkout under /tmp (pytest's
tmp_path) with its own venv, and must pass; with the mounts left in list order it must fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from manifests.gramine_check import layout, render, trusted_files
from manifests.gramine_check.checker import check
from manifests.gramine_check.findings import Report
from manifests.gramine_check.layout import DEFAULT_TEMPLATE, PROJECT_ROOT
from manifests.gramine_check.render import default_variables
from manifests.gramine_check.trusted_files import check_trusted
from tests.manifests.broken import variant

SITE = Path(sys.prefix) / "lib" / "python3.11" / "site-packages"


def _pins() -> list[str]:
    lines = (PROJECT_ROOT / "requirements" / "enclave.txt").read_text().splitlines()
    return [ln.split("#")[0].strip().replace("==", "-") for ln in lines if ln.split("#")[0].strip()]


@pytest.fixture(scope="module")
def tmp_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A checkout under /tmp: the TCB folders copied, a venv whose wheels link to the dev venv's."""
    root = tmp_path_factory.mktemp("checkout")
    for folder in ("enclave", "protocol", "requirements"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, symlinks=True)
    venv = root / ".venv-enclave"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # type: ignore[attr-defined]
    site = venv / "lib" / "python3.11" / "site-packages"
    for pin in _pins():
        record = (SITE / f"{pin}.dist-info" / "RECORD").read_text().splitlines()
        tops = {line.split(",")[0].split("/", 1)[0] for line in record if line and not line.startswith("..")}
        for top in sorted(tops):
            if not (site / top).exists():
                (site / top).symlink_to(SITE / top)
    yield root


@pytest.fixture
def at_tmp(tmp_checkout: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for module in (layout, render, trusted_files):
        monkeypatch.setattr(module, "PROJECT_ROOT", tmp_checkout)
    return {"entrypoint": str(tmp_checkout / ".venv-enclave" / "bin" / "python")}


def test_checkout_under_tmp_passes(at_tmp: dict[str, str]) -> None:
    assert at_tmp["entrypoint"].startswith("/tmp/")
    report = check("sgx", defines=at_tmp)
    assert report.findings == []
    text = render.render(DEFAULT_TEMPLATE, default_variables("sgx") | at_tmp)
    paths = [m["path"] for m in tomllib.loads(text)["fs"]["mounts"]]
    assert paths.index("/tmp") < paths.index(at_tmp["entrypoint"])


def test_tmpfs_mounted_last_hides_the_venv(tmp_path: Path, at_tmp: dict[str, str]) -> None:
    unsorted = variant(tmp_path, ('mounts | sort(attribute="path")', "mounts"))
    report = check("sgx", unsorted, at_tmp)
    shadowed = " ".join(f.message for f in report.findings if f.id == "mount-shadowed")
    assert at_tmp["entrypoint"] in shadowed
    assert f"file:{at_tmp['entrypoint']} lies under the tmpfs" in " ".join(
        f.message for f in report.findings if f.id == "trusted-under-tmpfs"
    )


def test_trusted_set_is_small_and_explicit() -> None:
    report = check("sgx")
    text = render.render(DEFAULT_TEMPLATE, default_variables("sgx"))
    uris = tomllib.loads(text)["sgx"]["trusted_files"]
    assert len(uris) == len(set(uris)) == report.stats["trusted_entries"] <= 3000
    assert [u for u in uris if u.endswith("/")] == [f"file:{render._Runtimedir()}/"]


def test_same_file_through_a_symlinked_directory_is_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "usr-lib").mkdir()
    (tmp_path / "usr-lib" / "libz.so.1").write_bytes(b"\x7fELF")
    (tmp_path / "lib").symlink_to(tmp_path / "usr-lib")  # merged /usr: /lib -> /usr/lib
    uris = [f"file:{tmp_path}/usr-lib/libz.so.1", f"file:{tmp_path}/lib/libz.so.1"]
    manifest = {"sgx": {"trusted_files": uris}}
    report = Report("sgx", "t", {})
    check_trusted(manifest, report)
    assert [f.id for f in report.findings] == ["trusted-duplicate"]


def test_every_module_the_enclave_imports_is_trusted() -> None:
    # The stdlib packages and wheels are listed, not walked: an import outside them would fail
    # under Gramine's strict file policy. Import what the enclave imports and compare.
    hazmat = "cryptography.hazmat.primitives"
    code = (
        "import sys, enclave.__main__, numpy, msgpack\n"
        f"import {hazmat}.ciphers.aead, {hazmat}.kdf.hkdf\n"
        f"import {hazmat}.asymmetric.x25519, {hazmat}.asymmetric.ed25519\n"
        "files = {getattr(m, '__file__', None) for m in list(sys.modules.values())}\n"
        "print('\\n'.join(sorted(f for f in files if f)))"
    )
    # With the interpreter the manifest is rendered for (.venv-enclave once `make enclave-venv`
    # ran, else this one): the files it loads are the ones that must be trusted.
    variables = default_variables("sgx")
    out = subprocess.run([variables["entrypoint"], "-c", code], cwd=PROJECT_ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    text = render.render(DEFAULT_TEMPLATE, variables)
    trusted = {u.removeprefix("file:") for u in tomllib.loads(text)["sgx"]["trusted_files"]}
    trusted |= {str(PROJECT_ROOT / u) for u in trusted if not u.startswith("/")}
    # .pth hooks of the dev venv (an editable install, setuptools): the enclave venv has neither.
    dev_only = ("__editable__", "_distutils_hack")
    assert [f for f in out if f not in trusted and not any(d in f for d in dev_only)] == []


def test_rendering_ignores_the_builders_pythonpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gramine-manifest from a prefix of one's own needs PYTHONPATH; the interpreter it runs to
    read sys.path inherits it. That directory must not become a mount (nor change MRENCLAVE)."""
    foreign = tmp_path / "gramine-prefix" / "lib" / "python3.11" / "site-packages"
    foreign.mkdir(parents=True)
    (foreign / "graminelibos").mkdir()
    monkeypatch.setenv("PYTHONPATH", str(foreign))
    with_path = render.render(DEFAULT_TEMPLATE, default_variables("sgx"))
    assert str(foreign) not in with_path
    monkeypatch.delenv("PYTHONPATH")
    assert render.render(DEFAULT_TEMPLATE, default_variables("sgx")) == with_path


def test_wheels_trust_no_stub_header_or_test_module() -> None:
    """Each trusted file in a directory Python lists is hashed at start (Gramine looks up every
    entry it lists), so what Python never opens is left out of the wheels' share."""
    text = render.render(DEFAULT_TEMPLATE, default_variables("sgx"))
    uris = [u.removeprefix("file:") for u in tomllib.loads(text)["sgx"]["trusted_files"]]
    wheels = [u for u in uris if "/site-packages/" in u]
    assert wheels, "no wheel file trusted: the enclave venv or the dev venv lacks the pins"
    skipped = (".pyi", ".pxd", ".pyx", ".c", ".h", ".a", ".o", "/py.typed")
    assert [u for u in wheels if u.endswith(skipped)] == []
    assert [u for u in wheels if "_tests." in u.rsplit("/", 1)[-1] or "/_simd." in u] == []
    assert any("_multiarray_umath" in u for u in wheels)
