"""The trust boundary, checked on the import graph of the source (DESIGN.md §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The attestation modules that load in the enclave; the rest of attestation/ (verifier,
# simulation PKI, collateral) is party or host side and never loads there.
ENCLAVE_ATTESTATION = {"attestation/__init__.py", "attestation/quote.py", "attestation/quote_layout.py",
                       "attestation/report_data.py"}
FORBIDDEN_IN_TCB = {
    "flask", "werkzeug", "gunicorn", "requests", "httpx", "urllib", "urllib3", "http",
    "socketserver", "ssl", "asyncio", "host", "cleanroom", "dcap_qvl", "logging",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
            if node.module == "attestation":
                found.update(f"attestation.{a.name}" for a in node.names)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attestation."):
            found.add(node.module)
    return found


def _tcb_files() -> list[Path]:
    files = sorted((ROOT / "enclave").rglob("*.py")) + sorted((ROOT / "protocol").rglob("*.py"))
    files += [p for p in sorted((ROOT / "attestation").rglob("*.py"))
              if str(p.relative_to(ROOT)) in ENCLAVE_ATTESTATION]
    return files


@pytest.mark.parametrize("path", _tcb_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_trusted_code_imports_no_network_web_or_untrusted_module(path: Path) -> None:
    imports = _imports(path)
    assert not imports & FORBIDDEN_IN_TCB, f"{path} imports {sorted(imports & FORBIDDEN_IN_TCB)}"
    party_side = {m for m in imports if m.startswith("attestation.")} - {
        p.removesuffix(".py").replace("/", ".") for p in ENCLAVE_ATTESTATION}
    assert not party_side, f"{path} imports party-side {sorted(party_side)}"


@pytest.mark.parametrize("path", _tcb_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_main_module_touches_sockets(path: Path) -> None:
    # enclave/__main__.py is the single I/O layer; it alone may open the host connection.
    if path == ROOT / "enclave" / "__main__.py":
        return
    assert "socket" not in _imports(path)


def test_main_module_is_the_only_socket_user_and_uses_no_web_stack() -> None:
    imports = _imports(ROOT / "enclave" / "__main__.py")
    assert imports & {"flask", "host", "cleanroom", "http", "urllib"} == set()


@pytest.mark.parametrize("path", sorted((ROOT / "host").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_host_never_imports_the_enclave_or_party_secrets(path: Path) -> None:
    imports = _imports(path)
    assert "enclave" not in imports and "cleanroom" not in imports


def test_protocol_depends_on_msgpack_and_stdlib_only() -> None:
    allowed_third_party = {"msgpack"}
    for path in sorted((ROOT / "protocol").rglob("*.py")):
        third_party = {m for m in _imports(path) if m not in _stdlib() and m != "protocol"}
        assert third_party <= allowed_third_party, f"{path}: {third_party}"


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names) | {"__future__"}
