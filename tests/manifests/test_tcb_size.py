"""`make tcb-size`: exactly the lines of enclave/ and protocol/, per folder and in total."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests import check as cli
from manifests.gramine_check.layout import PROJECT_ROOT, tcb_sources
from manifests.gramine_check.tcb_size import tcb_size
from tests.manifests.broken import variant


def _wc(folder: str) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (PROJECT_ROOT / folder).rglob("*.py"))


def test_counts_exactly_the_two_folders() -> None:
    lines, status = tcb_size()
    assert status == 0
    enclave, protocol, total = lines[-3:]
    assert enclave.split()[:2] == [str(_wc("enclave")), "enclave/"]
    assert protocol.split()[:2] == [str(_wc("protocol")), "protocol/"]
    assert total.split() == [str(_wc("enclave") + _wc("protocol")), "total"]
    listed = [line.split()[1] for line in lines[:-3]]
    assert listed == tcb_sources()


def test_cli_tcb_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--tcb-size"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].endswith(" total") and int(out[-1].split()[0]) > 0
    assert not any("attestation/" in line or "host/" in line for line in out)


def test_fails_when_the_manifest_measures_something_else(tmp_path: Path) -> None:
    broken = variant(
        tmp_path,
        ('{%- set tcb_dirs = ["enclave", "protocol"] %}', '{%- set tcb_dirs = ["enclave", "attestation"] %}'),
    )
    lines, status = tcb_size(broken)
    assert status == 1
    assert "not trusted by the manifest: protocol/wire.py" in lines
    assert "trusted but outside the TCB: attestation/__init__.py" in lines
    # The folders are still counted: the total is the TCB's, not the broken manifest's.
    assert f"{_wc('enclave') + _wc('protocol'):7d} total" in lines
