"""Reject replayed requests: each signed request carries a nonce and an issue time.

A request is accepted once, and only within ``window`` seconds of the enclave's clock. Under
Gramine that clock comes from the untrusted host, which could wind it back to make the enclave
forget old requests. So the enclave forgets only below a *floor* that never goes down (the
latest ``now - window`` it has seen, sealed with the rest of the state), and refuses any request
issued below the floor whatever the clock says now. The remembered ids stop replays inside the
window; the floor stops replays of anything older. Upload headers (id, ``created_at``) go
through the same guard, so the host cannot post a deleted upload's ciphertext again.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import ReplayDetected, StateError

__all__ = ["ReplayGuard"]

DEFAULT_WINDOW_S = 300


class ReplayGuard:
    def __init__(self, window: int = DEFAULT_WINDOW_S, *, floor: int = 0,
                 seen: dict[bytes, int] | None = None) -> None:
        self._window = window
        self._floor = floor
        self._seen: dict[bytes, int] = dict(seen or {})  # request id -> issue time

    def check_and_remember(self, request_id: bytes, issued_at: int, now: int) -> None:
        self.check(request_id, issued_at, now)
        self.remember(request_id, issued_at)

    def remember(self, request_id: bytes, issued_at: int) -> None:
        self._seen[request_id] = issued_at

    def check(self, request_id: bytes, issued_at: int, now: int) -> None:
        """Refuse a request outside the window, below the floor, or already remembered."""
        if abs(now - issued_at) > self._window:
            raise ReplayDetected("request time is outside the accepted window")
        self._floor = max(self._floor, now - self._window)
        if issued_at < self._floor:
            raise ReplayDetected("request is older than the requests this enclave still remembers")
        for old in [r for r, t in self._seen.items() if t < self._floor]:
            del self._seen[old]
        if request_id in self._seen:
            raise ReplayDetected()

    def to_sealable(self) -> dict[str, Any]:
        return {"floor": self._floor, "ids": dict(self._seen)}

    @classmethod
    def from_sealed(cls, data: Any) -> ReplayGuard:
        if not isinstance(data, dict) or set(data) != {"floor", "ids"}:
            raise StateError("the sealed state was written by an older, incompatible version")
        return cls(floor=data["floor"], seen=data["ids"])
