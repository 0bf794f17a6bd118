"""enclave.state.mount: the direct-mode key is written only under gramine-direct."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.state import mount as state_mount
from enclave.state.mount import (
    STATE_KEY_NAME_DIRECT,
    STATE_KEY_NAME_SGX,
    insecure_direct_mode_key,
    provision_direct_mode_key,
)


def _fake_dev(tmp_path: Path, *, sgx: bool) -> Path:
    """A stand-in for /dev/attestation: keys/ always, attestation_type only under SGX."""
    dev = tmp_path / "attestation"
    (dev / "keys").mkdir(parents=True)
    # Gramine lists a key node once a mount names it; unset keys read as empty.
    (dev / "keys" / STATE_KEY_NAME_DIRECT).write_bytes(b"")
    if sgx:
        (dev / "attestation_type").write_text("dcap")
        (dev / "keys" / STATE_KEY_NAME_SGX).write_bytes(bytes(16))
    return dev


def test_constants() -> None:
    assert STATE_KEY_NAME_SGX == "_sgx_mrenclave"
    assert "insecure" in STATE_KEY_NAME_DIRECT
    # Not a special key: Gramine only derives names starting with "_" itself.
    assert not STATE_KEY_NAME_DIRECT.startswith("_")


def test_direct_key_is_fixed_16_bytes() -> None:
    key = insecure_direct_mode_key()
    assert len(key) == 16
    assert key == insecure_direct_mode_key()
    assert key != bytes(16)


def test_direct_mode_writes_key(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, sgx=False)
    provision_direct_mode_key(dev)
    assert (dev / "keys" / STATE_KEY_NAME_DIRECT).read_bytes() == insecure_direct_mode_key()


def test_direct_mode_accepts_str_path(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, sgx=False)
    provision_direct_mode_key(str(dev))
    assert len((dev / "keys" / STATE_KEY_NAME_DIRECT).read_bytes()) == 16


def test_direct_mode_keeps_a_key_already_set(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, sgx=False)
    preset = bytes(range(16))
    (dev / "keys" / STATE_KEY_NAME_DIRECT).write_bytes(preset)
    provision_direct_mode_key(dev)
    assert (dev / "keys" / STATE_KEY_NAME_DIRECT).read_bytes() == preset


def test_direct_mode_is_idempotent(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, sgx=False)
    provision_direct_mode_key(dev)
    provision_direct_mode_key(dev)
    assert (dev / "keys" / STATE_KEY_NAME_DIRECT).read_bytes() == insecure_direct_mode_key()


def test_sgx_mode_is_a_no_op(tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path, sgx=True)
    before = sorted((p.name, p.read_bytes()) for p in (dev / "keys").iterdir())
    provision_direct_mode_key(dev)
    after = sorted((p.name, p.read_bytes()) for p in (dev / "keys").iterdir())
    assert after == before
    assert (dev / "keys" / STATE_KEY_NAME_DIRECT).read_bytes() == b""


def test_plain_simulation_is_a_no_op(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dev"
    provision_direct_mode_key(missing)
    assert not missing.exists()


def test_direct_mode_without_keys_dir_fails_loudly(tmp_path: Path) -> None:
    dev = tmp_path / "attestation"
    dev.mkdir()
    with pytest.raises(OSError):
        provision_direct_mode_key(dev)


def test_no_io_at_import() -> None:
    # The module only defines constants and functions; importing it again touches nothing.
    assert state_mount.__all__ == sorted(state_mount.__all__)
