"""The repository keeps its own promises: docs point at files that exist, nothing points outside
the repository, the README is a front page, and no module outside tests/ grows past 400 lines."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Byte strings the docs quote (hashed into the simulated measurements); they look like paths.
NOT_PATHS = {"cleanroom/simulation/mrenclave/v1", "cleanroom/simulation/mrsigner/v1"}
LABEL_PREFIX = "cleanroom/v1/"  # domain-separation labels (protocol/crypto.py), not files
# The original design notes lived beside the repository; every clone must read without them.
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|reference/(gramine|dcap-attestation|differential-privacy)\.md")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted(ROOT.glob("*/README.md"))]


def test_nothing_cites_the_design_notes_outside_the_repository() -> None:
    offenders = []
    for path in _tracked():
        if path.suffix in {".pyc", ".der", ".bin"} or path == Path(__file__):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offenders += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                      if OUTSIDE.search(line)]
    assert offenders == []


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_doc_cites_exists(doc: Path) -> None:
    top = {p.name for p in ROOT.iterdir()}
    missing = []
    text = doc.read_text()
    for token in re.findall(r"`([^`\n]+)`", text):
        token = token.strip().split("::")[0].rstrip(",")
        if " " in token or "/" not in token or token in NOT_PATHS or token.startswith(LABEL_PREFIX):
            continue
        if token.split("/")[0] not in top:
            continue  # system paths, state-dir layouts, URLs
        if not any(ROOT.glob(token)) if any(c in token for c in "*?[") else not (ROOT / token).exists():
            missing.append(token)
    for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not link.startswith(("http://", "https://", "mailto:")) and not (doc.parent / link).exists():
            missing.append(link)
    assert missing == [], f"{doc.relative_to(ROOT)} cites missing paths"


def test_readme_is_a_front_page_that_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    commands = [line for line in lines[:8] if line.startswith("make ")]
    assert commands == ["make demo", "make test"]


def test_no_module_outside_tests_is_over_400_lines() -> None:
    big = {str(p.relative_to(ROOT)): n for p in _tracked()
           if p.suffix == ".py" and p.relative_to(ROOT).parts[0] != "tests"
           and (n := len(p.read_text().splitlines())) > 400}
    assert big == {}


def test_every_named_test_in_the_docs_exists() -> None:
    # The threat-model table names the test that proves each row; a renamed test must not
    # leave a row proving nothing.
    missing = []
    for doc in _docs():
        for path, name in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc.read_text()):
            source = ROOT / path
            if not source.is_file() or not re.search(rf"^\s*(async )?def {name}\b", source.read_text(), re.M):
                missing.append(f"{doc.relative_to(ROOT)}: {path}::{name}")
    assert missing == []
