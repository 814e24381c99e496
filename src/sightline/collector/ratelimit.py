"""Per-client request limits: a token bucket per IP address, in memory."""

from __future__ import annotations

import math
import time


class RateLimiter:
    """Allows ``per_minute`` requests per key on average, with bursts up to that many.

    ``per_minute`` of 0 turns limiting off. Idle keys are forgotten, so memory stays
    bounded by the number of clients seen in the last couple of minutes.
    """

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_sweep = time.monotonic()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def check(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``; returns 0 if allowed, else seconds to wait."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, stamp = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            allowed = 0.0
        else:
            self._buckets[key] = (tokens, now)
            allowed = (1.0 - tokens) / self.rate
        if now - self._last_sweep > 60:
            self._sweep(now)
        return allowed

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        full_after = self.capacity / self.rate if self.rate else 0
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}

    @staticmethod
    def retry_after(wait: float) -> int:
        return max(1, math.ceil(wait))
