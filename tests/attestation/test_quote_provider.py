"""The enclave-side quote provider, against a fake /dev/attestation directory.

Gramine's ``quote`` node answers with a quote over whatever was last written to
``user_report_data``. A plain file cannot do that, so the fake device intercepts ``open`` in
the module under test: writing report data regenerates the quote file from it.
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import enclave.requests.quote_provider as quote_module
from enclave.requests.quote_provider import QuoteProvider
from protocol.errors import AttestationError


class FakeDevice:
    """A /dev/attestation whose quote is b"QUOTE" + generation + the last report data."""

    def __init__(self, root: Path, *, attestation_type: bytes = b"dcap", delay: float = 0.0):
        self.root = root
        self.reads = 0
        self.writes = 0
        self.delay = delay
        (root / "keys").mkdir(parents=True)
        (root / "attestation_type").write_bytes(attestation_type)
        (root / "user_report_data").write_bytes(bytes(64))
        (root / "quote").write_bytes(b"STALE")

    def open(self, path, mode="r", *args, **kwargs):
        name = Path(path).name
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115 -- returned to the caller
        if name == "quote" and "r" in mode:
            self.reads += 1
        if name == "user_report_data" and "w" in mode:
            device = self
            real_write = handle.write

            def write(data: bytes) -> int:
                device.writes += 1
                written = real_write(data)
                time.sleep(device.delay)  # widen the race window for the threading test
                (device.root / "quote").write_bytes(b"QUOTE" + device.writes.to_bytes(4, "big") + bytes(data))
                return written

            handle.write = write
        return handle


@pytest.fixture
def device(tmp_path, monkeypatch) -> FakeDevice:
    fake = FakeDevice(tmp_path / "attestation")
    monkeypatch.setattr(quote_module, "open", fake.open, raising=False)
    return fake


def rd(tag: int) -> bytes:
    return bytes([tag]) * 64


def test_no_device_directory_means_simulation(tmp_path):
    provider = QuoteProvider(tmp_path / "absent")
    assert provider.mode == "simulation"
    assert provider.quote(rd(1)) is None


def test_directory_without_attestation_type_means_gramine_direct(tmp_path):
    (tmp_path / "keys").mkdir()
    provider = QuoteProvider(tmp_path)
    assert provider.mode == "gramine-direct"
    assert provider.quote(rd(1)) is None


def test_attestation_type_none_has_no_quote(tmp_path):
    FakeDevice(tmp_path / "a", attestation_type=b"none")
    (tmp_path / "a" / "quote").unlink()
    assert QuoteProvider(tmp_path / "a").mode == "gramine-direct"


def test_dcap_without_quote_node_is_not_sgx(tmp_path):
    FakeDevice(tmp_path / "a")
    (tmp_path / "a" / "quote").unlink()
    assert QuoteProvider(tmp_path / "a").mode == "gramine-direct"


def test_quote_is_read_after_writing_report_data(device):
    provider = QuoteProvider(device.root)
    assert provider.mode == "sgx"
    quote = provider.quote(rd(7))
    assert quote == b"QUOTE" + (1).to_bytes(4, "big") + rd(7)
    assert (device.root / "user_report_data").read_bytes() == rd(7)


def test_quotes_are_cached_per_report_data(device):
    provider = QuoteProvider(device.root)
    first = provider.quote(rd(1))
    assert provider.quote(rd(1)) == first
    assert (device.reads, device.writes) == (1, 1)
    second = provider.quote(rd(2))
    assert second != first and second.endswith(rd(2))
    assert provider.quote(rd(1)) == first
    assert device.reads == 2


def test_cache_is_bounded(device):
    provider = QuoteProvider(device.root, cache_size=2)
    for tag in (1, 2, 3):
        provider.quote(rd(tag))
    assert device.reads == 3
    provider.quote(rd(3))
    assert device.reads == 3
    provider.quote(rd(1))  # evicted as least recently used
    assert device.reads == 4


def test_concurrent_callers_each_get_their_own_quote(tmp_path, monkeypatch):
    fake = FakeDevice(tmp_path / "attestation", delay=0.002)
    monkeypatch.setattr(quote_module, "open", fake.open, raising=False)
    provider = QuoteProvider(fake.root, cache_size=64)
    results: dict[int, bytes | None] = {}

    def worker(tag: int) -> None:
        results[tag] = provider.quote(rd(tag))

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tag, quote in results.items():
        assert quote is not None and quote.endswith(rd(tag))


@pytest.mark.parametrize("bad", [b"", bytes(63), bytes(65)])
def test_report_data_must_be_64_bytes(device, bad):
    with pytest.raises(ValueError, match="64 bytes"):
        QuoteProvider(device.root).quote(bad)


def test_unreadable_quote_is_an_attestation_error(device):
    provider = QuoteProvider(device.root)
    (device.root / "quote").unlink()
    (device.root / "quote").mkdir()  # reading a directory fails like a broken device
    with pytest.raises(AttestationError, match="could not obtain a quote"):
        provider.quote(rd(1))


def test_empty_quote_is_an_attestation_error(tmp_path, monkeypatch):
    fake = FakeDevice(tmp_path / "attestation")
    provider = QuoteProvider(fake.root)
    (fake.root / "quote").write_bytes(b"")
    with pytest.raises(AttestationError, match="empty"):
        provider.quote(rd(1))  # real open: the write does not regenerate the quote


def test_enclave_side_imports_stay_small():
    # The enclave imports these modules; none may drag in dcap-qvl, the simulation PKI or the
    # verifier. Checked in a fresh interpreter so that other tests' imports do not interfere.
    code = (
        "import sys, attestation, enclave.requests.quote_provider, protocol.report_data, "
        "attestation.verifier.quote_layout\n"
        "bad = [m for m in ('dcap_qvl', 'cryptography', 'attestation.insecure_simulation.pki', "
        "'attestation.verifier.verify') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_importing_the_verifier_does_not_load_dcap_qvl():
    code = "import sys, attestation.verifier.verify\nassert 'dcap_qvl' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
