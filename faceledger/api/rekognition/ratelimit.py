"""A token bucket per access key: ``rate`` requests per second, bursts of up to one second's
worth (and always at least one request, so rates below 1/s still let requests through)."""

from __future__ import annotations

from faceledger.store.buckets import MemoryBuckets, TokenBuckets


class RateLimiter:
    def __init__(self, rate: float, buckets: TokenBuckets | None = None) -> None:
        """``buckets``: where the tokens are kept (default: this process's memory)."""
        self.rate = rate
        self.buckets = buckets or MemoryBuckets(rate, max(rate, 1.0))

    def allow(self, key: str) -> bool:
        return self.rate <= 0 or self.buckets.take(key) == 0.0
