"""Per-tenant token buckets for task submission (in-process: each API replica limits on its own)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from orchestrator.errors import RateLimited

__all__ = ["TokenBuckets"]


@dataclass
class _Bucket:
    tokens: float
    at: float  # time.monotonic() of the last refill


class TokenBuckets:
    """``rate_per_s`` tokens a second per key, at most ``burst`` saved up."""

    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[uuid.UUID, _Bucket] = {}

    def take(self, key: uuid.UUID) -> None:
        """Spend one token of ``key``'s bucket; raises ``RateLimited`` (with the wait) when empty."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # a full reset is generous for a moment, and bounds memory
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s)
        bucket.at = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / self.rate_per_s
            raise RateLimited(
                f"too many tasks submitted: at most {self.rate_per_s:g}/s (burst {self.burst}) per tenant",
                retry_after_s=round(wait, 3),
            )
        bucket.tokens -= 1.0
