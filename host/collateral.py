"""Host side: the DCAP collateral attached to a real quote's attestation bundle.

A thin adapter over ``attestation.verifier.collateral``. Settings (Flask config keys, which are the
environment variable names, as everywhere in ``host.config``):

- ``CLEANROOM_COLLATERAL_DIR``: a directory of ``<FMSPC>-<ca>.json`` files or one ``collateral.json``
- ``CLEANROOM_PCCS_URL``: a PCCS to fetch collateral from (asked after the directory, if both are set)

The host cannot forge collateral (Intel signs it) and parties verify it, so serving it is a
convenience: a party may bring its own or fetch it itself instead. One cache is shared by the
whole process and keeps collateral until its earliest ``nextUpdate``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from attestation.verifier.collateral import (
    CollateralCache,
    CollateralSource,
    DirectorySource,
    FirstAvailable,
    PccsSource,
)

__all__ = ["COLLATERAL_DIR", "PCCS_URL", "clear_cache", "collateral_for_quote"]

COLLATERAL_DIR = "CLEANROOM_COLLATERAL_DIR"
PCCS_URL = "CLEANROOM_PCCS_URL"

_lock = threading.Lock()
# (directory, url) the cache was built for, and the cache: a changed configuration (another
# app in the same process, a test) gets a fresh cache rather than another source's collateral.
_cache: tuple[tuple[str | None, str | None], CollateralCache] | None = None


def _setting(config: Mapping[str, Any], name: str) -> str | None:
    value = config.get(name)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _cache_for(directory: str | None, url: str | None) -> CollateralCache:
    global _cache
    with _lock:
        if _cache is None or _cache[0] != (directory, url):
            sources: list[CollateralSource] = []
            if directory is not None:
                sources.append(DirectorySource(directory))
            if url is not None:
                sources.append(PccsSource(url))
            _cache = ((directory, url), CollateralCache(FirstAvailable(*sources)))
        return _cache[1]


def collateral_for_quote(config: Mapping[str, Any], quote: bytes, now: int) -> str | None:
    """Collateral JSON for ``quote`` at ``now``, or None when no collateral source is configured.

    :raise AttestationError: a source is configured but has no collateral for this quote (the
        directory lacks the file, the PCCS is unreachable), or the quote names no platform.
    """
    directory, url = _setting(config, COLLATERAL_DIR), _setting(config, PCCS_URL)
    if directory is None and url is None:
        return None
    return _cache_for(directory, url).get(quote, now)


def clear_cache() -> None:
    """Forget all kept collateral (tests; an operator replacing a collateral directory's files
    does not need it, as the directory is read again once the kept collateral expires)."""
    global _cache
    with _lock:
        _cache = None
