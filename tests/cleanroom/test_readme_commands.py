"""Every ``cleanroom`` command the README's walk-through shows parses with the real CLI: no flag,
command or argument there that the CLI does not take (the walk-through is followed literally)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cleanroom.cli import build_parser
from host.cli import _parser as host_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> list[str]:
    lines = []
    for block in re.findall(r"^```\n(.*?)^```", README.read_text(), flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("cleanroom "):
                lines.append(line)
    return lines


def test_the_walk_through_has_commands():
    commands = _commands()
    assert len(commands) >= 20
    for needed in ("profile set", "upload", "query", "check", "report", "delete", "audit verify"):
        assert any(c.startswith(f"cleanroom {needed}") for c in commands), needed


@pytest.mark.parametrize("line", _commands())
def test_each_command_parses(line):
    argv = shlex.split(line)[1:]
    args = build_parser(argv).parse_args(argv)  # exits 2 on anything the CLI does not take
    assert callable(args.func)


def test_the_host_command_parses():
    found = re.search(r"`(cleanroom-host serve [^`]*)`", README.read_text())
    assert found is not None
    host_parser().parse_args(shlex.split(found.group(1))[1:])
