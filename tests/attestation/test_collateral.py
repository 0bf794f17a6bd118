"""Collateral sources and the cache: keyed by platform, kept until nextUpdate, never judged.

No network: the PCCS is a fake fetcher (or a fake ``dcap_qvl.get_collateral``). ``now`` is fixed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import dcap_qvl
import pytest

from attestation.verifier import collateral as collateral_module
from attestation.verifier.collateral import (
    COLLATERAL_FILE,
    CollateralCache,
    CollateralKey,
    DirectorySource,
    FirstAvailable,
    PccsSource,
    collateral_key,
    fetch_from_pccs,
    next_update,
)
from attestation.verifier.verify import VerifierPolicy, evaluate_quote
from protocol.errors import AttestationError, CollateralExpired, QuoteInvalid

# The real sample's earliest nextUpdate: its QE identity, 2025-07-19T10:01:18Z
# (the last `now` at which the sample verifies, as the samples themselves record it).
REAL_NEXT_UPDATE = 1752919278
REAL_KEY = CollateralKey("00A067110000", "processor")
THIRTY_DAYS = 30 * 24 * 3600


class CountingSource:
    """A source that hands out fixed collateral and counts how often it was asked."""

    def __init__(self, collateral: str) -> None:
        self.collateral = collateral
        self.calls: list[CollateralKey] = []

    def __call__(self, quote: bytes, key: CollateralKey) -> str:
        self.calls.append(key)
        return self.collateral


@pytest.fixture(scope="module")
def sim_quote(sim_pki) -> bytes:
    return sim_pki.issue_quote(bytes(64))


def _sim_policy() -> VerifierPolicy:
    return VerifierPolicy(allow_simulation=True)


# --- key and expiry ---------------------------------------------------------------------------


@pytest.mark.samples
def test_key_comes_from_the_quotes_pck_certificate(real_sample):
    assert collateral_key(real_sample.quote) == REAL_KEY


def test_simulated_quote_has_its_own_platform(sim_quote):
    assert collateral_key(sim_quote) == CollateralKey("00C1EA000000", "processor")


@pytest.mark.parametrize("quote", [b"", b"not a quote", bytes(1052)])
def test_a_quote_without_a_platform_is_invalid(quote):
    with pytest.raises(QuoteInvalid, match="FMSPC"):
        collateral_key(quote)


@pytest.mark.samples
def test_next_update_is_the_earliest_of_tcb_info_qe_identity_and_crls(real_sample):
    assert next_update(real_sample.collateral) == REAL_NEXT_UPDATE


def test_next_update_of_simulated_collateral(sim_pki, now):
    assert next_update(sim_pki.collateral_json(now)) == now + THIRTY_DAYS


def test_next_update_reads_the_crls_too(sim_pki, now):
    doc = json.loads(sim_pki.collateral_json(now))
    later = json.loads(sim_pki.collateral_json(now + 1000))
    doc["tcb_info"], doc["qe_identity"] = later["tcb_info"], later["qe_identity"]
    assert next_update(json.dumps(doc)) == now + THIRTY_DAYS  # the CRLs expire first


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"tcb_info": "{}"}', json.dumps({"tcb_info": 1})])
def test_next_update_of_malformed_collateral(text):
    with pytest.raises(ValueError):
        next_update(text)


# --- the cache --------------------------------------------------------------------------------


@pytest.mark.samples
def test_cache_keeps_collateral_until_next_update(real_sample, now):
    source = CountingSource(real_sample.collateral)
    cache = CollateralCache(source)
    assert cache.valid_until(real_sample.quote) is None
    assert cache.get(real_sample.quote, now) == real_sample.collateral
    assert cache.valid_until(real_sample.quote) == REAL_NEXT_UPDATE
    cache.get(real_sample.quote, now + 1)
    cache.get(real_sample.quote, REAL_NEXT_UPDATE - 1)
    assert source.calls == [REAL_KEY]
    cache.get(real_sample.quote, REAL_NEXT_UPDATE)  # due: ask the source again
    assert len(source.calls) == 2


@pytest.mark.samples
def test_expired_collateral_is_refused_by_the_verifier_not_by_the_cache(real_sample):
    late = REAL_NEXT_UPDATE + 1
    source = CountingSource(real_sample.collateral)
    cache = CollateralCache(source)
    collateral = cache.get(real_sample.quote, late)
    assert collateral == real_sample.collateral  # handed out unjudged...
    assert cache.valid_until(real_sample.quote) is None  # ...but not kept
    cache.get(real_sample.quote, late)
    assert len(source.calls) == 2
    policy = VerifierPolicy(mr_enclaves=(real_sample.expected["mr_enclave"],))
    with pytest.raises(CollateralExpired):
        evaluate_quote(real_sample.quote, collateral, now=late, policy=policy).require()


def test_undatable_collateral_is_passed_on_and_refused_by_the_verifier(sim_quote, now):
    source = CountingSource('{"not": "collateral"}')
    cache = CollateralCache(source)
    collateral = cache.get(sim_quote, now)
    assert cache.valid_until(sim_quote) is None
    report = evaluate_quote(sim_quote, collateral, now=now, policy=_sim_policy(), root_ca_der=None)
    assert report.error is not None and report.error[0] == "quote_invalid"


def test_cache_feeds_the_verifier(sim_pki, sim_quote, now):
    cache = CollateralCache(CountingSource(sim_pki.collateral_json(now)))
    report = evaluate_quote(
        sim_quote, cache.get(sim_quote, now), now=now, policy=_sim_policy(), root_ca_der=sim_pki.root_ca_der
    )
    assert report.accepted and report.simulated


@pytest.mark.samples
def test_cache_is_per_platform_and_bounded(real_sample, sim_pki, sim_quote, now):
    sim_col, real_col = sim_pki.collateral_json(now), real_sample.collateral
    cache = CollateralCache(
        lambda q, key: sim_col if key.fmspc == "00C1EA000000" else real_col, max_entries=1
    )
    assert cache.get(sim_quote, now) == sim_col
    assert cache.get(real_sample.quote, now) == real_col
    assert cache.valid_until(sim_quote) is None  # evicted: one platform at most
    assert cache.valid_until(real_sample.quote) == REAL_NEXT_UPDATE
    cache.clear()
    assert cache.valid_until(real_sample.quote) is None


def test_source_failure_propagates(sim_quote, now):
    def failing(quote: bytes, key: CollateralKey) -> str:
        raise AttestationError("no collateral here")

    with pytest.raises(AttestationError, match="no collateral here"):
        CollateralCache(failing).get(sim_quote, now)


def test_cache_rejects_a_zero_bound():
    with pytest.raises(ValueError):
        CollateralCache(CountingSource(""), max_entries=0)


# --- directory source -----------------------------------------------------------------------


def test_directory_prefers_the_platform_file(tmp_path, sim_quote):
    (tmp_path / "00C1EA000000-processor.json").write_text("platform")
    (tmp_path / COLLATERAL_FILE).write_text("any")
    assert DirectorySource(tmp_path)(sim_quote, collateral_key(sim_quote)) == "platform"


def test_directory_accepts_a_lower_case_fmspc(tmp_path, sim_quote):
    (tmp_path / "00c1ea000000-processor.json").write_text("lower")
    assert DirectorySource(tmp_path)(sim_quote, collateral_key(sim_quote)) == "lower"


def test_directory_falls_back_to_collateral_json(tmp_path, sim_quote):
    (tmp_path / "00C1EA000000-platform.json").write_text("other CA")
    (tmp_path / COLLATERAL_FILE).write_text("any")
    assert DirectorySource(tmp_path)(sim_quote, collateral_key(sim_quote)) == "any"


def test_directory_without_collateral(tmp_path, sim_quote):
    with pytest.raises(AttestationError, match="no collateral for this platform"):
        DirectorySource(tmp_path)(sim_quote, collateral_key(sim_quote))
    with pytest.raises(AttestationError):
        DirectorySource(tmp_path / "missing")(sim_quote, collateral_key(sim_quote))


def test_directory_refuses_an_oversized_file(tmp_path, sim_quote):
    (tmp_path / COLLATERAL_FILE).write_bytes(b" " * (1024 * 1024 + 1))
    with pytest.raises(AttestationError, match="too large"):
        DirectorySource(tmp_path)(sim_quote, collateral_key(sim_quote))


@pytest.mark.samples
def test_directory_source_through_cache_and_verifier(tmp_path, real_sample, now):
    (tmp_path / "00A067110000-processor.json").write_text(real_sample.collateral)
    cache = CollateralCache(DirectorySource(tmp_path))
    exp = real_sample.expected
    policy = VerifierPolicy(mr_enclaves=(exp["mr_enclave"],), allowed_statuses=(exp["expect"]["status"],))
    report = evaluate_quote(real_sample.quote, cache.get(real_sample.quote, now), now=now, policy=policy)
    assert report.accepted and report.status == exp["expect"]["status"]


# --- PCCS source ------------------------------------------------------------------------------


def test_pccs_source_uses_the_injected_fetcher_once_per_validity(sim_pki, sim_quote, now):
    calls: list[tuple[str, bytes]] = []

    def fake_fetch(url: str, quote: bytes) -> str:
        calls.append((url, quote))
        return sim_pki.collateral_json(now)

    cache = CollateralCache(PccsSource("https://pccs.example", fetcher=fake_fetch))
    first = cache.get(sim_quote, now)
    assert cache.get(sim_quote, now + 60) == first
    assert calls == [("https://pccs.example", sim_quote)]


def test_pccs_source_default_fetcher_is_looked_up_at_call_time(monkeypatch, sim_quote):
    monkeypatch.setattr(collateral_module, "fetch_from_pccs", lambda url, quote: f"from {url}")
    assert (
        PccsSource("https://pccs.example")(sim_quote, collateral_key(sim_quote))
        == "from https://pccs.example"
    )


def test_fetch_from_pccs_awaits_dcap_qvl_in_its_own_loop(monkeypatch, sim_quote):
    class FakeCollateral:
        def to_json(self) -> str:
            return '{"fetched": true}'

    seen: list[tuple[str, bytes]] = []

    async def fake_get_collateral(url: str, quote: bytes) -> FakeCollateral:
        seen.append((url, quote))
        return FakeCollateral()

    monkeypatch.setattr(dcap_qvl, "get_collateral", fake_get_collateral)
    assert fetch_from_pccs("https://pccs.example", sim_quote) == '{"fetched": true}'
    assert seen == [("https://pccs.example", sim_quote)]


def test_fetch_from_pccs_failure_is_an_attestation_error(monkeypatch, sim_quote):
    async def unreachable(url: str, quote: bytes) -> None:
        raise ValueError("Failed to get collateral: error sending request")

    monkeypatch.setattr(dcap_qvl, "get_collateral", unreachable)
    with pytest.raises(AttestationError, match="could not be fetched"):
        fetch_from_pccs("https://pccs.example", sim_quote)


def test_first_available_falls_through_to_the_pccs(tmp_path, sim_quote):
    source = FirstAvailable(DirectorySource(tmp_path), PccsSource("https://p", fetcher=lambda u, q: "pccs"))
    assert source(sim_quote, collateral_key(sim_quote)) == "pccs"
    (tmp_path / COLLATERAL_FILE).write_text("local")
    assert source(sim_quote, collateral_key(sim_quote)) == "local"
    with pytest.raises(ValueError):
        FirstAvailable()


# --- party override and import cost -----------------------------------------------------------


def test_importing_collateral_support_loads_no_dcap_qvl():
    code = (
        "import sys, attestation.verifier.collateral, cleanroom.collateral_source\n"
        "assert 'dcap_qvl' not in sys.modules and 'asyncio' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
