"""``cleanroom`` starts light: ``--help`` imports no NumPy, HTTP client or crypto, and the table of
commands it lists (``cleanroom.cli.COMMANDS``) is exactly what the command modules register.
Not a timing test: it checks what is imported (the timings are in the development docs)."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys

import pytest

import cleanroom.commands
from cleanroom.cli import COMMANDS, build_parser

HEAVY = ("numpy", "urllib3", "requests", "pyarrow", "cryptography", "msgpack", "dcap_qvl",
         "http.client", "cleanroom.client", "cleanroom.tables")
_PROBE = """
import json, sys
from cleanroom.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy)))
"""


def _imported_by(*argv: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *argv],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], [], ["profile", "--help"], ["trust", "--help"]],
                         ids=["--help", "no command", "profile --help", "trust --help"])
def test_help_imports_nothing_heavy(argv):
    assert _imported_by(*argv) == []


def test_the_probe_does_see_heavy_imports():
    # The same probe run on a command that needs the HTTP client must report it, or the test
    # above would pass for the wrong reason.
    assert "numpy" in _imported_by("query", "--help")


def _registered(module_name: str) -> dict[str, str]:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    importlib.import_module(f"cleanroom.commands.{module_name}").register(commands)
    return {action.dest: action.help for action in commands._choices_actions}


def test_the_command_table_matches_what_the_modules_register():
    modules = {name for _, name, _ in pkgutil.iter_modules(cleanroom.commands.__path__)
               if hasattr(importlib.import_module(f"cleanroom.commands.{name}"), "register")}
    assert modules == {module for module, _ in COMMANDS.values()}, "every command module is listed"
    for module in modules:
        table = {name: summary for name, (m, summary) in COMMANDS.items() if m == module}
        assert _registered(module) == table


def test_the_named_command_is_registered_in_full():
    parser = build_parser(["trust", "reset", "--help"])
    args = parser.parse_args(["trust", "reset", "--policy", "p.toml", "--yes"])
    assert args.yes is True and callable(args.func)


def test_python_dash_m_cleanroom_is_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "cleanroom", "--help"], capture_output=True, text=True,
                         check=False, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("usage: cleanroom ")
