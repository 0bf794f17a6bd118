"""The demo's message when the host dies at start names the enclave's last output and the log."""

from __future__ import annotations

from pathlib import Path

from cleanroom.demo import _start_failure


def test_start_failure_shows_enclave_lines_before_the_host_traceback(tmp_path: Path) -> None:
    log = tmp_path / "host.log"
    enclave = [f"host.enclave INFO enclave[42]: line {i}" for i in range(30)]
    traceback = [f"  File \"host/supervisor.py\", line {i}" for i in range(40)]
    log.write_text("\n".join(["starting", *enclave, *traceback]) + "\n")
    message = _start_failure(log)
    assert "enclave[42]: line 29" in message and "enclave[42]: line 14" not in message
    assert message.index("last enclave output") < message.index("last host log lines")
    assert message.endswith(f"full log: {log}")
