"""A per-key rate limit: a token bucket per API key, kept by each server process.

Generous by default (``VIGIL_RATE_LIMIT_PER_MINUTE``, 30,000 a minute with bursts as large),
so that a busy clinic, an EHR back-fill or an integration's test run never meets it while a
client stuck in a loop or a stolen key scraping at full speed does. With several
server processes each keeps its own buckets, so a key may reach the limit once per process.
"""

from __future__ import annotations

import math
import time
import uuid


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}  # key: (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def take(self, key_id: uuid.UUID, now: float | None = None) -> int | None:
        """Spend one request of ``key_id``'s budget: None if allowed, else seconds to wait."""
        if not self.enabled:
            return None
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(key_id, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[key_id] = (tokens - 1.0, now)
        return None
