"""Party and host side: find DCAP collateral for a quote and remember it until it expires.

Collateral (TCB info, QE identity, CRLs and their issuer chains) is signed by Intel. Nothing here
trusts it because of where it came from, whether a directory, a PCCS or the host's bundle: this
module only finds it and keeps it; the verifier (dcap-qvl, via ``attestation.verifier.verify``) checks its
signatures, its chain to the root and its validity window. That is why the cache hands out
collateral it could not date, and collateral that has already expired, without judging it: the
verifier refuses it (``collateral_expired``, ``quote_invalid``), and a refusal there is
reported and tested in one place.

Collateral is per platform: it is keyed by the quote's FMSPC and PCK CA (``processor`` or
``platform``). Time is a parameter (``now``); the only network call is ``fetch_from_pccs``, kept
small so tests replace it. Never loaded in the enclave.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from attestation.verifier.values import intel_time
from protocol.errors import AttestationError, QuoteInvalid

__all__ = [
    "COLLATERAL_FILE",
    "CollateralCache",
    "CollateralKey",
    "CollateralSource",
    "DirectorySource",
    "Fetcher",
    "FirstAvailable",
    "PccsSource",
    "collateral_key",
    "fetch_from_pccs",
    "next_update",
]

# The file a collateral directory may hold for every platform, after ``<FMSPC>-<ca>.json``.
COLLATERAL_FILE = "collateral.json"
# dcap-qvl reports FMSPC as 6 bytes of hex and the CA by name; both become file names, so a
# quote from an untrusted host must not be able to choose anything else (no path traversal).
_FMSPC = re.compile(r"^[0-9A-F]{12}$")
_CAS = ("processor", "platform")
# Collateral files are about 10 to 20 KiB; anything much larger is not collateral.
_MAX_FILE_BYTES = 1024 * 1024


class CollateralKey(NamedTuple):
    """The platform a quote needs collateral for: FMSPC (upper-case hex) and PCK CA name."""

    fmspc: str
    ca: str


def collateral_key(quote: bytes) -> CollateralKey:
    """The FMSPC and PCK CA named by the PCK certificate embedded in ``quote``.

    Read without verifying anything: a wrong key only fetches collateral the verifier refuses.

    :raise QuoteInvalid: the quote carries no readable PCK certificate.
    """
    import dcap_qvl  # party/host side only; keeps importing this module cheap

    try:
        parsed = dcap_qvl.parse_quote(quote)
        fmspc, ca = parsed.fmspc().upper(), parsed.ca()
    except (ValueError, TypeError):
        raise QuoteInvalid("the quote names no platform (FMSPC) to fetch collateral for") from None
    if not _FMSPC.match(fmspc) or ca not in _CAS:
        raise QuoteInvalid("the quote names no platform (FMSPC) to fetch collateral for")
    return CollateralKey(fmspc, ca)


def next_update(collateral_json: str) -> int:
    """The earliest ``nextUpdate`` in the collateral (TCB info, QE identity, both CRLs), Unix s.

    After it, dcap-qvl refuses this collateral, so there is no point in keeping it.

    :raise ValueError: the collateral is not in dcap-qvl's JSON layout.
    """
    from cryptography import x509

    try:
        doc = json.loads(collateral_json)
        times = [intel_time(json.loads(doc[name])["nextUpdate"]) for name in ("tcb_info", "qe_identity")]
        for name in ("root_ca_crl", "pck_crl"):
            crl = x509.load_der_x509_crl(bytes.fromhex(doc[name]))
            if crl.next_update_utc is None:
                raise ValueError(f"{name} has no nextUpdate")
            times.append(int(crl.next_update_utc.timestamp()))
    except (KeyError, TypeError) as exc:
        raise ValueError("collateral is not in the dcap-qvl JSON layout") from exc
    return min(times)


# --- sources --------------------------------------------------------------------------------------

# A source returns the collateral JSON for a quote, or raises AttestationError when it has none.
CollateralSource = Callable[[bytes, CollateralKey], str]
# The network edge: (PCCS URL, quote) -> collateral JSON.
Fetcher = Callable[[str, bytes], str]


def fetch_from_pccs(pccs_url: str, quote: bytes) -> str:
    """Fetch collateral for ``quote`` from a PCCS (or Intel PCS) with dcap-qvl. Network I/O.

    Runs its own event loop in the calling thread, so it must not be called from a coroutine.

    :raise AttestationError: the PCCS could not be reached or had no collateral for the quote.
    """
    import asyncio

    import dcap_qvl

    # get_collateral returns a future bound to the *running* loop, so it has to be called from
    # inside one: asyncio.run(dcap_qvl.get_collateral(...)) fails with "no running event loop".
    async def fetch() -> str:
        collateral = await dcap_qvl.get_collateral(pccs_url, quote)
        return str(collateral.to_json())

    try:
        return asyncio.run(fetch())
    except (ValueError, RuntimeError, OSError) as exc:
        raise AttestationError("collateral could not be fetched from the PCCS") from exc


class DirectorySource:
    """Collateral files in a directory: ``<FMSPC>-<ca>.json`` (e.g. ``00A067110000-processor.json``)
    for a platform, else ``collateral.json`` for any platform. Read on every call; a cache in
    front decides how often that is (fresh files are picked up once the kept ones expire)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __call__(self, quote: bytes, key: CollateralKey) -> str:
        for name in (f"{key.fmspc}-{key.ca}.json", f"{key.fmspc.lower()}-{key.ca}.json", COLLATERAL_FILE):
            path = self.directory / name
            try:
                with path.open("rb") as f:
                    data = f.read(_MAX_FILE_BYTES + 1)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise AttestationError("the collateral directory cannot be read") from exc
            if len(data) > _MAX_FILE_BYTES:
                raise AttestationError("a collateral file is too large")
            return data.decode("utf-8", errors="replace")
        raise AttestationError("the collateral directory has no collateral for this platform")


