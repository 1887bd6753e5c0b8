"""Per-client rate limiting for HTTP calls and REQs, with the `limits` library's moving window.

State lives in memory, so each API process limits on its own; clients are told when to retry.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class ClientLimiter:
    """`rate` is a `limits` string such as `20/second`, checked at config time."""

    def __init__(self, rate: str) -> None:
        self.rate = rate
        self._item: RateLimitItem = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def allow(self, client: str) -> bool:
        """Count one request of `client`; False when it is over its rate."""
        return await self._limiter.hit(self._item, client)

    async def retry_after_s(self, client: str) -> int:
        """Whole seconds until `client` may send again (at least 1)."""
        stats = await self._limiter.get_window_stats(self._item, client)
        return max(1, math.ceil(stats.reset_time - time.time()))
