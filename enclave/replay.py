"""Reject replayed requests: each signed request carries a nonce and an issue time.

A request is accepted once, and only within ``window`` seconds of the enclave's clock. Under
Gramine the clock comes from the untrusted host, so the time window is defence in depth; the
remembered nonces are what stops a replay, and they are sealed with the rest of the state.
"""

from __future__ import annotations

from protocol.errors import ReplayDetected

__all__ = ["ReplayGuard"]

DEFAULT_WINDOW_S = 300


class ReplayGuard:
    def __init__(self, window: int = DEFAULT_WINDOW_S, seen: dict[bytes, int] | None = None):
        self._window = window
        self._seen: dict[bytes, int] = dict(seen or {})  # request id -> issue time

    def check_and_remember(self, request_id: bytes, issued_at: int, now: int) -> None:
        if abs(now - issued_at) > self._window:
            raise ReplayDetected("request time is outside the accepted window")
        self._forget_older_than(now - self._window)
        if request_id in self._seen:
            raise ReplayDetected()
        self._seen[request_id] = issued_at

    def _forget_older_than(self, cutoff: int) -> None:
        for request_id in [r for r, t in self._seen.items() if t < cutoff]:
            del self._seen[request_id]

    def to_sealable(self) -> dict[bytes, int]:
        return dict(self._seen)
