"""Each relay's NIP-11 `limitation.max_limit`, for the synchronizer's page size.

Asked before every history window, so it is cached: limits change rarely, and fetching the
document each time would double the requests a relay gets. A relay without a usable document
has no known limit (None): the planner then learns the relay's cap from its answers.
"""

from __future__ import annotations

import time

from bigbrotr.config import Settings
from bigbrotr.errors import RelayInfoError
from connectors.nip11 import fetch_nip11


class Nip11MaxLimit:
    """`await lookup(url)` gives the relay's `max_limit` or None; a `MaxLimitLookup`."""

    def __init__(self, settings: Settings, *, ttl_s: float = 3600.0) -> None:
        self.settings = settings
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, int | None]] = {}

    async def __call__(self, url: str) -> int | None:
        now = time.monotonic()
        cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            document = await fetch_nip11(
                url,
                allow=self.settings.connectors.allow,
                proxy=self.settings.connectors.socks5_proxy,
                time_limit=self.settings.monitor.nip11_timeout_s,
                max_bytes=self.settings.monitor.nip11_max_bytes,
            )
            max_limit = document.max_limit
        except RelayInfoError:
            max_limit = None
        self._cache[url] = (now + self._ttl_s, max_limit)
        return max_limit
