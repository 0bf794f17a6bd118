"""Value checks shared by the party/host-side attestation modules. Never loaded in the enclave."""

from __future__ import annotations

import datetime as dt

from protocol.errors import CleanroomError, PolicyInvalid

__all__ = ["check_now", "hex32", "intel_time"]


def hex32(name: str, value: object, error: type[CleanroomError] = PolicyInvalid) -> str:
    """``value`` as 64 lower-case hex digits (32 bytes), else ``error`` naming ``name``."""
    if not isinstance(value, str):
        raise error(f"{name} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise error(f"{name} must be hex") from None
    if len(raw) != 32:
        raise error(f"{name} must be 32 bytes (64 hex digits)")
    return raw.hex()


def check_now(now: object) -> None:
    """Refuse a ``now`` dcap-qvl cannot take (it wants an unsigned 64-bit Unix time).

    A caller mistake, not an attestation outcome, so it raises instead of being reported.
    """
    if isinstance(now, bool) or not isinstance(now, int) or not 0 <= now < 2**63:
        raise ValueError("now must be a non-negative integer (Unix seconds)")


def intel_time(text: str) -> int:
    """Unix seconds of an Intel collateral date such as ``2025-06-19T10:56:11Z``.

    :raise ValueError: not in Intel's format.
    """
    parsed = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    return int(parsed.replace(tzinfo=dt.UTC).timestamp())
