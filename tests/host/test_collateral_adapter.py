"""``host.collateral``: configuration -> collateral for a real quote. No network: the PCCS fetcher
is replaced. Quotes and collateral come from a throwaway simulation PKI, so no sample is needed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from attestation.insecure_simulation.pki import SimulationPki
from attestation.verifier import collateral as collateral_module
from host.collateral import COLLATERAL_DIR, PCCS_URL, clear_cache, collateral_for_quote
from protocol.errors import AttestationError

NOW = 1751328000


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SimulationPki:
    return SimulationPki.create(tmp_path_factory.mktemp("sim") / "pki")


@pytest.fixture(scope="module")
def quote(pki: SimulationPki) -> bytes:
    return pki.issue_quote(bytes(64))


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()  # the cache is process-wide on purpose; tests must not share it
    yield
    clear_cache()


@pytest.fixture
def fake_pccs(monkeypatch: pytest.MonkeyPatch, pki: SimulationPki) -> list[tuple[str, bytes]]:
    calls: list[tuple[str, bytes]] = []

    def fetch(url: str, quote: bytes) -> str:
        calls.append((url, quote))
        return pki.collateral_json(NOW)

    monkeypatch.setattr(collateral_module, "fetch_from_pccs", fetch)
    return calls


def test_config_keys_are_the_environment_names() -> None:
    assert (COLLATERAL_DIR, PCCS_URL) == ("CLEANROOM_COLLATERAL_DIR", "CLEANROOM_PCCS_URL")


@pytest.mark.parametrize(
    "config", [{}, {COLLATERAL_DIR: None, PCCS_URL: None}, {COLLATERAL_DIR: "", PCCS_URL: " "}]
)
def test_nothing_configured_means_no_collateral(config: dict[str, object]) -> None:
    # Not even the quote is parsed: a host without collateral serves bundles without it.
    assert collateral_for_quote(config, b"not a quote", NOW) is None


def test_directory(tmp_path, quote: bytes, pki: SimulationPki) -> None:
    expected = pki.collateral_json(NOW)
    (tmp_path / "00C1EA000000-processor.json").write_text(expected)
    assert collateral_for_quote({COLLATERAL_DIR: tmp_path}, quote, NOW) == expected


def test_directory_collateral_is_kept_until_next_update(tmp_path, quote: bytes, pki: SimulationPki) -> None:
    path = tmp_path / "collateral.json"
    first = pki.collateral_json(NOW)
    path.write_text(first)
    config = {COLLATERAL_DIR: str(tmp_path)}
    assert collateral_for_quote(config, quote, NOW) == first
    path.write_text("replaced")
    assert collateral_for_quote(config, quote, NOW + 3600) == first  # still valid: not re-read
    assert collateral_for_quote(config, quote, NOW + 31 * 24 * 3600) == "replaced"


def test_directory_without_a_file_for_the_quote_is_an_error(tmp_path, quote: bytes) -> None:
    with pytest.raises(AttestationError):
        collateral_for_quote({COLLATERAL_DIR: str(tmp_path)}, quote, NOW)


def test_pccs_is_fetched_once_for_the_process(fake_pccs, quote: bytes) -> None:
    config = {PCCS_URL: "https://pccs.example:8081"}
    first = collateral_for_quote(config, quote, NOW)
    assert collateral_for_quote(dict(config), quote, NOW + 60) == first
    assert fake_pccs == [("https://pccs.example:8081", quote)]


def test_directory_first_then_pccs(tmp_path, fake_pccs, quote: bytes) -> None:
    config = {COLLATERAL_DIR: str(tmp_path), PCCS_URL: "https://pccs.example"}
    assert collateral_for_quote(config, quote, NOW) is not None
    assert len(fake_pccs) == 1  # the directory had nothing for this platform


def test_changed_configuration_gets_a_fresh_cache(fake_pccs, quote: bytes) -> None:
    collateral_for_quote({PCCS_URL: "https://a.example"}, quote, NOW)
    collateral_for_quote({PCCS_URL: "https://b.example"}, quote, NOW)
    assert [url for url, _ in fake_pccs] == ["https://a.example", "https://b.example"]


def test_pccs_failure_is_an_attestation_error_and_is_retried(
    monkeypatch: pytest.MonkeyPatch, quote: bytes, pki: SimulationPki
) -> None:
    def down(url: str, quote: bytes) -> str:
        raise AttestationError("collateral could not be fetched from the PCCS")

    config = {PCCS_URL: "https://pccs.example"}
    monkeypatch.setattr(collateral_module, "fetch_from_pccs", down)
    with pytest.raises(AttestationError):
        collateral_for_quote(config, quote, NOW)
    monkeypatch.setattr(collateral_module, "fetch_from_pccs", lambda url, q: pki.collateral_json(NOW))
    assert collateral_for_quote(config, quote, NOW) is not None  # the failure was not kept