class PccsSource:
    """Collateral fetched from a PCCS URL (a caching service in front of Intel PCS)."""

    def __init__(self, url: str, fetcher: Fetcher | None = None) -> None:
        self.url = url
        self._fetcher = fetcher

    def __call__(self, quote: bytes, key: CollateralKey) -> str:
        # Looked up at call time so tests can replace the module's fetch_from_pccs.
        fetch = self._fetcher if self._fetcher is not None else fetch_from_pccs
        return fetch(self.url, quote)


class FirstAvailable:
    """Ask each source in turn (e.g. a local directory, then a PCCS); the first answer wins."""

    def __init__(self, *sources: CollateralSource) -> None:
        if not sources:
            raise ValueError("at least one collateral source is needed")
        self.sources = sources

    def __call__(self, quote: bytes, key: CollateralKey) -> str:
        for source in self.sources[:-1]:
            try:
                return source(quote, key)
            except AttestationError:
                continue
        return self.sources[-1](quote, key)


# --- the cache ------------------------------------------------------------------------------------


class _Entry(NamedTuple):
    collateral: str
    valid_until: int


class CollateralCache:
    """Collateral per platform from ``source``, kept while ``now`` is before its ``nextUpdate``.

    Collateral that has already expired, or whose dates cannot be read, is returned but not kept:
    the verifier refuses it, and the next call asks the source again (a PCCS may have fresh
    collateral by then). Safe to share between threads; a miss calls the source outside the lock.
    """

    def __init__(self, source: CollateralSource, *, max_entries: int = 16) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._source = source
        # A host serves one platform and a party talks to a few; the bound only stops a stream of
        # quotes naming made-up platforms from growing the cache.
        self._max_entries = max_entries
        self._entries: dict[CollateralKey, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, quote: bytes, now: int) -> str:
        """Collateral JSON for ``quote`` at time ``now`` (Unix seconds).

        :raise QuoteInvalid: the quote names no platform.
        :raise AttestationError: the source has no collateral for it.
        """
        key = collateral_key(quote)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now < entry.valid_until:
            return entry.collateral
        collateral = self._source(quote, key)
        try:
            valid_until = next_update(collateral)
        except ValueError:
            return collateral  # undatable: let the verifier say what is wrong with it
        with self._lock:
            if now < valid_until:
                if key not in self._entries and len(self._entries) >= self._max_entries:
                    self._entries.pop(next(iter(self._entries)))  # drop the oldest
                self._entries[key] = _Entry(collateral, valid_until)
            else:
                self._entries.pop(key, None)
        return collateral

    def valid_until(self, quote: bytes) -> int | None:
        """When the kept collateral for ``quote``'s platform expires; None if none is kept."""
        with self._lock:
            entry = self._entries.get(collateral_key(quote))
        return None if entry is None else entry.valid_until

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
