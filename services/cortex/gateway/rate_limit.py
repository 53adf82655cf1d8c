"""Requests a second per API token, as token buckets: a token may go `burst` requests ahead
of its rate, then waits. Each gateway replica counts its own requests, so behind a load
balancer spreading evenly over N replicas a token gets up to N times the rate."""

from __future__ import annotations

import math
import time

from cortex.kernel.errors import RateLimited


class RateLimits:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        """Token name -> (requests it may still make, when that was counted)."""

    def take(self, name: str, now: float | None = None) -> None:
        """Count one request of the token `name`; raise `RateLimited` when it has none left."""
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        left, at = self._buckets.get(name, (float(self.burst), now))
        left = min(float(self.burst), left + (now - at) * self.rate)
        if left < 1.0:
            wait = (1.0 - left) / self.rate
            self._buckets[name] = (left, now)
            raise RateLimited(
                f"token {name!r} made more than {self.rate:g} requests a second (bursts of "
                f"{self.burst}); retry in {wait:.2f} s",
                details={"retry_after": math.ceil(wait)},
            )
        self._buckets[name] = (left - 1.0, now)
