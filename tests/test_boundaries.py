"""The trust boundary, checked on the import graph of the source, folder by folder.

The trusted code base is exactly two folders, ``enclave/`` and ``protocol/`` (docs/design.md).
Each top-level folder's README states who may import it; these tests enforce those rules by
folder, so a new module is covered the moment it is created.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRUSTED = ("enclave", "protocol")
# Top-level names the trusted code may never import: the web stack, the network, logging
# (a log line is a way out of the enclave), and every untrusted folder of this repository.
FORBIDDEN_IN_TCB = {
    "flask", "werkzeug", "gunicorn", "requests", "httpx", "urllib", "urllib3", "http",
    "socketserver", "ssl", "asyncio", "logging", "dcap_qvl", "pyarrow", "sqlglot", "phonenumbers",
    "host", "cleanroom", "attestation", "benchmarks", "manifests", "tests",
}
# Third-party packages each trusted folder may use (the enclave venv pins exactly these).
THIRD_PARTY = {"protocol": {"msgpack", "numpy", "cryptography"},
               "enclave": {"msgpack", "numpy", "cryptography"}}
# Who may import whom, by top-level folder (the README of each folder says the same).
MAY_IMPORT = {
    "protocol": {"protocol"},
    "enclave": {"enclave", "protocol"},
    "attestation": {"attestation", "protocol"},
    "host": {"host", "protocol", "attestation"},
    "cleanroom": {"cleanroom", "protocol", "attestation"},
    "manifests": {"manifests", "enclave", "protocol"},
    "benchmarks": {"benchmarks", "protocol", "enclave", "attestation", "host", "cleanroom", "tests"},
}
PROJECT = set(MAY_IMPORT) | {"tests"}
# The enclave's single I/O layer: the only trusted module that may open the host connection.
IO_LAYER = ROOT / "enclave" / "__main__.py"


def _imports(path: Path) -> set[str]:
    """Top-level module names ``path`` imports (absolute imports; the project uses no others)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            if node.module:
                found.add(node.module.split(".")[0])
    return found


def _files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", _files(*TRUSTED), ids=_id)
def test_trusted_code_imports_no_network_web_logging_or_untrusted_folder(path: Path) -> None:
    imports = _imports(path)
    assert not imports & FORBIDDEN_IN_TCB, f"{path} imports {sorted(imports & FORBIDDEN_IN_TCB)}"


@pytest.mark.parametrize("path", _files(*TRUSTED), ids=_id)
def test_trusted_code_uses_only_the_pinned_enclave_packages(path: Path) -> None:
    folder = path.relative_to(ROOT).parts[0]
    third_party = _imports(path) - _stdlib() - PROJECT
    assert third_party <= THIRD_PARTY[folder], f"{path}: {sorted(third_party - THIRD_PARTY[folder])}"


@pytest.mark.parametrize("path", _files(*TRUSTED), ids=_id)
def test_only_the_io_layer_touches_sockets(path: Path) -> None:
    if path == IO_LAYER:
        return
    assert "socket" not in _imports(path)


def test_io_layer_uses_no_web_stack() -> None:
    assert _imports(IO_LAYER) & {"flask", "host", "cleanroom", "http", "urllib"} == set()


@pytest.mark.parametrize("path", _files(*MAY_IMPORT), ids=_id)
def test_each_folder_imports_only_what_its_readme_allows(path: Path) -> None:
    folder = path.relative_to(ROOT).parts[0]
    project_imports = _imports(path) & PROJECT
    assert project_imports <= MAY_IMPORT[folder], (
        f"{path} imports {sorted(project_imports - MAY_IMPORT[folder])}")


@pytest.mark.parametrize("folder", [*MAY_IMPORT, "policies", "docs", "tests", "requirements"])
def test_each_top_level_folder_has_a_readme(folder: str) -> None:
    readme = ROOT / folder / "README.md"
    assert readme.is_file(), f"{folder}/ has no README.md"
    assert len(readme.read_text().strip()) > 80


def test_protocol_is_pure_shared_code() -> None:
    # protocol/ holds no state and no I/O: nothing there opens files or reads the clock.
    for path in _files("protocol"):
        imports = _imports(path)
        assert not imports & {"os", "time", "socket", "threading", "subprocess", "secrets"}, path


def _stdlib() -> frozenset[str]:
    return frozenset(sys.stdlib_module_names) | {"__future__"}
