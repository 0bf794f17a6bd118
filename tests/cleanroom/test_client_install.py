"""``pip install .[client]`` brings every package the party's code imports, and no dev tool.

Checked on the import graph: every third-party module imported anywhere in ``cleanroom/``,
``attestation/`` or ``protocol/`` (top level or inside a function) must come from a package in
the project's dependencies or its ``client`` extra.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTY_SIDE = ("cleanroom", "attestation", "protocol")
PROJECT = {"cleanroom", "attestation", "protocol", "enclave", "host", "tests", "benchmarks", "manifests"}
DEV_TOOLS = {"pytest", "ruff", "mypy", "hypothesis", "schemathesis", "opendp", "duckdb", "polars"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _client_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["client"]}


def _third_party_imports() -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in PARTY_SIDE:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module
                         and node.level == 0 else [])
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PROJECT:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_the_client_extra_covers_every_party_side_import():
    distributions = importlib.metadata.packages_distributions()
    client = _client_packages()
    missing = {module: where for module, where in _third_party_imports().items()
               if not {d.lower().replace("_", "-") for d in distributions.get(module, [module])} & client}
    assert missing == {}, "imported by the party's code but not installed by .[client]"


def test_the_client_extra_brings_parquet_and_phone_numbers_but_no_dev_tools():
    client = _client_packages()
    assert {"pyarrow", "phonenumbers", "dcap-qvl", "numpy", "cryptography", "msgpack"} <= client
    assert client & DEV_TOOLS == set()


def test_the_scan_sees_function_level_imports():
    # pyarrow and dcap_qvl are imported inside functions only; a scan blind to them proves nothing.
    assert {"pyarrow", "dcap_qvl", "phonenumbers"} <= set(_third_party_imports())
