"""The soak's bookkeeping and verdict: request outcomes, lost uploads, the report.

``Stats`` counts every request by outcome and endpoint (thread-safe) and remembers every
acknowledged upload; ``lost_uploads`` compares those with the host's listing after the final
restart; ``summary`` turns it all into the JSON object ``python -m benchmarks.soak`` prints.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats", "lost_uploads", "summary"]


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    succeeded: int = 0
    rejected: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: dict[str, str] = field(default_factory=dict)  # upload id hex -> party

    def record(self, endpoint: str, seconds: float, outcome: str, detail: str = "") -> None:
        with self.lock:
            self.sent += 1
            self.latency[endpoint].append(seconds)
            if outcome == "ok":
                self.succeeded += 1
            elif outcome == "expected":
                self.rejected[detail] += 1
            else:
                self.unexpected[detail] += 1
                if len(self.samples) < 20:
                    self.samples.append(f"{endpoint}: {detail}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def lost_uploads(stats: Stats, listing: dict[str, Any]) -> tuple[int, list[str]]:
    """Acknowledged uploads missing from ``GET /v1/uploads`` (or listed as not present)."""
    listed = {u["upload_id"]: u for u in listing["uploads"]}
    lost = [upload_id for upload_id in stats.acknowledged
            if upload_id not in listed or listed[upload_id].get("present") is False]
    return len(lost), lost[:10]


def summary(stats: Stats, *, seconds: float, elapsed: float, parties: int, shared_heads: bool,
            recoveries: list[float], hung: list[str], lost: tuple[int, list[str]]) -> dict[str, Any]:
    """The soak's report (``ok`` is added by the caller)."""
    lost_count, lost_sample = lost
    return {
        "seconds": seconds,
        "elapsed_s": round(elapsed, 2),
        "parties": parties,
        "shared_heads": shared_heads,
        "enclave_kills": len(recoveries) + 1,  # the mid-run kills and the final one
        "recovery_s": [round(r, 3) for r in recoveries],
        "requests_sent": stats.sent,
        "succeeded": stats.succeeded,
        "rejected_as_expected": sum(stats.rejected.values()),
        "rejections": dict(sorted(stats.rejected.items())),
        "unexpected_errors": sum(stats.unexpected.values()) + len(hung),
        "unexpected": dict(sorted(stats.unexpected.items())),
        "unexpected_samples": stats.samples + [f"{name}: did not stop" for name in hung],
        "uploads_acknowledged": len(stats.acknowledged),
        "lost_acknowledged_uploads": lost_count,
        "lost_sample": lost_sample,
        "throughput_rps": round(stats.sent / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            endpoint: {"count": len(values),
                       "p50": round(_percentile(values, 0.50) * 1000, 2),
                       "p99": round(_percentile(values, 0.99) * 1000, 2)}
            for endpoint, values in sorted(stats.latency.items())
        },
    }
